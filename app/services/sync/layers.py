"""The lower configuration layers edited in the app: project overrides and organization defaults.

A save is validated with the configuration it affects, and reloads the affected projects' active commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.kiket import model as km
from app.kiket.loader import LayerInput
from app.models import ConfigEvent, ConfigLayer, Project, User, WorkflowRepository
from app.models.base import utcnow
from app.services.errors import Forbidden, Invalid
from app.services.projects import project_role
from app.services.sync import workflow_sources
from app.services.sync.activation import request_reload
from app.services.sync.configuration import (
    LowerLayers, active_revision, load_files, lower_layers, organization_scope, project_scope, template_source,
)

LAYER_FILE = re.compile(r"^(?:(?:project|team|issue_types)|(?:workflows|boards|automations)/[A-Za-z0-9_-]+)\.ya?ml$")
MAX_LAYER_BYTES = 512 * 1024


@dataclass
class LayerSaveResult:
    """Outcome of saving a layer file: saved or not, the diagnostics to show inline, the reload job if any."""

    saved: bool
    layer: ConfigLayer | None
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    reload_revision_id: int | None = None


def list_layer_files(project: Project | None = None, organization_id: int | None = None) -> list[ConfigLayer]:
    """The stored files of a project's overrides, or of an organization's defaults."""
    scope = project_scope(project.id) if project is not None else organization_scope(organization_id)
    return list(db.session.scalars(select(ConfigLayer).where(ConfigLayer.scope == scope).order_by(ConfigLayer.path)))


def _check_layer_permission(actor: User, project: Project | None, organization_id: int | None) -> int:
    if project is not None:
        if project_role(actor, project) not in ("owner", "admin"):
            raise Forbidden("Only project owners and admins can edit project overrides.")
        return project.organization_id
    if not actor.is_org_admin or actor.membership is None or actor.membership.organization_id != organization_id:
        raise Forbidden("Only organization owners and admins can edit organization defaults.")
    return organization_id


def save_layer_file(actor: User, path: str, yaml_text: str, *, project: Project | None = None,
                    organization_id: int | None = None) -> LayerSaveResult:
    """Validate and save one file of a project's overrides (`project=`) or an organization's defaults.

    `path` is relative to `.kiket/` (`project.yaml`, `team.yaml`, `workflows/bug.yaml`…). The file is
    validated with the engine together with the configuration it affects; with a fatal problem nothing is
    saved and the diagnostics say why. A valid save bumps the version and reloads the affected projects
    that have an active revision (their reload revision ids are returned for the first one).
    """
    organization_id = _check_layer_permission(actor, project, organization_id)
    path = (path or "").strip().lstrip("/")
    if path.startswith(".kiket/"):
        path = path[len(".kiket/"):]
    if not LAYER_FILE.match(path):
        raise Invalid({"path": "Use project.yaml, team.yaml, issue_types.yaml, or workflows/, boards/ or "
                               "automations/<name>.yaml."})
    if len(yaml_text.encode("utf-8")) > MAX_LAYER_BYTES:
        raise Invalid({"yaml_text": "The file is larger than 512 KiB."})
    layer = "project_override" if project is not None else "organization_default"
    scope = project_scope(project.id) if project is not None else organization_scope(organization_id)
    row = db.session.scalar(select(ConfigLayer).where(ConfigLayer.scope == scope, ConfigLayer.path == path))
    candidate = ConfigLayer(scope=scope, layer=layer, organization_id=organization_id,
                            project_id=project.id if project else None, path=path, yaml_text=yaml_text,
                            version=(row.version + 1) if row else 1, id=row.id if row else 0)
    diagnostics = _validate_layer(candidate, project, organization_id)
    fatal = [d for d in diagnostics if d["severity"] == "fatal"]
    if fatal:
        return LayerSaveResult(saved=False, layer=row, diagnostics=diagnostics)
    if row is None:
        row = ConfigLayer(scope=scope, layer=layer, organization_id=organization_id,
                          project_id=project.id if project else None, path=path)
        db.session.add(row)
    row.yaml_text = yaml_text
    row.version = candidate.version
    row.updated_by_id = actor.id
    row.updated_at = utcnow()
    db.session.add(ConfigEvent(project_id=project.id if project else None, organization_id=organization_id,
                               kind="override_saved" if project else "default_saved", actor_id=actor.id,
                               detail={"path": path, "version": candidate.version}))
    db.session.commit()
    projects = [project] if project is not None else list(db.session.scalars(
        select(Project).where(Project.organization_id == organization_id)))
    reloads = [request_reload(p.id, actor_id=actor.id) for p in projects]
    reloads = [r for r in reloads if r is not None]
    return LayerSaveResult(saved=True, layer=row, diagnostics=diagnostics,
                           reload_revision_id=reloads[0] if reloads else None)


def _validate_layer(candidate: ConfigLayer, project: Project | None, organization_id: int) -> list[dict[str, Any]]:
    """Diagnostics of the candidate's layer (and any fatal) when loaded with the configuration it affects."""
    if project is None:
        # Organization defaults sit under every project; check them under a neutral bundled template.
        project = Project(id=0, organization_id=organization_id, key="DEFAULTS", name="", template="kanban")
        layers = LowerLayers((LayerInput("organization_default", {f".kiket/{candidate.path}":
                                                                   candidate.yaml_text.encode("utf-8")}),), "check")
        files, source = template_source(project)
        result = load_files(project, files, source, layers=layers)
    else:
        layers = lower_layers(project, replace=candidate)
        revision = active_revision(project.id)
        if revision is not None and revision.repository_id is not None:
            repository = db.session.get(WorkflowRepository, revision.repository_id)
            files = workflow_sources.read_revision(revision.repository_id, revision.commit_sha)
            source = km.Source(repo=repository.remote_url, branch=revision.branch, commit_sha=revision.commit_sha)
            result = load_files(project, files, source, config_path=repository.config_path, layers=layers)
        else:
            files, source = template_source(project)
            result = load_files(project, files, source, layers=layers)
    return [d.to_dict() for d in result.diagnostics if d.prov.layer == candidate.layer or d.severity == "fatal"]

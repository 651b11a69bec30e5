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
from app.kiket.diff import RevisionDiff, diff_configs
from app.kiket.loader import LayerInput, LoadResult
from app.models import ConfigEvent, ConfigLayer, Project, User, WorkflowRepository
from app.models.base import utcnow
from app.services.errors import Forbidden, Invalid, NotFound
from app.services.projects import project_role
from app.services.sync import workflow_sources
from app.services.sync.activation import apply_team, request_reload
from app.services.sync.configuration import (
    LowerLayers, active_revision, load_files, lower_layers, organization_scope, project_config, project_scope,
    template_source,
)

# The spec's interpreted files (§2), relative to `.kiket/`: no other names, no `..`, no absolute paths.
LAYER_FILE = re.compile(
    r"^(?:project|team|issue_types|(?:workflows|boards|automations)/[A-Za-z0-9_-]+"
    r"|workflows/[A-Za-z0-9_-]+/automation_recipes/[A-Za-z0-9_-]+)\.ya?ml$"
)
LAYER_FILE_HELP = ("Use project.yaml, team.yaml, issue_types.yaml, workflows/<name>.yaml, boards/<name>.yaml, "
                   "automations/<name>.yaml or workflows/<workflow>/automation_recipes/<name>.yaml.")
MAX_LAYER_BYTES = 512 * 1024


@dataclass
class LayerSaveResult:
    """Outcome of saving (or deleting) a layer file: done or not, the diagnostics to show inline, the reload job if
    any, and what changed in the configuration it feeds (None when not saved or not comparable)."""

    saved: bool
    layer: ConfigLayer | None
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    reload_revision_id: int | None = None
    changes: RevisionDiff | None = None


@dataclass
class LayerCheck:
    """What a save of a layer file would do: its diagnostics (fatal ones refuse it) and the configuration after."""

    diagnostics: list[dict[str, Any]]
    revision: km.ConfigRevision | None

    @property
    def ok(self) -> bool:
        return not any(d["severity"] == "fatal" for d in self.diagnostics)


@dataclass
class LayerFileInfo:
    """One stored file of a layer as listed: size, version, who changed it last and when, elements it contributes."""

    path: str
    size: int
    version: int
    updated_at: Any
    updated_by: User | None
    elements: int


def list_layer_files(project: Project | None = None, organization_id: int | None = None) -> list[ConfigLayer]:
    """The stored files of a project's overrides, or of an organization's defaults."""
    scope = project_scope(project.id) if project is not None else organization_scope(organization_id)
    return list(db.session.scalars(select(ConfigLayer).where(ConfigLayer.scope == scope).order_by(ConfigLayer.path)))


def layer_file_infos(project: Project | None = None, organization_id: int | None = None) -> list[LayerFileInfo]:
    """The files of a layer with the number of elements each contributes to the effective configuration.

    For project overrides that is the project's configuration (an element the repository also defines is not
    counted); for organization defaults, the defaults loaded over the bundled template.
    """
    rows = list_layer_files(project=project, organization_id=organization_id)
    counts: dict[str, int] = {}
    if rows:
        if project is not None:
            try:
                config = project_config(project)
            except Exception:  # an unloadable active revision: the list still shows, without counts
                config = None
        else:
            config = _defaults_check(organization_id).revision
        if config is not None:
            counts = contributions(config, rows[0].layer)
    return [LayerFileInfo(path=r.path, size=len(r.yaml_text.encode("utf-8")), version=r.version,
                          updated_at=r.updated_at, updated_by=r.updated_by, elements=counts.get(r.path, 0))
            for r in rows]


def contributions(config: km.ConfigRevision, layer: str) -> dict[str, int]:
    """`{path relative to .kiket/: number of elements}` of the configuration's elements defined in `layer`."""
    elements: list[Any] = [*config.workflows.values(), *config.issue_types.values(), *config.boards.values(),
                           *config.automations.values(), *config.team.roles.values(), *config.team.members]
    if config.project.prov.path:
        elements.append(config.project)
    counts: dict[str, int] = {}
    for element in elements:
        prov = element.prov
        if prov.layer == layer and prov.path and not prov.generated:
            path = prov.path[len(".kiket/"):] if prov.path.startswith(".kiket/") else prov.path
            counts[path] = counts.get(path, 0) + 1
    return counts


def normalize_path(path: str | None) -> str:
    """A layer file's path relative to `.kiket/`, or Invalid naming the allowed names."""
    path = (path or "").strip()
    if path.startswith(".kiket/"):
        path = path[len(".kiket/"):]
    if not LAYER_FILE.match(path):
        raise Invalid({"path": LAYER_FILE_HELP})
    return path


def _check_layer_permission(actor: User, project: Project | None, organization_id: int | None) -> int:
    if project is not None:
        if project_role(actor, project) not in ("owner", "admin"):
            raise Forbidden("Only project owners and admins can edit project overrides.")
        return project.organization_id
    if not actor.is_org_admin or actor.membership is None or actor.membership.organization_id != organization_id:
        raise Forbidden("Only organization owners and admins can edit organization defaults.")
    return organization_id


def check_permission(actor: User, project: Project | None = None, organization_id: int | None = None) -> None:
    """Forbidden unless the user may change this layer (project owners/admins; organization owners/admins)."""
    _check_layer_permission(actor, project, organization_id)


def file_exists(path: str, *, project: Project | None = None, organization_id: int | None = None) -> bool:
    """True when the layer has a stored file at `path` (relative to `.kiket/`)."""
    _, scope = _scope(project, organization_id)
    return db.session.scalar(select(ConfigLayer.id).where(ConfigLayer.scope == scope, ConfigLayer.path == path)) \
        is not None


def can_edit(actor: User, project: Project | None = None, organization_id: int | None = None) -> bool:
    """True when the user may change this layer (project owners/admins; organization owners/admins)."""
    try:
        _check_layer_permission(actor, project, organization_id)
    except Forbidden:
        return False
    return True


def _scope(project: Project | None, organization_id: int) -> tuple[str, str]:
    if project is not None:
        return "project_override", project_scope(project.id)
    return "organization_default", organization_scope(organization_id)


def get_layer_file(actor: User, path: str, *, project: Project | None = None,
                   organization_id: int | None = None) -> ConfigLayer:
    """One stored file, for an editor of its layer; NotFound when there is no such file."""
    _check_layer_permission(actor, project, organization_id)
    _, scope = _scope(project, organization_id)
    row = db.session.scalar(select(ConfigLayer).where(ConfigLayer.scope == scope, ConfigLayer.path == path))
    if row is None:
        raise NotFound(f"No file {path!r} in this layer.")
    return row


def _candidate(path: str, yaml_text: str, project: Project | None, organization_id: int) -> tuple[ConfigLayer, ConfigLayer | None]:
    if len(yaml_text.encode("utf-8")) > MAX_LAYER_BYTES:
        raise Invalid({"yaml_text": "The file is larger than 512 KiB."})
    layer, scope = _scope(project, organization_id)
    row = db.session.scalar(select(ConfigLayer).where(ConfigLayer.scope == scope, ConfigLayer.path == path))
    version = row.version + 1 if row else _deleted_version(path, project, organization_id) + 1
    candidate = ConfigLayer(scope=scope, layer=layer, organization_id=organization_id,
                            project_id=project.id if project else None, path=path, yaml_text=yaml_text,
                            version=version, id=row.id if row else 0)
    return candidate, row


def _deleted_version(path: str, project: Project | None, organization_id: int) -> int:
    """The last version of a deleted file at `path` (0 if none): a file made again continues its numbering.

    Cached configurations are keyed by each layer row's path, version and id, and SQLite may give a new row the
    id of a deleted one; a version never used before for the path keeps the new file's key from naming the old.
    """
    events = select(ConfigEvent.detail).where(ConfigEvent.organization_id == organization_id)
    if project is not None:
        events = events.where(ConfigEvent.project_id == project.id, ConfigEvent.kind == "override_deleted")
    else:
        events = events.where(ConfigEvent.project_id.is_(None), ConfigEvent.kind == "default_deleted")
    versions = [int(d.get("version") or 0) for d in db.session.scalars(events) if d and d.get("path") == path]
    return max(versions, default=0)


def check_layer_file(actor: User, path: str, yaml_text: str, *, project: Project | None = None,
                     organization_id: int | None = None) -> LayerCheck:
    """What saving this text would give, without saving: the same validation a save runs (live diagnostics)."""
    organization_id = _check_layer_permission(actor, project, organization_id)
    path = normalize_path(path)
    candidate, _ = _candidate(path, yaml_text, project, organization_id)
    return _check(candidate.layer, project, organization_id, replace=candidate)


def save_layer_file(actor: User, path: str, yaml_text: str, *, project: Project | None = None,
                    organization_id: int | None = None, expected_version: int | None = None,
                    create: bool = False) -> LayerSaveResult:
    """Validate and save one file of a project's overrides (`project=`) or an organization's defaults.

    `path` is relative to `.kiket/` (`project.yaml`, `team.yaml`, `workflows/bug.yaml`…). The file is
    validated with the engine together with the configuration it affects; with a fatal problem nothing is
    saved and the diagnostics say why. A valid save bumps the version and reloads the affected projects
    that have an active revision (their reload revision ids are returned for the first one).
    An editor passes `create=True` for a new file (refused if one has the name) or the `expected_version` it
    opened (refused if someone saved another since, so neither edit is lost silently).
    """
    organization_id = _check_layer_permission(actor, project, organization_id)
    path = normalize_path(path)
    candidate, row = _candidate(path, yaml_text, project, organization_id)
    if create and row is not None:
        raise Invalid({"path": f"{path} already exists in this layer; open it from the list to edit it."})
    if expected_version is not None and (row.version if row else 0) != expected_version:
        who = row.updated_by.display_name if row is not None and row.updated_by else "someone"
        raise Invalid({"version": f"{path} was changed by {who} since you opened it (now version "
                                  f"{row.version if row else 'deleted'}). Your text is kept below: copy what you need, "
                                  "then reopen the file from the list."})
    check = _check(candidate.layer, project, organization_id, replace=candidate)
    if not check.ok:
        return LayerSaveResult(saved=False, layer=row, diagnostics=check.diagnostics)
    before = _current_config(project, organization_id)
    teams = _teams_before(project, organization_id, before)
    if row is None:
        row = ConfigLayer(scope=candidate.scope, layer=candidate.layer, organization_id=organization_id,
                          project_id=project.id if project else None, path=path)
        db.session.add(row)
    row.yaml_text = yaml_text
    row.version = candidate.version
    row.updated_by_id = actor.id
    row.updated_at = utcnow()
    return _commit_change(actor, project, organization_id, "saved", {"path": path, "version": candidate.version},
                          row, check, before, teams)


def delete_layer_file(actor: User, path: str, *, project: Project | None = None,
                      organization_id: int | None = None) -> LayerSaveResult:
    """Delete one file of a layer, unless the configuration without it would not load (then it stays, with why)."""
    organization_id = _check_layer_permission(actor, project, organization_id)
    path = normalize_path(path)
    row = get_layer_file(actor, path, project=project, organization_id=organization_id)
    check = _check(row.layer, project, organization_id, remove=(row.scope, row.path))
    if not check.ok:
        return LayerSaveResult(saved=False, layer=row, diagnostics=check.diagnostics)
    before = _current_config(project, organization_id)
    teams = _teams_before(project, organization_id, before)
    db.session.delete(row)
    return _commit_change(actor, project, organization_id, "deleted", {"path": path, "version": row.version},
                          None, check, before, teams)


def _commit_change(actor: User, project: Project | None, organization_id: int, done: str, detail: dict,
                   layer: ConfigLayer | None, check, before, teams) -> LayerSaveResult:
    """Record a saved or deleted layer file (`done`), commit, bring the teams up to date and say what changed."""
    db.session.add(ConfigEvent(project_id=project.id if project else None, organization_id=organization_id,
                               kind=f"override_{done}" if project else f"default_{done}", actor_id=actor.id,
                               detail=detail))
    db.session.commit()
    _apply_teams(teams)
    return LayerSaveResult(saved=True, layer=layer, diagnostics=check.diagnostics,
                           reload_revision_id=_reload(actor, project, organization_id),
                           changes=_changes(before, check.revision))


def _affected_projects(project: Project | None, organization_id: int) -> list[Project]:
    return [project] if project is not None else list(db.session.scalars(
        select(Project).where(Project.organization_id == organization_id)))


def _teams_before(project: Project | None, organization_id: int,
                  before: km.ConfigRevision | None) -> dict[int, km.Team | None]:
    """The team each affected project runs with before a layer change (None: its configuration does not load)."""
    if project is not None:
        return {project.id: before.team if before is not None else None}
    teams: dict[int, km.Team | None] = {}
    for affected in _affected_projects(None, organization_id):
        try:
            teams[affected.id] = project_config(affected).team
        except Exception:  # an unloadable active revision: its memberships are left as they are
            teams[affected.id] = None
    return teams


def _apply_teams(before: dict[int, km.Team | None]) -> None:
    """Memberships follow the team a layer change gives each project at once, on template projects as on those a
    repository feeds (whose reload applies the same team again): added, re-roled, or gone with their entry."""
    for project_id, previous in before.items():
        project = db.session.get(Project, project_id)
        try:
            config = project_config(project)
        except Exception:  # as above: nothing to apply
            continue
        apply_team(project, config.team, previous=previous)
    db.session.commit()


def _reload(actor: User, project: Project | None, organization_id: int) -> int | None:
    projects = _affected_projects(project, organization_id)
    reloads = [request_reload(p.id, actor_id=actor.id) for p in projects]
    reloads = [r for r in reloads if r is not None]
    return reloads[0] if reloads else None


def _current_config(project: Project | None, organization_id: int) -> km.ConfigRevision | None:
    """The configuration a layer change is compared with: the project's, or the defaults over the template."""
    if project is None:
        return _defaults_check(organization_id).revision
    try:
        return project_config(project)
    except Exception:  # an active revision that cannot be loaded any more: nothing to compare with
        return None


def _changes(before: km.ConfigRevision | None, after: km.ConfigRevision | None) -> RevisionDiff | None:
    return diff_configs(before, after) if before is not None and after is not None else None


def _neutral_project(organization_id: int) -> Project:
    # Organization defaults sit under every project; they are checked over a neutral bundled template.
    return Project(id=0, organization_id=organization_id, key="DEFAULTS", name="", template="kanban")


def _defaults_check(organization_id: int, replace: ConfigLayer | None = None,
                    remove: tuple[str, str] | None = None) -> LoadResult:
    """The organization's defaults (with `replace` standing in for its row, `remove` left out) over the template."""
    rows = list_layer_files(organization_id=organization_id)
    if replace is not None:
        rows = [r for r in rows if r.path != replace.path] + [replace]
    if remove is not None:
        rows = [r for r in rows if (r.scope, r.path) != remove]
    files = {f".kiket/{r.path}": r.yaml_text.encode("utf-8") for r in rows}
    layers = LowerLayers((LayerInput("organization_default", files, ref=organization_scope(organization_id)),)
                         if files else (), "check")
    project = _neutral_project(organization_id)
    template_files, source = template_source(project)
    return load_files(project, template_files, source, layers=layers)


def _check(layer: str, project: Project | None, organization_id: int, *, replace: ConfigLayer | None = None,
           remove: tuple[str, str] | None = None) -> LayerCheck:
    """The layer's diagnostics (and any fatal) when loaded, changed so, with the configuration it affects."""
    if project is None:
        result = _defaults_check(organization_id, replace=replace, remove=remove)
    else:
        layers = lower_layers(project, replace=replace, remove=remove)
        revision = active_revision(project.id)
        if revision is not None and revision.repository_id is not None:
            repository = db.session.get(WorkflowRepository, revision.repository_id)
            files = workflow_sources.read_revision(revision.repository_id, revision.commit_sha)
            source = km.Source(repo=repository.remote_url, branch=revision.branch, commit_sha=revision.commit_sha)
            result = load_files(project, files, source, config_path=repository.config_path, layers=layers)
        else:
            files, source = template_source(project)
            result = load_files(project, files, source, layers=layers)
    diagnostics = [d.to_dict() for d in result.diagnostics if d.prov.layer == layer or d.severity == "fatal"]
    return LayerCheck(diagnostics=diagnostics, revision=result.revision)

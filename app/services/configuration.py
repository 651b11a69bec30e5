"""A project's active configuration, the lower layers edited in the app, and hooks for issues and seeding.

`project_config(project)` is what boards, issues and every other runtime part call to get the
normalized configuration (`app.kiket.model.ConfigRevision`) a project runs on.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy import select

from app.extensions import db
from app.kiket import model as km
from app.kiket.bundled import template_files
from app.kiket.loader import LayerInput, LoadResult, load_revision
from app.models import ConfigEvent, ConfigLayer, ConfigRevision, Project, ProjectSeedMarker, User, WorkflowRepository
from app.models.base import utcnow
from app.services import seeding, workflow_sources
from app.services.errors import Forbidden, Invalid
from app.services.prepared import Prepared
from app.services.projects import project_role

log = logging.getLogger(__name__)

CACHE_SIZE = 64
LAYER_FILE = re.compile(r"^(?:(?:project|team|issue_types)|(?:workflows|boards|automations)/[A-Za-z0-9_-]+)\.ya?ml$")
MAX_LAYER_BYTES = 512 * 1024

_cache: OrderedDict[tuple, km.ConfigRevision] = OrderedDict()
_cache_lock = threading.Lock()


class ConfigUnavailable(Exception):
    """The active revision cannot be loaded any more (its canonical copy is gone or now fails)."""


@dataclass(frozen=True)
class LowerLayers:
    """The project-override and organization-default files of a project, and a version naming their state."""

    inputs: tuple[LayerInput, ...]
    version: str


@dataclass
class LayerSaveResult:
    """Outcome of saving a layer file: saved or not, the diagnostics to show inline, the reload job if any."""

    saved: bool
    layer: ConfigLayer | None
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    reload_revision_id: int | None = None


def project_scope(project_id: int) -> str:
    return f"project:{int(project_id)}"


def organization_scope(organization_id: int) -> str:
    return f"organization:{int(organization_id)}"


def active_revision(project_id: int) -> ConfigRevision | None:
    """The project's active revision row, or None (no repository, or never synced successfully)."""
    return db.session.scalar(
        select(ConfigRevision).where(ConfigRevision.project_id == project_id, ConfigRevision.status == "active")
        .order_by(ConfigRevision.activated_at.desc()).limit(1)
    )


def lower_layers(project: Project, replace: ConfigLayer | None = None) -> LowerLayers:
    """The project's lower layers as loader inputs; `replace` stands in for the stored row of its scope and path."""
    rows = list(db.session.scalars(
        select(ConfigLayer)
        .where(ConfigLayer.scope.in_(_layer_scopes(project)))
        .order_by(ConfigLayer.scope, ConfigLayer.path)
    ))
    if replace is not None:
        rows = [r for r in rows if (r.scope, r.path) != (replace.scope, replace.path)] + [replace]
    inputs = []
    for layer in ("project_override", "organization_default"):
        mine = [r for r in rows if r.layer == layer]
        if mine:
            files = {f".kiket/{r.path}": r.yaml_text.encode("utf-8") for r in mine}
            inputs.append(LayerInput(layer, files, ref=f"{mine[0].scope}"))
    return LowerLayers(tuple(inputs), _layers_version(rows))


def _layer_scopes(project: Project) -> list[str]:
    return [project_scope(project.id), organization_scope(project.organization_id)]


def _layers_version(rows) -> str:
    """A name for the state of the layer rows (anything with scope, path, version and id)."""
    rows = sorted(rows, key=lambda r: (r.scope, r.path))
    marker = "|".join(f"{r.scope}:{r.path}:{r.version}:{r.id}" for r in rows)
    return hashlib.sha256(marker.encode()).hexdigest()[:16] if rows else ""


def load_files(project: Project, files: dict[str, bytes], source: km.Source, *, config_path: str = ".kiket",
               layers: LowerLayers | None = None, skipped: tuple[tuple[str, str], ...] = ()) -> LoadResult:
    """Run the config engine on a repository layer with the project's lower layers and bundled template.

    Team members are not matched against accounts here: the activation turns unknown emails into invitations.
    """
    layers = layers if layers is not None else lower_layers(project)
    return load_revision(files, source=source, lower_layers=layers.inputs, config_path=config_path,
                         bundled_template=project.template, project_key=project.key, skipped=skipped)


def template_source(project: Project) -> tuple[dict[str, bytes], km.Source]:
    """The bundled template a project without a repository runs on, treated as its repository layer."""
    return template_files(project.template), km.Source(repo=f"template:{project.template}")


def project_config(project: Project) -> km.ConfigRevision:
    """The active normalized configuration of a project.

    Loaded from the active revision's canonical copy plus the current lower layers, or, for projects
    with no repository or no active revision yet, from the project's bundled template. Cached in the
    process by (revision, layers version). The key is read from the database on every call with one
    small query (the active revision's id and commit, and each layer row's version; no YAML), so an
    activation or a layer save committed by any process is seen by every process on its next call.
    Raises `ConfigUnavailable` if the active revision cannot be loaded any more.
    """
    revision, layers_version = _config_marker(project)
    if revision is not None and revision.repository_id is not None:
        key = _revision_key(revision.id, revision.repository_id, revision.commit_sha, project, layers_version)
        cached = _cache_get(key)
        if cached is not None:
            return cached
        return revision_config(db.session.get(ConfigRevision, revision.id))
    key = _template_key(project, layers_version)
    cached = _cache_get(key)
    if cached is not None:
        return cached
    layers = lower_layers(project)

    def load() -> LoadResult:
        files, source = template_source(project)
        return load_files(project, files, source, layers=layers)

    return _cached(_template_key(project, layers.version), project, load)


def _config_marker(project: Project):
    """The active revision (id, repository_id, commit_sha) or None, and the layers version: one query."""
    project_scope, organization_scope = _layer_scopes(project)
    # The session's pending rows first, as `session.execute` would.
    db.session.flush()
    marker = _marker_statement()
    rows, _ = marker.execute({"project_id": project.id, "project_scope": project_scope,
                              "organization_scope": organization_scope})
    rows = [SimpleNamespace(**dict(zip(marker.names, row))) for row in rows]
    active = [r for r in rows if r.kind == "r"]
    # As `active_revision`: the latest activation wins should two rows ever be marked active.
    active.sort(key=lambda r: (r.activated_at.timestamp() if r.activated_at else 0.0, r.id), reverse=True)
    return (active[0] if active else None), _layers_version([r for r in rows if r.kind == "l"])


@functools.cache
def _marker_statement() -> Prepared:
    """Built once: constructing the union costs more Python time than running it."""
    text, number = sa.cast(sa.null(), sa.String), sa.cast(sa.null(), sa.Integer)
    revisions = select(
        sa.literal("r").label("kind"), ConfigRevision.id.label("id"), ConfigRevision.repository_id.label("repository_id"),
        ConfigRevision.commit_sha.label("commit_sha"), ConfigRevision.activated_at.label("activated_at"),
        text.label("scope"), text.label("path"), number.label("version"),
    ).where(ConfigRevision.project_id == sa.bindparam("project_id"), ConfigRevision.status == "active")
    layers = select(
        sa.literal("l"), ConfigLayer.id, number, text, sa.cast(sa.null(), ConfigRevision.activated_at.type),
        ConfigLayer.scope, ConfigLayer.path, ConfigLayer.version,
    ).where(ConfigLayer.scope.in_([sa.bindparam("project_scope"), sa.bindparam("organization_scope")]))
    return Prepared(sa.union_all(revisions, layers))


def _template_key(project: Project, layers_version: str) -> tuple:
    return ("template", project.id, project.template, project.key, layers_version)


def _revision_key(revision_id: int, repository_id: int, commit_sha: str, project: Project,
                  layers_version: str) -> tuple:
    return ("revision", revision_id, repository_id, commit_sha, project.id, project.key, project.template,
            layers_version)


def all_project_configs() -> Iterator[tuple[Project, km.ConfigRevision]]:
    """Every project with its active configuration, for sweeps; a project whose config cannot load is skipped."""
    for project in db.session.scalars(select(Project).order_by(Project.id)):
        try:
            yield project, project_config(project)
        except ConfigUnavailable as error:
            log.warning("sweep skips project %s: %s", project.key, error)


def revision_config(revision: ConfigRevision) -> km.ConfigRevision:
    """The normalized configuration of any stored revision (its canonical copy plus the current lower layers)."""
    project = revision.project
    layers = lower_layers(project)
    key = _revision_key(revision.id, revision.repository_id, revision.commit_sha, project, layers.version)

    def load() -> LoadResult:
        repository = db.session.get(WorkflowRepository, revision.repository_id)
        try:
            files = workflow_sources.read_revision(revision.repository_id, revision.commit_sha)
        except workflow_sources.StorageError as exc:
            raise ConfigUnavailable(str(exc)) from exc
        source = km.Source(repo=repository.remote_url, branch=revision.branch, commit_sha=revision.commit_sha)
        return load_files(project, files, source, config_path=repository.config_path, layers=layers)

    return _cached(key, project, load)


def _cache_get(key: tuple) -> km.ConfigRevision | None:
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
        return cached


def _cached(key: tuple, project: Project, load) -> km.ConfigRevision:
    cached = _cache_get(key)
    if cached is not None:
        return cached
    result = load()
    if result.revision is None:
        first = next((d for d in result.diagnostics if d.severity == "fatal"), None)
        raise ConfigUnavailable(f"the configuration of {project.key} does not load: {first.format() if first else '?'}")
    with _cache_lock:
        _cache[key] = result.revision
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return result.revision


def clear_cache() -> None:
    """Forget every cached configuration (tests; the cache keys make this unnecessary in production)."""
    with _cache_lock:
        _cache.clear()


def count_issues_in_states(project_id: int, workflow_id: str, states: tuple[str, ...] | list[str]) -> int:
    """Number of the project's issues on `workflow_id` currently in one of `states` (used by revision diffs)."""
    from sqlalchemy import func

    from app.models.issues import Issue

    if not states:
        return 0
    return db.session.scalar(select(func.count()).select_from(Issue).where(
        Issue.project_id == project_id, Issue.workflow_id == workflow_id, Issue.state.in_(list(states)))) or 0


def seed_issues_once(project: Project, revision: km.ConfigRevision, revision_id: int | None = None) -> bool:
    """Create the seed issues of a project's first activated configuration, once ever; True when it ran.

    Runs inside the caller's transaction (the activation): the marker row and the issues commit together.
    """
    seeded = db.session.scalar(select(ProjectSeedMarker.id).where(ProjectSeedMarker.project_id == project.id))
    if seeded is not None:
        return False
    db.session.add(ProjectSeedMarker(project_id=project.id, revision_id=revision_id))
    db.session.flush()
    seeding.create_seed_issues(project, revision.project.seed_issues)
    return True


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
    from app.services import sync  # sync uses this module; importing it here avoids a cycle

    projects = [project] if project is not None else list(db.session.scalars(
        select(Project).where(Project.organization_id == organization_id)))
    reloads = [sync.request_reload(p.id, actor_id=actor.id) for p in projects]
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

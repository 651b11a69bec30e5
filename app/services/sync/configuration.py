"""A project's active configuration: its active revision's canonical copy over its lower layers, cached.

`project_config(project)` is what boards, issues and every other runtime part call to get the
normalized configuration (`app.kiket.model.ConfigRevision`) a project runs on.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import select

from app.extensions import db
from app.kiket import model as km
from app.kiket.bundled import template_files
from app.kiket.loader import LayerInput, LoadResult, load_revision
from app.models import ConfigLayer, ConfigRevision, Project, WorkflowRepository
from app.services.prepared import Prepared
from app.services.sync import workflow_sources

log = logging.getLogger(__name__)

CACHE_SIZE = 64
_cache: OrderedDict[tuple, km.ConfigRevision] = OrderedDict()
_cache_lock = threading.Lock()


class ConfigUnavailable(Exception):
    """The active revision cannot be loaded any more (its canonical copy is gone or now fails)."""


@dataclass(frozen=True)
class LowerLayers:
    """The project-override and organization-default files of a project, and a version naming their state."""

    inputs: tuple[LayerInput, ...]
    version: str


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


def lower_layers(project: Project, replace: ConfigLayer | None = None,
                 remove: tuple[str, str] | None = None) -> LowerLayers:
    """The project's lower layers as loader inputs; `replace` stands in for the stored row of its scope and path,
    and the row of `remove` (scope, path) is left out (a deletion being checked)."""
    rows = list(db.session.scalars(
        select(ConfigLayer)
        .where(ConfigLayer.scope.in_(_layer_scopes(project)))
        .order_by(ConfigLayer.scope, ConfigLayer.path)
    ))
    if replace is not None:
        rows = [r for r in rows if (r.scope, r.path) != (replace.scope, replace.path)] + [replace]
    if remove is not None:
        rows = [r for r in rows if (r.scope, r.path) != remove]
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
    """A name for the state of the layer rows (anything with scope, path, version, id and updated_at).

    The save time is part of it: a row id and version can come back after a delete (SQLite reuses ids), and
    a cached configuration of the old row must not stand in for the new one.
    """
    rows = sorted(rows, key=lambda r: (r.scope, r.path))
    marker = "|".join(f"{r.scope}:{r.path}:{r.version}:{r.id}:{r.updated_at.timestamp() if r.updated_at else ''}"
                      for r in rows)
    return hashlib.sha256(marker.encode()).hexdigest()[:16] if rows else ""


def load_files(project: Project, files: dict[str, bytes], source: km.Source, *, config_path: str = ".kiket",
               layers: LowerLayers | None = None, skipped: tuple[tuple[str, str], ...] = ()) -> LoadResult:
    """Run the config engine on a repository layer with the project's lower layers and bundled template.

    Team members are not matched against accounts here: the activation turns unknown emails into invitations.
    """
    layers = layers if layers is not None else lower_layers(project)
    # A bundled template's own key and name (KANBAN, "Kanban") are not the project's: only a repository's
    # differing ones are worth telling (project_key_mismatch, project_name_mismatch).
    own = not (source.repo or "").startswith("template:")
    return load_revision(files, source=source, lower_layers=layers.inputs, config_path=config_path,
                         bundled_template=project.template, project_key=project.key if own else None,
                         project_name=project.name if own else None, skipped=skipped)


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
    for row in rows:  # a layer row's save time comes in the revisions' activated_at column
        row.updated_at = row.activated_at
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
        sa.literal("l"), ConfigLayer.id, number, text, ConfigLayer.updated_at,
        ConfigLayer.scope, ConfigLayer.path, ConfigLayer.version,
    ).where(ConfigLayer.scope.in_([sa.bindparam("project_scope"), sa.bindparam("organization_scope")]))
    return Prepared(sa.union_all(revisions, layers))


def _template_key(project: Project, layers_version: str) -> tuple:
    return ("template", project.id, project.template, project.key, project.name, layers_version)


def _revision_key(revision_id: int, repository_id: int, commit_sha: str, project: Project,
                  layers_version: str) -> tuple:
    return ("revision", revision_id, repository_id, commit_sha, project.id, project.key, project.name,
            project.template, layers_version)


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

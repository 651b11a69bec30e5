"""Revision history: list revisions and their sources, compare two, roll back to an earlier one."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import func, select

from app.extensions import db
from app.kiket.diff import RevisionDiff, diff_configs
from app.kiket.loader import is_config_file
from app.models import ConfigRevision, Project, User
from app.models.issues import Issue
from app.services import live
from app.services.errors import Conflict, Invalid, NotFound
from app.services.projects import project_role
from app.services.sync import configuration, git, stranding, workflow_sources
from app.services.sync.activation import activate, announce, load_stored
from app.services.sync.config_sources import ConfigSourceError, read_git_tree_files
from app.services.sync.repositories import get_repository, require_manage
from app.services.sync.runs import get_sync_run

log = logging.getLogger(__name__)

@dataclass
class RevisionComparison:
    """Two revisions, their element diff, and issues sitting in states the newer one removed."""

    older: ConfigRevision
    newer: ConfigRevision
    diff: RevisionDiff
    # {workflow id: {state key: issue count}} for every removed state.
    affected_issues: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def affected_total(self) -> int:
        return sum(sum(states.values()) for states in self.affected_issues.values())


def list_revisions(project_id: int, limit: int = 50) -> list[ConfigRevision]:
    """The project's revisions, newest first."""
    return list(db.session.scalars(select(ConfigRevision).where(ConfigRevision.project_id == project_id)
                                   .order_by(ConfigRevision.id.desc()).limit(limit)))


def get_revision(revision_id: int, actor: User | None = None) -> ConfigRevision:
    """One revision, if it exists and (with `actor`) the user may see its project."""
    revision = db.session.get(ConfigRevision, revision_id)
    if revision is None or (actor is not None and project_role(actor, revision.project) is None):
        raise NotFound(f"No revision {revision_id}.")
    return revision


def revision_source(revision_id: int, path: str, actor: User | None = None) -> list[str]:
    """Lines of one file of a revision's canonical copy, for the source view (diagnostics link to file:line)."""
    revision = get_revision(revision_id, actor)
    if not is_config_file(path, _config_path(revision)):
        raise NotFound(f"{path} is not a configuration file of revision {revision.short_sha}.")
    try:
        data = workflow_sources.read_file(revision.repository_id, revision.commit_sha, path)
    except workflow_sources.StorageError as exc:
        raise NotFound(str(exc)) from None
    return data.decode("utf-8", "replace").splitlines()


def revision_files(revision_id: int, actor: User | None = None) -> list[str]:
    """Paths in a revision's canonical copy."""
    revision = get_revision(revision_id, actor)
    try:
        files = workflow_sources.read_revision(revision.repository_id, revision.commit_sha)
    except workflow_sources.StorageError as exc:
        raise NotFound(str(exc)) from None
    # Copies written before they held configuration files only may hold others: those are not shown either.
    return sorted(path for path in files if is_config_file(path, _config_path(revision)))


def _config_path(revision: ConfigRevision) -> str:
    return revision.repository.config_path if revision.repository is not None else ".kiket"


def run_source(sync_run_id: int, path: str, actor: User | None = None) -> list[str]:
    """Lines of one file as a sync run saw it: from the canonical copy, or (a rejected commit) from the mirror."""
    run = get_sync_run(sync_run_id)
    repository = get_repository(run.repository_id, actor)
    if not run.commit_sha:
        raise NotFound("This run never resolved a commit.")
    if run.revision_id is not None:
        return revision_source(run.revision_id, path, actor)
    try:
        tree = read_git_tree_files(git.mirror_path(repository.id), run.commit_sha, repository.config_path)
    except ConfigSourceError:
        raise NotFound(f"The files of commit {run.commit_sha[:10]} are no longer available.") from None
    if path not in tree.files or not is_config_file(path, repository.config_path):
        raise NotFound(f"{path} is not a configuration file of commit {run.commit_sha[:10]}.")
    return tree.files[path].decode("utf-8", "replace").splitlines()


class WouldStrand(Conflict):
    """A rollback that would leave issues on a workflow or state the older revision lacks: confirm it first."""

    def __init__(self, stranded: list[stranding.Stranded]):
        super().__init__("Rolling back would leave " + "; ".join(s.describe() for s in stranded) + ".")
        self.stranded = stranded


def stranded_by(revision_id: int, actor: User | None = None) -> list[stranding.Stranded]:
    """The issues activating this revision again would strand (for the rollback's confirmation)."""
    revision = get_revision(revision_id, actor)
    try:
        return stranding.stranded_issues(revision.project_id, configuration.revision_config(revision))
    except configuration.ConfigUnavailable:
        return []


def rollback(project: Project, revision_id: int, actor: User | None, *, confirm: bool = False) -> ConfigRevision:
    """Activate an earlier revision of the project again, from its canonical copy (recorded as `rolled_back`).

    When it would strand issues (§16), it raises `WouldStrand` unless `confirm` says the actor read how many.
    """
    require_manage(actor, project)
    revision = db.session.get(ConfigRevision, revision_id)
    if revision is None or revision.project_id != project.id:
        raise NotFound(f"No revision {revision_id} in {project.key}.")
    if revision.status == "active":
        raise Conflict("This revision is already active.")
    if revision.status not in ("superseded",):
        raise Conflict(f"A {revision.status} revision cannot be activated.")
    config = load_stored(revision)
    if isinstance(config, str):
        db.session.rollback()
        raise Conflict(f"Revision {revision.short_sha} cannot be activated again: {config}")
    stranded = stranding.stranded_issues(project.id, config)
    if stranded and not confirm:
        db.session.rollback()
        raise WouldStrand(stranded)
    previous = configuration.active_revision(project.id)
    activate(revision, config, kind="rolled_back", actor_id=actor.id if actor else None)
    repository = revision.repository
    if repository is not None:
        # The tracked branch is the active revision's: the picker's "(tracked)", the next Sync and a push to that
        # branch follow what is live, not the branch synced last.
        if repository.branch != revision.branch:
            log.info("tracked branch of repo=%s follows the rollback %s -> %s", repository.id, repository.branch,
                     revision.branch)
            repository.branch = revision.branch
        # Open dashboards refresh their status card, history, branch picker and overview row with this commit.
        live.sync_changed(db.session(), project.organization_id, repository.id, None)
    db.session.commit()
    announce(project.id, revision.id)
    log.info("project=%s rolled back to revision=%s (was %s)", project.key, revision.id,
             previous.id if previous else None)
    return revision


def diff_revisions(older_id: int, newer_id: int, actor: User | None = None) -> RevisionComparison:
    """Element changes from one revision to another, with the issues sitting in states the newer one removed."""
    older, newer = get_revision(older_id, actor), get_revision(newer_id, actor)
    if older.project_id != newer.project_id:
        raise Invalid({"revision": "Compare two revisions of the same project."})
    try:
        a, b = configuration.revision_config(older), configuration.revision_config(newer)
    except configuration.ConfigUnavailable as exc:
        raise Conflict(str(exc)) from None
    diff = diff_configs(a, b)
    affected = {wf: {state: count_issues_in_states(older.project_id, wf, [state]) for state in states}
                for wf, states in diff.removed_states().items()}
    return RevisionComparison(older, newer, diff, affected)


def count_issues_in_states(project_id: int, workflow_id: str, states: tuple[str, ...] | list[str]) -> int:
    """Number of the project's issues on `workflow_id` currently in one of `states` (used by revision diffs)."""
    if not states:
        return 0
    return db.session.scalar(select(func.count()).select_from(Issue).where(
        Issue.project_id == project_id, Issue.workflow_id == workflow_id, Issue.state.in_(list(states)))) or 0

"""Workflow repositories: add, sync a branch, load and activate revisions, roll back, compare.

The path from a commit to a running configuration:

1. `request_sync` creates a `SyncRun` and enqueues `jobs.configuration.sync_workflow_repository`; while a
   run of the repository is queued or running, further requests join it (one sync per repository).
2. `sync_repository` (the job): fetch → resolve the branch → stop as `unchanged` if that commit is the
   active revision → read `.kiket/` from git's object store → validate → write the canonical copy
   atomically → a pending `ConfigRevision` → enqueue `jobs.configuration.load_project_configuration`.
3. `load_configuration` (the job): load the canonical copy again with the lower layers, apply
   project.yaml and team.yaml, seed issues on the first activation, and activate the revision, all in one
   transaction. Anything fatal or any exception leaves the previous revision active.

Every status change of a run is published on the Redis channel `kiket:sync:<repository id>` as JSON
`{"repository_id", "sync_run_id", "status", "revision_id"}` (ids and status only, never HTML).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from typing import Iterator

from flask import current_app
from redis.exceptions import RedisError
from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import func, select

from app.extensions import db
from app.kiket import model as km
from app.kiket.diff import RevisionDiff, diff_configs
from app.models import (
    ConfigEvent,
    ConfigRevision,
    Invitation,
    Organization,
    OrganizationMembership,
    Project,
    ProjectMembership,
    SyncRun,
    User,
    WorkflowRepository,
)
from app.models.base import utcnow
from app.models.repositories import SYNC_DONE, SYNC_IN_FLIGHT, SYNC_TRIGGERS
from app.queue import enqueue, redis_connection
from app.services import configuration, events, git, workflow_sources
from app.services.config_sources import ConfigSourceError, read_git_tree_files
from app.services.errors import Conflict, Forbidden, Invalid, NotFound
from app.services.projects import project_role

log = logging.getLogger(__name__)

SYNC_JOB_TIMEOUT_S = 600
LOAD_JOB_TIMEOUT_S = 300
REQUEST_LOCK_TIMEOUT_S = 30
MANAGER_ROLES = ("owner", "admin")


def sync_channel(repository_id: int) -> str:
    """Redis pub/sub channel carrying status changes of a repository's sync runs."""
    return f"kiket:sync:{int(repository_id)}"


@dataclass
class RepositoryOverview:
    """One line of the repositories dashboard."""

    repository: WorkflowRepository
    active_revision: ConfigRevision | None
    last_run: SyncRun | None


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


# Repositories


def can_manage(actor: User, project: Project) -> bool:
    """True when the user may add, sync and roll back the project's configuration (project owner/admin)."""
    return project_role(actor, project) in MANAGER_ROLES


def _require_manage(actor: User | None, project: Project) -> None:
    # `actor=None` is the system itself (CLI, webhook, jobs); views always pass the current user.
    if actor is not None and not can_manage(actor, project):
        raise Forbidden("Only project owners and admins can manage its workflow repository.")


def get_repository(repository_id: int, actor: User | None = None) -> WorkflowRepository:
    """The repository, if it exists and (with `actor`) the user may see its project."""
    repository = db.session.get(WorkflowRepository, repository_id)
    if repository is None or (actor is not None and project_role(actor, repository.project) is None):
        raise NotFound(f"No workflow repository {repository_id}.")
    return repository


def repository_for_project(project_id: int) -> WorkflowRepository | None:
    """The project's workflow repository, or None."""
    return db.session.scalar(select(WorkflowRepository).where(WorkflowRepository.project_id == project_id))


def add_repository(project: Project, url: str, *, branch: str = "main", config_path: str = ".kiket",
                   token: str | None = None, actor: User | None = None) -> tuple[WorkflowRepository, str]:
    """Connect a project to a git repository; returns it with its webhook secret (show it once)."""
    _require_manage(actor, project)
    url = git.validate_remote_url(url, allow_local=git.allow_local_remotes())
    branch = git.validate_branch(branch)
    config_path = _validate_config_path(config_path)
    if repository_for_project(project.id) is not None:
        raise Conflict(f"{project.key} already has a workflow repository; change it instead of adding another.")
    github = git.parse_github(url)
    secret = secrets.token_urlsafe(32)
    repository = WorkflowRepository(
        project_id=project.id, remote_url=url, branch=branch, config_path=config_path,
        token_encrypted=git.encrypt_token(token) if token else None,
        webhook_secret_encrypted=git.encrypt_token(secret),
        github_owner=github[0] if github else None, github_name=github[1] if github else None,
        created_by_id=actor.id if actor else None,
    )
    db.session.add(repository)
    db.session.commit()
    log.info("workflow repository added repo=%s project=%s", repository.id, project.key)
    return repository, secret


def update_repository(repository_id: int, *, actor: User | None = None, url: str | None = None,
                      branch: str | None = None, config_path: str | None = None, token: str | None = None,
                      clear_token: bool = False) -> WorkflowRepository:
    """Change a repository's remote, tracked branch, config path or access token (None leaves a value as is)."""
    repository = get_repository(repository_id, actor)
    _require_manage(actor, repository.project)
    if url is not None:
        repository.remote_url = git.validate_remote_url(url, allow_local=git.allow_local_remotes())
        github = git.parse_github(repository.remote_url)
        repository.github_owner, repository.github_name = github if github else (None, None)
    if branch is not None:
        repository.branch = git.validate_branch(branch)
    if config_path is not None:
        repository.config_path = _validate_config_path(config_path)
    if clear_token:
        repository.token_encrypted = None
    elif token:
        repository.token_encrypted = git.encrypt_token(token)
    db.session.commit()
    return repository


def rotate_webhook_secret(repository_id: int, actor: User | None = None) -> str:
    """Generate a new webhook secret and return it (show it once)."""
    repository = get_repository(repository_id, actor)
    _require_manage(actor, repository.project)
    secret = secrets.token_urlsafe(32)
    repository.webhook_secret_encrypted = git.encrypt_token(secret)
    db.session.commit()
    return secret


def webhook_secret(repository: WorkflowRepository) -> str | None:
    """The plain webhook secret, for signature checks only."""
    return git.decrypt_token(repository.webhook_secret_encrypted)


def _validate_config_path(config_path: str) -> str:
    path = (config_path or ".kiket").strip().strip("/")
    parts = path.split("/")
    if not path or len(path) > 255 or any(p in ("", ".", "..") or p.startswith("-") for p in parts) or \
            any(ch.isspace() or ch in "\\:*?[" for ch in path):
        raise Invalid({"config_path": "Give a relative directory like .kiket or config/.kiket."})
    return path


def list_branches(repository_id: int, actor: User | None = None) -> list[str]:
    """Branch names of the repository's remote, for the branch picker (GitHub API or `git ls-remote`)."""
    repository = get_repository(repository_id, actor)
    try:
        return git.list_repository_branches(repository)
    except git.GitError as exc:
        raise Conflict(str(exc)) from None


def repository_overview(actor: User) -> list[RepositoryOverview]:
    """Every repository of the projects the user may see, with its active revision and its last sync run."""
    from app.services.projects import visible_projects

    projects = {p.id: p for p in visible_projects(actor)}
    if not projects:
        return []
    repositories = list(db.session.scalars(
        select(WorkflowRepository).where(WorkflowRepository.project_id.in_(projects)).order_by(WorkflowRepository.id)))
    out = []
    for repository in repositories:
        active = db.session.get(ConfigRevision, repository.active_revision_id) if repository.active_revision_id else None
        last = db.session.scalar(select(SyncRun).where(SyncRun.repository_id == repository.id)
                                 .order_by(SyncRun.id.desc()).limit(1))
        out.append(RepositoryOverview(repository, active, last))
    return out


def list_sync_runs(repository_id: int, limit: int = 20) -> list[SyncRun]:
    """The repository's latest sync runs, newest first."""
    return list(db.session.scalars(select(SyncRun).where(SyncRun.repository_id == repository_id)
                                   .order_by(SyncRun.id.desc()).limit(limit)))


def get_sync_run(sync_run_id: int) -> SyncRun:
    """One sync run (NotFound when absent)."""
    run = db.session.get(SyncRun, sync_run_id)
    if run is None:
        raise NotFound(f"No sync run {sync_run_id}.")
    return run


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
    try:
        data = workflow_sources.read_file(revision.repository_id, revision.commit_sha, path)
    except workflow_sources.StorageError as exc:
        raise NotFound(str(exc)) from None
    return data.decode("utf-8", "replace").splitlines()


def revision_files(revision_id: int, actor: User | None = None) -> list[str]:
    """Paths in a revision's canonical copy."""
    revision = get_revision(revision_id, actor)
    try:
        return sorted(workflow_sources.read_revision(revision.repository_id, revision.commit_sha))
    except workflow_sources.StorageError as exc:
        raise NotFound(str(exc)) from None


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
    if path not in tree.files:
        raise NotFound(f"{path} is not part of commit {run.commit_sha[:10]}.")
    return tree.files[path].decode("utf-8", "replace").splitlines()


# Requesting a sync


def request_sync(repository_id: int, branch: str | None = None, trigger: str = "ui",
                 actor: User | None = None) -> SyncRun:
    """Queue a sync of the repository (optionally switching its tracked branch); joins a sync in flight.

    Concurrent requests are serialized by a Redis lock, so any number of them create one run and one job.
    A run whose worker died (SIGKILL, lost machine) is marked failed and does not block new requests.
    """
    if trigger not in SYNC_TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}")
    repository = get_repository(repository_id, actor)
    _require_manage(actor, repository.project)
    if branch is not None:
        branch = git.validate_branch(branch)
    lock = redis_connection().lock(f"kiket:lock:sync-request:{repository.id}", timeout=REQUEST_LOCK_TIMEOUT_S,
                                   blocking_timeout=REQUEST_LOCK_TIMEOUT_S)
    if not lock.acquire():
        raise Conflict("Another sync request of this repository is still being recorded; try again.")
    try:
        db.session.commit()  # end the current transaction, so the query below sees other requests' runs
        running = db.session.scalar(select(SyncRun).where(SyncRun.repository_id == repository.id,
                                                          SyncRun.status.in_(SYNC_IN_FLIGHT))
                                    .order_by(SyncRun.id.desc()).limit(1))
        if running is not None:
            lost = _lost_reason(running)
            if lost is None:
                if branch is not None and branch != running.branch:
                    raise Conflict(f"A sync of {running.branch} is in progress; sync {branch} when it is done.")
                if running.status != "queued":
                    # It may have resolved its commit before this request's push: sync again once it ends.
                    redis_connection().set(_followup_key(repository.id), trigger, ex=24 * 3600)
                return running
            _finish(running, "failed", error=lost, followup=False)
        if branch is not None and branch != repository.branch:
            log.info("tracked branch of repo=%s changes %s -> %s", repository.id, repository.branch, branch)
            repository.branch = branch
        run = SyncRun(repository_id=repository.id, branch=repository.branch, trigger=trigger, status="queued",
                      requested_by_id=actor.id if actor else None, enqueued_at=utcnow(), timings={},
                      diagnostics=[], summary={})
        db.session.add(run)
        db.session.flush()
        run.job_id = f"sync-{repository.id}-{run.id}"
        db.session.commit()
        enqueue("configuration", "jobs.configuration.sync_workflow_repository", run.id, job_id=run.job_id,
                job_timeout=SYNC_JOB_TIMEOUT_S, result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600)
    finally:
        lock.release()
    log.info("sync requested repo=%s run=%s branch=%s trigger=%s", repository.id, run.id, run.branch, trigger)
    _publish(run)
    return run


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A killed work horse whose parent died too can linger as a zombie nobody reaps (containers).
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return True


def _lost_reason(run: SyncRun) -> str | None:
    """Why an in-flight run can no longer finish (its worker died, its job vanished), or None if it still can."""
    if run.worker_host == socket.gethostname() and run.worker_pid and not _pid_alive(run.worker_pid):
        return f"the worker running this sync (pid {run.worker_pid}) stopped before it finished"
    job_id = run.load_job_id if run.status == "loading" else run.job_id
    if job_id:
        try:
            status = Job.fetch(job_id, connection=redis_connection()).get_status(refresh=True)
        except NoSuchJobError:
            return "its job is no longer in the queue"
        if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            return f"its job ended as {status.value}"
    timeout = SYNC_JOB_TIMEOUT_S + LOAD_JOB_TIMEOUT_S
    if run.started_at is not None and utcnow() - run.started_at > timedelta(seconds=timeout + 60):
        return f"it did not finish within {timeout} s"
    return None


# The sync job


@contextmanager
def _timed(timings: dict[str, int], phase: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = int((time.perf_counter() - started) * 1000)


def _queue_wait_ms() -> int | None:
    """Milliseconds the current RQ job waited in its queue (None outside a worker)."""
    job = get_current_job()
    enqueued = job.enqueued_at if job is not None else None
    if enqueued is None:
        return None
    if enqueued.tzinfo is None:
        enqueued = enqueued.replace(tzinfo=timezone.utc)
    return max(0, int((utcnow() - enqueued).total_seconds() * 1000))


def sync_repository(sync_run_id: int) -> SyncRun:
    """Run a queued sync (the `sync_workflow_repository` job): fetch, validate, write, enqueue the load."""
    run = get_sync_run(sync_run_id)
    if run.status != "queued":
        log.info("sync run=%s is %s already; nothing to do", run.id, run.status)
        return run
    repository = run.repository
    project = repository.project
    timings: dict[str, int] = {}
    wait = _queue_wait_ms()
    if wait is not None:
        timings["queue"] = wait
    job = get_current_job()
    run.worker_name = getattr(job, "worker_name", None) if job else None
    run.worker_host = socket.gethostname()[:255]
    run.worker_pid = os.getpid()
    run.started_at = utcnow()
    _advance(run, "fetching")
    try:
        workflow_sources.remove_stray_temp_dirs(repository.id)
        with _timed(timings, "fetch"):
            mirror = git.fetch(repository, run.branch)
        with _timed(timings, "resolve"):
            sha = git.resolve(repository, run.branch)
            info = git.commit_info(repository, sha)
        run.commit_sha, run.commit_author, run.commit_message = sha, info.author, info.message
        run.timings = dict(timings)
        active = configuration.active_revision(project.id)
        if active is not None and active.repository_id == repository.id and active.commit_sha == sha:
            run.revision_id = active.id
            _finish(run, "unchanged")
            log.info("sync run=%s repo=%s commit=%s is already active", run.id, repository.id, sha[:10])
            return run
        _advance(run, "validating")
        with _timed(timings, "read"):
            tree = read_git_tree_files(mirror, sha, repository.config_path)
        with _timed(timings, "validate"):
            layers = configuration.lower_layers(project)
            result = configuration.load_files(
                project, tree.files, km.Source(repo=repository.remote_url, branch=run.branch, commit_sha=sha),
                config_path=repository.config_path, layers=layers, skipped=tuple(tree.skipped))
        run.timings = dict(timings)
        run.diagnostics = [d.to_dict() for d in result.diagnostics]
        run.summary = {**result.summary(), "counts": result.counts}
        if not result.ok:
            _finish(run, "failed", error=_fatal_summary(result.diagnostics))
            return run
        _advance(run, "writing")
        with _timed(timings, "write"):
            path = workflow_sources.write_revision(repository.id, sha, tree.files)
        revision = ConfigRevision(
            project_id=project.id, repository_id=repository.id, commit_sha=sha, branch=run.branch, status="pending",
            storage_path=str(path), layers_version=layers.version, summary=run.summary,
            diagnostics=run.diagnostics, workflow_versions={wf.id: wf.version for wf in result.revision.workflows.values()},
        )
        db.session.add(revision)
        db.session.flush()
        run.revision_id = revision.id
        run.load_job_id = f"load-{revision.id}"
        run.timings = dict(timings)
        _advance(run, "loading")
        enqueue("configuration", "jobs.configuration.load_project_configuration", revision.id,
                job_id=run.load_job_id, job_timeout=LOAD_JOB_TIMEOUT_S, result_ttl=24 * 3600,
                failure_ttl=7 * 24 * 3600)
        log.info("sync run=%s repo=%s commit=%s validated in %s", run.id, repository.id, sha[:10], timings)
        return run
    except Exception as exc:
        db.session.rollback()
        _record_failure(sync_run_id, exc, timings)
        raise


def _fatal_summary(diagnostics) -> str:
    fatal = [d for d in diagnostics if d.severity == "fatal"]
    first = fatal[0].format() if fatal else "unknown problem"
    more = f" (and {len(fatal) - 1} more)" if len(fatal) > 1 else ""
    return f"{len(fatal)} fatal problem{'s' if len(fatal) != 1 else ''}: {first}{more}"[:2000]


def _record_failure(sync_run_id: int, exc: BaseException, timings: dict[str, int]) -> None:
    run = db.session.get(SyncRun, sync_run_id)
    if run is None or run.status in SYNC_DONE:
        return
    if timings:
        run.timings = {**(run.timings or {}), **timings}
    reason = str(exc) if isinstance(exc, (git.GitError, workflow_sources.StorageError, Invalid)) \
        else f"{exc.__class__.__name__}: {exc}"
    _finish(run, "failed", error=reason[:2000])
    log.warning("sync run=%s failed: %s", run.id, reason)


def _advance(run: SyncRun, status: str) -> None:
    run.status = status
    db.session.commit()
    _publish(run)


def _finish(run: SyncRun, status: str, error: str | None = None, *, followup: bool = True) -> None:
    run.status = status
    run.error = error
    run.finished_at = utcnow()
    db.session.commit()
    _publish(run)
    if followup:
        _start_followup(run.repository_id)


def _followup_key(repository_id: int) -> str:
    return f"kiket:sync:followup:{int(repository_id)}"


def _start_followup(repository_id: int) -> None:
    """Run the sync a request asked for while this one was already past resolving its commit."""
    try:
        trigger = redis_connection().getdel(_followup_key(repository_id))
        if trigger is not None:
            request_sync(repository_id, trigger=trigger.decode())
    except (RedisError, Conflict) as exc:
        log.warning("follow-up sync of repo=%s not started: %s", repository_id, exc)


def _publish(run: SyncRun) -> None:
    message = json.dumps({"repository_id": run.repository_id, "sync_run_id": run.id, "status": run.status,
                          "revision_id": run.revision_id})
    try:
        redis_connection().publish(sync_channel(run.repository_id), message)
    except RedisError as exc:
        # Live updates are a convenience: the dashboard also reads the run from the database.
        log.warning("could not publish sync status run=%s: %s", run.id, exc.__class__.__name__)


# The load job


def load_configuration(revision_id: int) -> ConfigRevision:
    """Activate a pending revision (the `load_project_configuration` job); the previous one stays on failure."""
    revision = db.session.get(ConfigRevision, revision_id)
    if revision is None:
        raise NotFound(f"No revision {revision_id}.")
    if revision.status != "pending":
        log.info("revision=%s is %s already; nothing to load", revision.id, revision.status)
        return revision
    run_id = db.session.scalar(select(SyncRun.id).where(SyncRun.revision_id == revision.id))
    started = time.perf_counter()
    load_wait = _queue_wait_ms()
    try:
        config = _load_stored(revision)
        if isinstance(config, str):
            revision.status = "rejected"
            revision.error = config
            db.session.add(ConfigEvent(project_id=revision.project_id, kind="rejected", revision_id=revision.id,
                                       detail={"commit": revision.commit_sha, "error": config}))
            _finish_load(run_id, "failed", started, load_wait, error=config)
            return revision
        _activate(revision, config, kind="activated", actor_id=None)
        _finish_load(run_id, "active", started, load_wait)
        events.workflow_updated(revision.project_id, revision.id)
        log.info("revision=%s project=%s commit=%s active", revision.id, revision.project.key, revision.commit_sha[:10])
    except Exception as exc:
        db.session.rollback()
        failed = db.session.get(ConfigRevision, revision_id)
        if failed is not None and failed.status == "pending":
            failed.status = "rejected"
            failed.error = f"{exc.__class__.__name__}: {exc}"[:2000]
        if run_id is not None:
            _record_failure(run_id, exc, {"load": int((time.perf_counter() - started) * 1000)})
        else:
            db.session.commit()
        raise
    _prune(revision.repository)
    return revision


def _finish_load(run_id: int | None, status: str, started: float, load_wait: int | None,
                 error: str | None = None) -> None:
    run = db.session.get(SyncRun, run_id) if run_id is not None else None
    if run is None:
        db.session.commit()
        return
    timings = {**(run.timings or {}), "load": int((time.perf_counter() - started) * 1000)}
    if load_wait is not None:
        timings["load_queue"] = load_wait
    run.timings = timings
    _finish(run, status, error=error)


def _load_stored(revision: ConfigRevision) -> km.ConfigRevision | str:
    """The revision's configuration from its canonical copy with the current layers, or why it fails."""
    repository = revision.repository
    project = revision.project
    try:
        files = workflow_sources.read_revision(revision.repository_id, revision.commit_sha)
    except workflow_sources.StorageError as exc:
        return str(exc)
    layers = configuration.lower_layers(project)
    result = configuration.load_files(
        project, files, km.Source(repo=repository.remote_url, branch=revision.branch, commit_sha=revision.commit_sha),
        config_path=repository.config_path, layers=layers)
    revision.diagnostics = [d.to_dict() for d in result.diagnostics]
    revision.summary = {**result.summary(), "counts": result.counts}
    revision.layers_version = layers.version
    if not result.ok:
        return _fatal_summary(result.diagnostics)
    return result.revision


def _activate(revision: ConfigRevision, config: km.ConfigRevision, *, kind: str, actor_id: int | None) -> None:
    """Make `revision` the project's active one and apply its settings and team; the caller commits."""
    project = revision.project
    for other in db.session.scalars(select(ConfigRevision).where(ConfigRevision.project_id == project.id,
                                                                 ConfigRevision.status == "active",
                                                                 ConfigRevision.id != revision.id)):
        other.status = "superseded"
    revision.status = "active"
    revision.error = None
    revision.activated_at = utcnow()
    revision.workflow_versions = {wf.id: wf.version for wf in config.workflows.values()}
    if revision.repository is not None:
        revision.repository.active_revision_id = revision.id
    _apply_project(project, config.project)
    _apply_team(project, config.team)
    db.session.add(ConfigEvent(project_id=project.id, kind=kind, revision_id=revision.id, actor_id=actor_id,
                               detail={"commit": revision.commit_sha, "branch": revision.branch}))
    configuration.seed_issues_once(project, config, revision.id)


def _apply_project(project: Project, settings: km.Project) -> None:
    if settings.name:
        project.name = settings.name.strip()[:120]
    if settings.description is not None:
        project.description = settings.description.strip()


def _project_role_for(roles: tuple[str, ...]) -> str:
    """The app's project role for a member's configured roles (the repository never grants owner)."""
    if "admin" in roles:
        return "admin"
    if roles and all(role == "viewer" for role in roles):
        return "viewer"
    return "member"


def _apply_team(project: Project, team: km.Team) -> None:
    """Members with accounts get their project role; unknown emails become pending invitations."""
    if not team.members:
        return
    organization: Organization = project.organization
    users = {u.email.lower(): u for u in db.session.scalars(
        select(User).join(OrganizationMembership).where(OrganizationMembership.organization_id == organization.id))}
    memberships = {m.user_id: m for m in project.memberships}
    for member in team.members:
        identity = member.identity.strip().lower()
        role = _project_role_for(member.roles)
        user = users.get(identity)
        if user is not None:
            membership = memberships.get(user.id)
            if membership is None:
                membership = ProjectMembership(user_id=user.id, role=role)
                project.memberships.append(membership)
                memberships[user.id] = membership
            elif membership.role not in ("owner", "admin"):
                # Roles granted in the app (owner, admin) are never lowered by a repository.
                membership.role = role
        elif "@" in identity:
            pending = db.session.scalar(select(Invitation.id).where(
                Invitation.organization_id == organization.id, func.lower(Invitation.email) == identity,
                Invitation.accepted_at.is_(None), Invitation.expires_at > utcnow()))
            if pending is None:
                # The link token is never shown: an admin re-sends it from the members page.
                db.session.add(Invitation(
                    organization_id=organization.id, email=identity, role="member",
                    nonce_hash=secrets.token_hex(32), created_by_id=None,
                    expires_at=utcnow() + timedelta(seconds=current_app.config["KIKET_INVITATION_MAX_AGE"])))


def _prune(repository: WorkflowRepository | None) -> None:
    """Keep the canonical copies of the newest `KIKET_REVISION_RETENTION` commits, plus active and pending ones."""
    if repository is None:
        return
    keep_count = current_app.config["KIKET_REVISION_RETENTION"]
    rows = db.session.execute(select(ConfigRevision.commit_sha, ConfigRevision.status)
                              .where(ConfigRevision.repository_id == repository.id)
                              .order_by(ConfigRevision.id.desc())).all()
    keep: list[str] = []
    for sha, status in rows:
        if sha not in keep and (len(keep) < keep_count or status in ("active", "pending")):
            keep.append(sha)
    pruned = workflow_sources.prune(repository.id, keep)
    if pruned:
        log.info("pruned %d canonical copies of repo=%s", len(pruned), repository.id)


# Reloads, rollbacks and diffs


def request_reload(project_id: int, actor_id: int | None = None) -> int | None:
    """Reload the project's active commit with the current lower layers (after an override save).

    Creates a pending revision of the same commit and enqueues the load job; returns its id, or None
    when the project has no active repository revision (its configuration is then computed on read).
    """
    active = configuration.active_revision(project_id)
    if active is None or active.repository_id is None:
        return None
    revision = ConfigRevision(project_id=project_id, repository_id=active.repository_id, commit_sha=active.commit_sha,
                              branch=active.branch, status="pending", storage_path=active.storage_path,
                              summary=active.summary, diagnostics=active.diagnostics,
                              workflow_versions=active.workflow_versions)
    db.session.add(revision)
    db.session.commit()
    enqueue("configuration", "jobs.configuration.load_project_configuration", revision.id,
            job_id=f"load-{revision.id}", job_timeout=LOAD_JOB_TIMEOUT_S, result_ttl=24 * 3600,
            failure_ttl=7 * 24 * 3600)
    log.info("reload of project=%s queued as revision=%s (actor=%s)", project_id, revision.id, actor_id)
    return revision.id


def rollback(project: Project, revision_id: int, actor: User | None) -> ConfigRevision:
    """Activate an earlier revision of the project again, from its canonical copy (recorded as `rolled_back`)."""
    _require_manage(actor, project)
    revision = db.session.get(ConfigRevision, revision_id)
    if revision is None or revision.project_id != project.id:
        raise NotFound(f"No revision {revision_id} in {project.key}.")
    if revision.status == "active":
        raise Conflict("This revision is already active.")
    if revision.status not in ("superseded",):
        raise Conflict(f"A {revision.status} revision cannot be activated.")
    config = _load_stored(revision)
    if isinstance(config, str):
        db.session.rollback()
        raise Conflict(f"Revision {revision.short_sha} cannot be activated again: {config}")
    previous = configuration.active_revision(project.id)
    _activate(revision, config, kind="rolled_back", actor_id=actor.id if actor else None)
    db.session.commit()
    events.workflow_updated(project.id, revision.id)
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
    affected = {wf: {state: configuration.count_issues_in_states(older.project_id, wf, [state]) for state in states}
                for wf, states in diff.removed_states().items()}
    return RevisionComparison(older, newer, diff, affected)

"""Sync runs: request a sync of a repository's branch, and the sync job that validates and stores its commit.

1. `request_sync` creates a `SyncRun` and enqueues `jobs.configuration.sync_workflow_repository`; while a
   run of the repository is queued or running, further requests join it (one sync per repository).
2. `sync_repository` (the job): fetch → resolve the branch → stop as `unchanged` if that commit is the
   active revision → read `.kiket/` from git's object store → validate → write the canonical copy
   atomically → a pending `ConfigRevision` → enqueue `jobs.configuration.load_project_configuration`,
   which activates it (`app.services.sync.activation`). A revision that would strand issues (on a
   workflow or in a state it lacks) is `held` instead, until an owner or admin confirms it.

Every status change of a run is published on the Redis channel `kiket:sync:<repository id>` as JSON
`{"repository_id", "sync_run_id", "status", "revision_id"}` (ids and status only, never HTML).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from contextlib import contextmanager
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
from app.kiket.filecache import FileCache
from app.models import ConfigEvent, ConfigRevision, ProjectSeedMarker, SyncRun, User
from app.models.base import utcnow
from app.models.repositories import SYNC_DONE, SYNC_IN_FLIGHT, SYNC_TRIGGERS
from app.queue import enqueue, redis_connection
from app.services import live
from app.services.errors import Conflict, Invalid, NotFound
from app.services.sync import configuration, git, stranding, workflow_sources
from app.services.sync.config_sources import read_git_tree_files
from app.services.sync.repositories import get_repository, require_manage

log = logging.getLogger(__name__)

# Blobs and parsed files of recent syncs, kept by this worker process: a sync reads from git and parses only
# the files that changed since. For validation only: reused results name the commit their blob was first
# read at, and the run keeps no commit of them (diagnostics, workflow versions); the activation loads the
# canonical copy without the cache, so every active element names its own commit.
_BLOBS = FileCache(max_bytes=8 * 1024 * 1024)
_PARSED = FileCache()

SYNC_JOB_TIMEOUT_S = 600
LOAD_JOB_TIMEOUT_S = 300
REQUEST_LOCK_TIMEOUT_S = 30


def sync_channel(repository_id: int) -> str:
    """Redis pub/sub channel carrying status changes of a repository's sync runs."""
    return f"kiket:sync:{int(repository_id)}"


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


def seed_outcome(run: SyncRun) -> dict | None:
    """What the run's activation did with the repository's seed issues: {created, skipped: [{title, reason}]}.

    None when the activation created none because the repository had been activated before (or not yet).
    """
    if run.revision_id is None:
        return None
    marker = db.session.scalar(select(ProjectSeedMarker).where(ProjectSeedMarker.revision_id == run.revision_id))
    return marker.outcome or {"created": 0, "skipped": []} if marker is not None else None


def request_sync(repository_id: int, branch: str | None = None, trigger: str = "ui",
                 actor: User | None = None) -> SyncRun:
    """Queue a sync of the repository (optionally switching its tracked branch); joins a sync in flight.

    Concurrent requests are serialized by a Redis lock, so any number of them create one run and one job.
    A run whose worker died (SIGKILL, lost machine) is marked failed and does not block new requests.
    """
    if trigger not in SYNC_TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}")
    repository = get_repository(repository_id, actor)
    require_manage(actor, repository.project)
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
            from app.services.health import held_jobs

            lost = _lost_reason(running, held_jobs(redis_connection(), current_app.config["KIKET_WORKER_HEARTBEAT"]))
            # Under this lock a queued run's job is enqueued already: its absence is certain. A started run
            # that only looks lost (Redis emptied, its worker not beating yet) is left to the workers' reaping.
            if lost is not None and not lost[1] and running.status != "queued":
                lost = None
            if lost is None:
                if branch is not None and branch != running.branch:
                    raise Conflict(f"A sync of {running.branch} is in progress; sync {branch} when it is done.")
                if running.status != "queued":
                    # It may have resolved its commit before this request's push: sync again once it ends.
                    redis_connection().set(_followup_key(repository.id), trigger, ex=24 * 3600)
                return running
            fail_lost_run(running, lost[0], followup=False)
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


def _lost_reason(run: SyncRun, held: dict[str, str] | None = None) -> tuple[str, bool] | None:
    """Why an in-flight run can no longer finish, and whether that is certain (its worker process is gone, its
    job failed) or only likely until it lasts a heartbeat period (its job vanished, its worker went silent);
    None if it still can. `held` maps the jobs live workers say they run to those workers (heartbeats)."""
    if run.worker_host == socket.gethostname() and run.worker_pid and not _pid_alive(run.worker_pid):
        return f"the worker running this sync (pid {run.worker_pid}) stopped before it finished", True
    job_id = run.load_job_id if run.status == "loading" else run.job_id
    if held is not None and job_id in held:
        return None
    if job_id:
        try:
            status = Job.fetch(job_id, connection=redis_connection()).get_status(refresh=True)
        except NoSuchJobError:
            return "its job is no longer in the queue (Redis lost it, or it was deleted)", held is None
        if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            return f"its job ended as {status.value} (its worker died or the job was abandoned)", True
        if status == JobStatus.STARTED and held is not None:
            return f"the worker running it ({run.worker_name or 'unknown'}) stopped sending heartbeats", False
    timeout = SYNC_JOB_TIMEOUT_S + LOAD_JOB_TIMEOUT_S
    if run.started_at is not None and utcnow() - run.started_at > timedelta(seconds=timeout + 60):
        return f"it did not finish within {timeout} s", True
    return None


# Runs that looked lost at the last reaping, with the moment they were first seen so (this process).
_suspects: dict[int, float] = {}


def reap_lost_runs(period: float) -> list[int]:
    """Fail the in-flight runs whose job died (called by every worker once per heartbeat period); the ids failed.

    A certain reason fails a run at once; a likely one (its job vanished, its worker went silent) when it still
    holds a period later, so a run between its commit and its enqueue, or a worker re-registering after Redis
    restarted empty, is not failed by mistake. The pending revision a run leaves is removed.
    """
    from app.services.health import held_jobs

    held = held_jobs(redis_connection(), period)
    failed = []
    seen = set()
    now = time.monotonic()
    for run in db.session.scalars(select(SyncRun).where(SyncRun.status.in_(SYNC_IN_FLIGHT)).order_by(SyncRun.id)).all():
        lost = _lost_reason(run, held)
        if lost is None:
            continue
        reason, certain = lost
        seen.add(run.id)
        if not certain and now - _suspects.setdefault(run.id, now) < period:
            continue
        if fail_lost_run(run, reason):
            failed.append(run.id)
    for run_id in set(_suspects) - seen:
        del _suspects[run_id]
    for run_id in failed:
        _suspects.pop(run_id, None)
    db.session.rollback()
    return failed


def fail_lost_run(run: SyncRun, reason: str, *, followup: bool = True) -> bool:
    """Mark a run whose job died failed with the reason, and remove the pending revision it left; False when
    the run finished meanwhile."""
    db.session.refresh(run, with_for_update=True)
    if run.status not in SYNC_IN_FLIGHT:
        db.session.rollback()
        return False
    revision = db.session.get(ConfigRevision, run.revision_id) if run.revision_id else None
    if revision is not None and revision.status == "pending":
        run.revision_id = None
        _remove_pending(revision)
    log.warning("sync run=%s (%s) failed: %s", run.id, run.status, reason)
    finish(run, "failed", error=f"The sync stopped while {run.status}: {reason}."[:2000], followup=followup)
    return True


def _remove_pending(revision: ConfigRevision) -> None:
    others = db.session.scalar(select(func.count()).select_from(ConfigRevision).where(
        ConfigRevision.repository_id == revision.repository_id, ConfigRevision.commit_sha == revision.commit_sha,
        ConfigRevision.id != revision.id))
    repository_id, sha = revision.repository_id, revision.commit_sha
    db.session.delete(revision)
    db.session.flush()
    if not others and repository_id is not None:
        workflow_sources.remove_revision(repository_id, sha)


@contextmanager
def _timed(timings: dict[str, int], phase: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = int((time.perf_counter() - started) * 1000)


def queue_wait_ms() -> int | None:
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
    wait = queue_wait_ms()
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
            finish(run, "unchanged")
            log.info("sync run=%s repo=%s commit=%s is already active", run.id, repository.id, sha[:10])
            return run
        _advance(run, "validating")
        with _timed(timings, "read"):
            tree = read_git_tree_files(mirror, sha, repository.config_path, blobs=_BLOBS)
        with _timed(timings, "validate"), _PARSED.active():
            layers = configuration.lower_layers(project)
            result = configuration.load_files(
                project, tree.files, km.Source(repo=repository.remote_url, branch=run.branch, commit_sha=sha),
                config_path=repository.config_path, layers=layers, skipped=tuple(tree.skipped))
        run.timings = dict(timings)
        run.diagnostics = [d.to_dict() for d in result.diagnostics]
        run.summary = {**result.summary(), "counts": result.counts}
        if not result.ok:
            finish(run, "failed", error=fatal_summary(result.diagnostics))
            return run
        _advance(run, "writing")
        with _timed(timings, "write"):
            path = workflow_sources.write_revision(
                repository.id, sha, workflow_sources.config_files(tree.files, repository.config_path))
        revision = ConfigRevision(
            project_id=project.id, repository_id=repository.id, commit_sha=sha, branch=run.branch, status="pending",
            storage_path=str(path), layers_version=layers.version, summary=run.summary,
            diagnostics=run.diagnostics, workflow_versions={wf.id: wf.version for wf in result.revision.workflows.values()},
        )
        db.session.add(revision)
        db.session.flush()
        run.revision_id = revision.id
        run.timings = dict(timings)
        stranded = stranding.stranded_issues(project.id, result.revision)
        if stranded:
            # Told before activation (§16): the revision waits for an owner or admin to confirm it.
            run.summary = revision.summary = {**run.summary, "stranded": stranding.summary(stranded)}
            _supersede_held(repository.id, run.id)
            finish(run, "held", followup=False)
            log.info("sync run=%s repo=%s commit=%s held: %s", run.id, repository.id, sha[:10],
                     "; ".join(s.describe() for s in stranded))
            return run
        run.load_job_id = load_job_id(revision.id)
        _advance(run, "loading")
        enqueue_load(revision.id)
        log.info("sync run=%s repo=%s commit=%s validated in %s", run.id, repository.id, sha[:10], timings)
        return run
    except Exception as exc:
        db.session.rollback()
        record_failure(sync_run_id, exc, timings)
        raise


def _supersede_held(repository_id: int, newer_run_id: int) -> None:
    """Older runs still waiting for confirmation give way to a newer one (their revisions stay unused)."""
    for held in db.session.scalars(select(SyncRun).where(SyncRun.repository_id == repository_id,
                                                         SyncRun.status == "held", SyncRun.id != newer_run_id)):
        held.status = "superseded"
        pending = db.session.get(ConfigRevision, held.revision_id) if held.revision_id else None
        if pending is not None and pending.status == "pending":
            pending.status = "superseded"


def confirm_activation(sync_run_id: int, actor: User | None) -> SyncRun:
    """Activate a revision held because it strands issues, once an owner or admin has read how many (§16)."""
    run = get_sync_run(sync_run_id)
    repository = get_repository(run.repository_id, actor)
    require_manage(actor, repository.project)
    revision = db.session.get(ConfigRevision, run.revision_id) if run.revision_id else None
    if run.status != "held" or revision is None or revision.status != "pending":
        raise Conflict("This sync run is not waiting for confirmation any more.")
    db.session.add(ConfigEvent(project_id=repository.project_id, kind="activation_confirmed", revision_id=revision.id,
                               actor_id=actor.id if actor else None,
                               detail={"commit": revision.commit_sha, "stranded": run.summary.get("stranded", [])}))
    run.load_job_id = load_job_id(revision.id)
    run.finished_at = None
    _advance(run, "loading")
    enqueue_load(revision.id)
    log.info("sync run=%s confirmed by %s", run.id, actor.email if actor else "the system")
    return run


def load_job_id(revision_id: int) -> str:
    return f"load-{int(revision_id)}"


def enqueue_load(revision_id: int) -> None:
    """Queue the activation of a pending revision (`app.services.sync.activation.load_configuration`)."""
    enqueue("configuration", "jobs.configuration.load_project_configuration", revision_id,
            job_id=load_job_id(revision_id), job_timeout=LOAD_JOB_TIMEOUT_S, result_ttl=24 * 3600,
            failure_ttl=7 * 24 * 3600)


def fatal_summary(diagnostics) -> str:
    fatal = [d for d in diagnostics if d.severity == "fatal"]
    first = fatal[0].format() if fatal else "unknown problem"
    more = f" (and {len(fatal) - 1} more)" if len(fatal) > 1 else ""
    return f"{len(fatal)} fatal problem{'s' if len(fatal) != 1 else ''}: {first}{more}"[:2000]


def record_failure(sync_run_id: int, exc: BaseException, timings: dict[str, int]) -> None:
    run = db.session.get(SyncRun, sync_run_id)
    if run is None or run.status in SYNC_DONE:
        return
    if timings:
        run.timings = {**(run.timings or {}), **timings}
    reason = str(exc) if isinstance(exc, (git.GitError, workflow_sources.StorageError, Invalid)) \
        else f"{exc.__class__.__name__}: {exc}"
    finish(run, "failed", error=reason[:2000])
    log.warning("sync run=%s failed: %s", run.id, reason)


def _advance(run: SyncRun, status: str) -> None:
    run.status = status
    db.session.commit()
    _publish(run)
    if status != "loading":
        workflow_sources.pause_in_phase(status)


def finish(run: SyncRun, status: str, error: str | None = None, *, followup: bool = True) -> None:
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
    # The dashboards open anywhere (the sync may have started from the CLI, a push or another browser).
    live.publish_soon([{"ch": f"org:{run.repository.project.organization_id}", "kind": "sync",
                        "repository": run.repository_id, "run": run.id}])

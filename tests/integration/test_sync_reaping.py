"""Sync runs whose job died are failed by the workers' watch (`runs.reap_lost_runs`), and only those."""

from __future__ import annotations

import time

import pytest
from rq.job import JobStatus

PERIOD = 0.3


@pytest.fixture
def repository(app, owner):
    from app.services import projects
    from app.services.sync import repositories

    project = projects.create_project(owner, "ENG", "Engineering", "", "kanban")
    return repositories.add_repository(project, "https://example.com/acme/config.git", actor=owner)[0]


def make_run(repository, status: str, job_status: JobStatus | None, **fields):
    from app.extensions import db
    from app.models import SyncRun
    from app.models.base import utcnow
    from app.queue import get_queue

    run = SyncRun(repository_id=repository.id, branch="main", trigger="ui", status=status, enqueued_at=utcnow(),
                  started_at=utcnow(), timings={}, diagnostics=[], summary={}, worker_host="elsewhere.example",
                  worker_name="w-elsewhere", worker_pid=1, **fields)
    db.session.add(run)
    db.session.flush()
    run.job_id = f"sync-{repository.id}-{run.id}"
    db.session.commit()
    if job_status is not None:
        job = get_queue("configuration").enqueue("builtins.print", job_id=run.job_id)
        job.set_status(job_status)
    return run


def reap_until(run_id: int, timeout: float = 5.0) -> str:
    from app.extensions import db
    from app.models import SyncRun
    from app.services.sync import runs

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs.reap_lost_runs(PERIOD)
        db.session.expire_all()
        run = db.session.get(SyncRun, run_id)
        if run.status == "failed":
            return run.error
        time.sleep(0.05)
    return ""


def test_a_run_whose_worker_stopped_beating_fails_after_a_period(app, repository):
    from app.extensions import db
    from app.models import SyncRun
    from app.services.sync import runs

    run = make_run(repository, "validating", JobStatus.STARTED)
    assert runs.reap_lost_runs(PERIOD) == []
    assert db.session.get(SyncRun, run.id).status == "validating"
    error = reap_until(run.id)
    assert "stopped while validating" in error and "w-elsewhere" in error and "heartbeats" in error


def test_a_run_held_by_a_beating_worker_is_left_alone_even_when_redis_lost_its_job(app, repository):
    import socket

    from app.extensions import db
    from app.models import SyncRun
    from app.services import health
    from app.services.sync import runs

    redis = app.extensions["redis"]
    run = make_run(repository, "fetching", None)
    deadline = time.monotonic() + 4 * PERIOD
    while time.monotonic() < deadline:
        health.beat(redis, "w-elsewhere", ["configuration"], 1, job=run.job_id, pid=1, host=socket.gethostname())
        assert runs.reap_lost_runs(PERIOD) == []
        time.sleep(0.05)
    db.session.expire_all()
    assert db.session.get(SyncRun, run.id).status == "fetching"
    health.forget(redis, "w-elsewhere", ["configuration"])
    assert "no longer in the queue" in reap_until(run.id)


def test_a_queued_run_whose_job_vanished_fails(app, repository):
    from app.extensions import db
    from app.models import SyncRun

    run = make_run(repository, "queued", JobStatus.QUEUED)
    from app.services.sync import runs

    assert runs.reap_lost_runs(PERIOD) == [] and db.session.get(SyncRun, run.id).status == "queued"
    app.extensions["redis"].flushdb()
    assert "stopped while queued: its job is no longer in the queue" in reap_until(run.id)


def test_a_run_killed_while_loading_fails_at_once_and_its_pending_revision_goes(app, repository):
    from app.extensions import db
    from app.models import ConfigRevision, SyncRun
    from app.services.sync import runs, workflow_sources

    sha = "a" * 40
    path = workflow_sources.write_revision(repository.id, sha, {".kiket/project.yaml": b"project: {}\n"})
    revision = ConfigRevision(project_id=repository.project_id, repository_id=repository.id, commit_sha=sha,
                              branch="main", status="pending", storage_path=str(path), summary={}, diagnostics=[],
                              workflow_versions={})
    db.session.add(revision)
    db.session.flush()
    run = make_run(repository, "loading", None, revision_id=revision.id, load_job_id=f"load-{revision.id}")
    from app.queue import get_queue

    get_queue("configuration").enqueue("builtins.print", job_id=run.load_job_id).set_status(JobStatus.FAILED)
    assert runs.reap_lost_runs(PERIOD) == [run.id]
    run = db.session.get(SyncRun, run.id)
    assert run.status == "failed" and "stopped while loading" in run.error and "failed" in run.error
    assert run.revision_id is None and db.session.query(ConfigRevision).count() == 0
    assert not workflow_sources.has_revision(repository.id, sha)

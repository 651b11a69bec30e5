"""Faults with real processes: Redis restarted empty under load, the worker killed with SIGKILL in each sync phase.

Redis here is a private redis-server on a free port (never the shared one); the worker, its scheduler and `/up`
must recover by themselves. Heartbeats are short (KIKET_WORKER_HEARTBEAT=3), so every wait below is a poll with
a deadline well inside the minute the behaviour promises.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import func, select

from tests.conftest import ROOT, free_port, wait_for_port
from tests.support.sync_repos import bare_remote, file_url, run_worker

pytestmark = pytest.mark.slow

HEARTBEAT = 3
RECOVERY_S = 60


def poll(predicate, timeout: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(step)


class PrivateRedis:
    """A redis-server of this test only, without persistence: a restart comes back empty."""

    def __init__(self, directory):
        self.port = free_port()
        self.directory = directory
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for_port(self.port)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def start_worker(env: dict, *queues: str, log, extra: dict | None = None) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "flask", "worker", *queues, "--wait", "20"], cwd=ROOT,
                               env={**env, "KIKET_WORKER_HEARTBEAT": str(HEARTBEAT), **(extra or {})},
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    process.log = log
    return process


def output(process: subprocess.Popen) -> str:
    return process.log.read_text(errors="replace")[-4000:]


def kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(10)


@pytest.fixture
def workers(tmp_path):
    started = []

    def start(env, *queues, extra=None):
        started.append(start_worker(env, *queues, log=tmp_path / f"worker-{len(started)}.log", extra=extra))
        return started[-1]

    yield start
    for process in started:
        kill_group(process)


@pytest.fixture
def fault_app(app, settings, private_redis):
    """The test app on the private Redis (same, cleaned database as `app`); its context is the current one."""
    from app.extensions import db
    from app.factory import create_app
    from tests.conftest import IsolatedClient

    application = create_app({**settings, "REDIS_URL": private_redis.url, "KIKET_WORKER_HEARTBEAT": HEARTBEAT})
    application.test_client_class = IsolatedClient
    with application.app_context():
        yield application
        db.session.remove()


def up(client) -> tuple[int, dict]:
    response = client.get("/up")
    return response.status_code, response.json


def test_redis_restarted_empty_under_load(fault_app, private_redis, process_env, workers):
    from rq import Worker
    from rq.registry import ScheduledJobRegistry

    from app.extensions import db
    from app.factory import create_app
    from app.models import IssueEvent
    from app.models.issues import Issue
    from app.queue import get_queue
    from app.services import accounts, projects
    from app.services.runtime import events, issues

    env = {**process_env, "REDIS_URL": private_redis.url}
    owner = accounts.create_user("owner@example.com", "correct horse battery", "owner")
    client = fault_app.test_client()
    project = projects.create_project(owner, "ENG", "Engineering", "", "kanban")
    worker = workers(env, "configuration", "default", "webhooks")
    poll(lambda: up(client)[0] == 200, 30, "/up answers 200 with the worker started")

    stop = threading.Event()
    phase = ["before"]
    created: list[int] = []
    while_down: list[int] = []
    errors: list[str] = []

    def load():
        app = create_app({**fault_app.config, "TESTING": True})
        with app.app_context():
            me = db.session.merge(owner)
            here = db.session.merge(project)
            while not stop.is_set():
                try:
                    during = phase[0]
                    created.append(issues.create_issue(here, me, issue_type="task", title="Under load").id)
                    if during == "down" == phase[0]:
                        while_down.append(created[-1])
                except Exception as exc:  # noqa: BLE001 - a refused request under a fault is allowed, a lost event is not
                    db.session.rollback()
                    errors.append(f"{exc.__class__.__name__}: {exc}")
                time.sleep(0.02)
            db.session.remove()

    loader = threading.Thread(target=load)
    loader.start()
    try:
        poll(lambda: len(created) >= 20, 30, "issues are created before the restart")
        private_redis.kill()
        phase[0] = "down"
        poll(lambda: len(while_down) >= 5, 10, "issues are created while Redis is away (their wake-ups are lost)")
        phase[0] = "after"
        private_redis.start()
        restarted = time.monotonic()
        poll(lambda: len(created) >= 40 and time.monotonic() - restarted > 1, 30, "issues are created after it")
    finally:
        stop.set()
        loader.join(30)
    assert worker.poll() is None, f"the worker died with Redis: {output(worker)}"
    assert created, errors

    redis = fault_app.extensions["redis"]
    try:
        poll(lambda: up(client)[0] == 200, RECOVERY_S, "/up recovers")
    except AssertionError:
        raise AssertionError(f"{up(client)[1]}\n{output(worker)}") from None
    recovered = time.monotonic() - restarted
    assert Worker.all(connection=redis), "the worker registered again"
    poll(lambda: any(j.startswith("sweep-") for j in ScheduledJobRegistry(queue=get_queue("default")).get_job_ids()),
         RECOVERY_S - recovered, "the 5-minute sweep is scheduled again")

    def outbox_empty():
        db.session.rollback()
        return db.session.scalar(select(func.count()).select_from(IssueEvent)) == 0

    poll(outbox_empty, RECOVERY_S, "every outbox row is dispatched")
    after = [i for i in db.session.scalars(select(Issue.id).where(Issue.id.in_(created)))]
    assert len(after) == len(created)
    # Events dispatched after the restart (the rows written while Redis was away among them) ran their jobs.
    dispatched = [i for i in created if get_queue("default").fetch_job(events.job_id("event", "issue.created", i, i))]
    assert set(while_down) <= set(dispatched), "an event written while Redis was away was not dispatched"
    poll(lambda: all(get_queue("default").fetch_job(events.job_id("event", "issue.created", i, i)).is_finished
                     for i in dispatched), RECOVERY_S, "the dispatched event jobs finish")
    assert time.monotonic() - restarted < RECOVERY_S

    kill_group(worker)
    poll(lambda: up(client)[0] == 503, HEARTBEAT + 2, "a dead worker leaves /up within one heartbeat period")


@pytest.fixture
def sync_setup(app, owner, tmp_path):
    from app.services import projects
    from app.services.sync import repositories

    project = projects.create_project(owner, "ENG", "Engineering", "", "kanban")
    repository, _ = repositories.add_repository(project, file_url(bare_remote(tmp_path, "kanban")), actor=owner)
    return project, repository


@pytest.mark.parametrize("phase", ["fetching", "validating", "writing", "loading"])
def test_worker_killed_in_each_sync_phase(app, sync_setup, process_env, workers, tmp_path, phase):
    from app.extensions import db
    from app.models import ConfigRevision, SyncRun
    from app.services.sync import runs

    project, repository = sync_setup
    # A second worker (not on the configuration queue) survives the kill: its watch reaps the dead run.
    workers(process_env, "default", "webhooks")
    run = runs.request_sync(repository.id, trigger="cli")
    flag = tmp_path / "paused"
    victim = workers(process_env, "configuration", extra={"KIKET_TEST_PAUSE_IN_PHASE": f"{phase}:{flag}"})
    poll(flag.exists, 60, f"the worker reaches the {phase} phase")
    kill_group(victim)
    killed = time.monotonic()

    def failed():
        db.session.expire_all()
        return db.session.get(SyncRun, run.id).status == "failed"

    poll(failed, RECOVERY_S, f"the run killed while {phase} is failed")
    assert time.monotonic() - killed < RECOVERY_S
    error = db.session.get(SyncRun, run.id).error
    assert f"stopped while {phase}" in error and "pid" in error, error
    assert db.session.scalar(select(func.count()).select_from(ConfigRevision).where(
        ConfigRevision.status == "pending")) == 0

    retry = runs.request_sync(repository.id, trigger="cli")
    run_worker(app)
    db.session.expire_all()
    assert db.session.get(SyncRun, retry.id).status == "active", db.session.get(SyncRun, retry.id).error


def test_redis_emptied_under_an_idle_worker_heals_it_in_place(fault_app, private_redis, process_env, workers):
    from rq import Worker
    from rq.registry import ScheduledJobRegistry

    from app.queue import get_queue

    client = fault_app.test_client()
    worker = workers({**process_env, "REDIS_URL": private_redis.url}, "configuration", "default")
    poll(lambda: up(client)[0] == 200, 30, "/up answers 200 with the worker started")
    redis = fault_app.extensions["redis"]
    (name,) = [w.name for w in Worker.all(connection=redis)]
    redis.flushall()
    emptied = time.monotonic()
    assert up(client)[0] == 503
    poll(lambda: up(client)[0] == 200, HEARTBEAT + 2, "/up recovers within a heartbeat period")
    poll(lambda: [w.name for w in Worker.all(connection=redis)] == [name], HEARTBEAT, "the same worker registers again")
    poll(lambda: ScheduledJobRegistry(queue=get_queue("default")).get_job_ids(), HEARTBEAT, "the sweep is back")
    assert time.monotonic() - emptied < HEARTBEAT + 2
    assert worker.poll() is None and "registering" in output(worker)

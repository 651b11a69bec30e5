"""`/up` against a real worker process and a real queue (no patched checks)."""

import subprocess
import sys
import time

import pytest
from rq import Queue, Worker

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def start_worker(process_env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "worker", "configuration", "--wait", "10"],
        cwd=ROOT, env=process_env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_up_is_200_with_a_worker_and_503_naming_it_without(app, client, process_env):
    redis = app.extensions["redis"]
    queue = Queue("configuration", connection=redis)
    worker = start_worker(process_env)
    try:
        # Idle means its signal handlers are installed: a SIGTERM now is a clean shutdown.
        wait_until(lambda: any(w.get_state() == "idle" for w in Worker.all(connection=redis, queue=queue)))
        response = client.get("/up")
        assert response.status_code == 200, response.json
        assert response.json["status"] == "ok" and response.json["failing"] == []
    finally:
        worker.terminate()
        worker.wait(20)
    response = client.get("/up")
    assert response.status_code == 503
    assert response.json["failing"] == ["worker"]
    assert "no worker listens on the 'configuration' queue" in response.json["checks"]["worker"]["detail"]


def test_up_is_503_when_the_queue_is_too_deep(app, client):
    app.config["KIKET_UP_MAX_QUEUE_DEPTH"] = 2
    queue = Queue("configuration", connection=app.extensions["redis"])
    for _ in range(3):
        queue.enqueue("builtins.print")
    response = client.get("/up")
    assert response.status_code == 503
    assert "configuration_queue" in response.json["failing"]
    assert "depth 3 is over 2" in response.json["checks"]["configuration_queue"]["detail"]


def test_up_is_503_when_the_oldest_job_waits_too_long(app, client):
    app.config["KIKET_UP_MAX_QUEUE_AGE"] = 1
    Queue("configuration", connection=app.extensions["redis"]).enqueue("builtins.print")
    assert "configuration_queue" not in client.get("/up").json["failing"]
    time.sleep(2.1)
    response = client.get("/up")
    assert response.status_code == 503
    assert "oldest job has waited" in response.json["checks"]["configuration_queue"]["detail"]


def test_up_is_503_when_redis_is_down(app, client):
    from redis import Redis

    app.extensions["redis"] = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    response = client.get("/up")
    assert response.status_code == 503
    assert {"redis", "worker", "configuration_queue"} <= set(response.json["failing"])

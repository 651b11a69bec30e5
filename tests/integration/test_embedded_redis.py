"""The embedded Redis-protocol server behaves like Redis where RQ depends on it."""

import subprocess
import sys
import time

import pytest
from redis import Redis

from tests.conftest import ROOT, free_port, wait_for_port


@pytest.fixture
def embedded():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "app.embedded_redis", "--port", str(port), "--drain-seconds", "0"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_for_port(port)
    yield port
    process.terminate()
    assert process.wait(10) == 0


def test_a_killed_blocking_client_does_not_swallow_the_next_item(embedded):
    # An RQ worker waits in BLPOP; when it dies, the next job must stay queued for the next worker.
    waiter = subprocess.Popen(
        [sys.executable, "-c", f"import redis; r = redis.Redis(port={embedded}); r.ping(); print('ready', flush=True); "
                               "r.blpop(['q'], timeout=30)"],
        stdout=subprocess.PIPE, text=True,
    )
    client = Redis(port=embedded)
    assert waiter.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    waiter.kill()
    waiter.wait()
    client.rpush("q", "job")  # at once: before the reaper's next look
    time.sleep(0.3)
    assert client.lrange("q", 0, -1) == [b"job"]


def test_a_live_blocking_client_still_gets_the_item(embedded):
    client = Redis(port=embedded)
    waiter = subprocess.Popen(
        [sys.executable, "-c", f"import redis; print(redis.Redis(port={embedded}).blpop(['q'], timeout=10))"],
        stdout=subprocess.PIPE, text=True,
    )
    time.sleep(0.8)
    client.rpush("q", "job")
    out, _ = waiter.communicate(timeout=15)
    assert "job" in out and client.llen("q") == 0


def test_pipelines_are_answered_without_a_delayed_ack_stall(embedded):
    # RQ wraps most of its bookkeeping in MULTI/EXEC. The replies go out one write per command; with Nagle's
    # algorithm on, every reply after the first waits for the client's delayed ACK (~40 ms a pipeline).
    client = Redis(port=embedded)
    client.ping()
    started = time.perf_counter()
    for n in range(20):
        pipe = client.pipeline()
        pipe.set("k", n).incr("c").get("k")
        assert pipe.execute()[2] == str(n).encode()
    assert time.perf_counter() - started < 0.4


def test_asked_to_stop_it_serves_connected_clients_until_they_leave():
    # make run stops every process at once: the worker's last writes (its death, the scheduler's locks) must land.
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "app.embedded_redis", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_for_port(port)
    client = Redis(port=port)
    client.set("k", "v")
    process.terminate()
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(0.5)
    assert client.get("k") == b"v"
    client.close()
    assert process.wait(3) == 0

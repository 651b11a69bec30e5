"""Live fan-out: 200 and 1,000 WebSocket clients on one board, on PostgreSQL and Redis.

A scratch database is created on the server of DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test)
with a kanban project; REDIS_URL (default redis://127.0.0.1:6379/10) is flushed. The live process runs as
the Procfile runs it (gunicorn, gevent worker) and so does the web process (gthread).

The clients live in another process (`python -m bench.live_bench clients …`): raw sockets on one epoll
loop, each doing the WebSocket handshake with the signed-in session's cookie and timing when the bytes of
each message arrive (no decoding on the path, so the clients' own work does not inflate the figure).
This process moves cards through the transition service; the latency of a message is its arrival at a
client minus the moment `apply_transition` returned (its commit done; the publish follows from a
background thread, as in the web process). Meanwhile another thread requests a plain page from the web
process; its p99 is compared with the same page's p99 with the clients connected but idle.
Goals: p99 under 100 ms at 1,000 clients; page p99 during the fan-out under 2x its idle p99.
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

CLIENTS = tuple(int(n) for n in os.environ.get("KIKET_BENCH_LIVE_CLIENTS", "200,1000").split(","))
MOVES = int(os.environ.get("KIKET_BENCH_LIVE_MOVES", "30"))
SPACING_S = 0.15
PAGE = "/projects/BENCH"
PASSWORD = "correct horse battery"
MARK = b"<!--live project:"


def _pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# The clients' process


def clients(port: int, count: int, cookie: str, origin: str, query: str, seconds: float) -> None:
    """Open `count` sockets, print "ready N" once every one has its first message (or after a minute, N those
    that have), then record arrivals of
    messages until `seconds` have passed since ready; print {seq: [arrival times]} as JSON."""
    selector = selectors.DefaultSelector()
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /live?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"Origin: {origin}\r\nCookie: {cookie}\r\n\r\n").encode()
    pending = set()
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(request)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        pending.add(sock)
    arrivals: dict[int, list[float]] = {}
    buffers: dict[socket.socket, bytes] = {}
    deadline = None
    # Sockets still without their first message after this are dropped (and counted out).
    connect_by = time.time() + 60
    while deadline is None or time.time() < deadline:
        if deadline is None and time.time() > connect_by:
            print(f"ready {count - len(pending)}", flush=True)
            for sock in pending:
                selector.unregister(sock)
            pending.clear()
            deadline = time.time() + seconds
        for event, _ in selector.select(timeout=0.5):
            sock = event.fileobj
            try:
                data = sock.recv(1 << 16)
            except BlockingIOError:
                continue
            now = time.time()
            if not data:
                selector.unregister(sock)
                continue
            if sock in pending:
                buffers[sock] = buffers.get(sock, b"") + data
                if b"<!--live init" in buffers[sock]:
                    pending.discard(sock)
                    buffers.pop(sock)
                    if not pending:
                        print(f"ready {count}", flush=True)
                        deadline = time.time() + seconds
                continue
            data = buffers.pop(sock, b"") + data
            start = data.find(MARK)
            while start != -1:
                end = data.find(b"-->", start)
                if end == -1:  # the header continues in the next read
                    buffers[sock] = data[start:]
                    break
                seq = int(data[start:end].rsplit(b"=", 1)[1])
                arrivals.setdefault(seq, []).append(now)
                start = data.find(MARK, end)
    print(json.dumps(arrivals), flush=True)


# The benchmark


def _server(command, env):
    from tests.conftest import free_port, wait_for_port

    port = free_port()
    log = open(os.environ["KIKET_BENCH_LOG"], "ab") if os.environ.get("KIKET_BENCH_LOG") else subprocess.DEVNULL
    process = subprocess.Popen(command(port), env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, timeout=30)
    return process, port


def _rss_kb(master_pid: int) -> int:
    """Resident memory of the gunicorn master's worker (the process holding the sockets)."""
    children = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout.split()
    total = 0
    for pid in children or [str(master_pid)]:
        with open(f"/proc/{pid}/status") as handle:
            total += next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))
    return total


def _page_times(session, url: str, stop: threading.Event, out: list[float], limit: int = 10_000) -> None:
    while not stop.is_set() and len(out) < limit:
        started = time.perf_counter()
        response = session.get(url)
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200


def main() -> None:
    from bench.scratch import scratch_database

    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/10"
    processes = []
    with scratch_database() as (name, dsn):
        try:
            _run(name, dsn, redis_url, processes)
        finally:
            for process in processes:
                process.terminate()
                process.wait(30)


def _run(name: str, dsn: str, redis_url: str, processes: list) -> None:
    """Both sizes against one database, live process and web process (started into `processes`)."""
    import requests

    from tests.support.live_servers import live_command, web_command
    from app.extensions import db
    from app.factory import create_app
    from app.models import User
    from app.services import accounts, projects
    from app.services.runtime import issues, transitions
    from app.services import live as bus

    secret = uuid.uuid4().hex
    app = create_app({"SQLALCHEMY_DATABASE_URI": dsn.replace("postgresql://", "postgresql+psycopg://", 1),
                      "REDIS_URL": redis_url, "SECRET_KEY": secret})
    app.extensions["redis"].flushdb()
    with app.app_context():
        db.create_all()
        owner = accounts.create_user("bench@example.com", PASSWORD, "owner")
        project = projects.create_project(owner, "BENCH", "Bench", "", "kanban")
        ids = [issues.create_issue(project, owner, issue_type="task", title=f"Card {n}").id for n in range(4)]
        project_id, owner_id = project.id, owner.id
        db.session.remove()
    env = {**os.environ, "DATABASE_URL": dsn, "REDIS_URL": redis_url, "SECRET_KEY": secret,
           "PYTHONPATH": os.getcwd(), "KIKET_LOG_LEVEL": "WARNING"}
    debug = {"KIKET_LOG_LEVEL": "DEBUG"} if os.environ.get("KIKET_BENCH_LOG") else {}
    live_process, live_port = _server(live_command, {**env, **debug})
    web_process, web_port = _server(lambda p: web_command(p, threads=8), env)
    processes += [live_process, web_process]
    web = f"http://127.0.0.1:{web_port}"
    session = requests.Session()
    page = session.get(f"{web}/login").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    session.post(f"{web}/login", data={"email": "bench@example.com", "password": PASSWORD, "csrf_token": token})
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    print(f"PostgreSQL scratch database {name}; live process gunicorn gevent on :{live_port}, web gthread on "
          f":{web_port}; {MOVES} moves {SPACING_S * 1000:.0f} ms apart per size")
    state = {i: "backlog" for i in ids}
    for count in CLIENTS:
        seconds = MOVES * SPACING_S + 6
        client = subprocess.Popen(
            [sys.executable, "-m", "bench.live_bench", "clients", str(live_port), str(count), cookie, web,
             "project=BENCH&board=kanban", str(seconds)],
            env=env, stdout=subprocess.PIPE, text=True)
        ready = client.stdout.readline().split()
        assert ready and ready[0] == "ready", ready
        connected = int(ready[1])
        idle: list[float] = []
        _page_times(session, f"{web}{PAGE}", threading.Event(), idle, limit=150)
        rss = _rss_kb(live_process.pid)
        busy: list[float] = []
        stop = threading.Event()
        pager = threading.Thread(target=_page_times, args=(session, f"{web}{PAGE}", stop, busy))
        commits: dict[int, float] = {}
        with app.app_context():
            seq = bus.current_seq(app.extensions["redis"], f"project:{project_id}")
            actor = db.session.get(User, owner_id)
            _ = actor.membership
            pager.start()
            for n in range(MOVES):
                issue_id = ids[n % len(ids)]
                state[issue_id] = "in_progress" if state[issue_id] == "backlog" else "backlog"
                transitions.apply_transition(issue_id, actor, target=state[issue_id])
                commits[seq + n + 1] = time.time()
                time.sleep(SPACING_S)
            db.session.remove()
        stop.set()
        pager.join()
        arrivals = json.loads(client.stdout.readline())
        client.wait(30)
        latencies = [(t - commits[int(s)]) * 1000 for s, times in arrivals.items() if int(s) in commits
                     for t in times]
        received = sum(len(times) for s, times in arrivals.items() if int(s) in commits)
        if os.environ.get("KIKET_BENCH_LOG"):
            print({s: len(t) for s, t in arrivals.items()}, sorted(commits))
        p50, p99 = statistics.median(latencies), _pct(latencies, 0.99)
        idle99, busy99 = _pct(idle, 0.99), _pct(busy, 0.99)
        print(f"{connected:>5} of {count} clients connected: commit -> client p50 {p50:6.1f} ms  p99 {p99:6.1f} ms "
              f"({received} of {connected * MOVES} messages) | page p99 idle {idle99:5.1f} ms, during fan-out "
              f"{busy99:5.1f} ms ({busy99 / idle99:.2f}x) | live process RSS {rss / 1024:.0f} MiB"
              + (f" | goal p99 < 100 ms and page < 2x idle: "
                 f"{'met' if p99 < 100 and busy99 < 2 * idle99 else 'NOT met'}" if count == 1000 else ""))
    app.extensions["redis"].flushdb()
    with app.app_context():
        db.engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "clients":
        port, count, cookie, origin, query, seconds = sys.argv[2:8]
        clients(int(port), int(count), cookie, origin, query, float(seconds))
    else:
        main()

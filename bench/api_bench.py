"""Transitions per second through `POST /api/v1/issues/{key}/transitions`, 8 concurrent clients, gunicorn,
PostgreSQL, next to the floor of a bare endpoint in the same app issuing the same SQL, in the same run.

A scratch template database on the server of DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test)
holds a kanban project, a personal token and 8 × ISSUES_PER_CLIENT issues; each client moves its own issues
back and forth between `backlog` and `in_progress`. Redis is REDIS_URL (default redis://127.0.0.1:6379/10,
flushed).

1. Recording: the same requests, in the same order per client, go through the app in this process on a copy
   of the database; every SQL statement each request sends is recorded as the driver received it.
2. Service: gunicorn as in the Procfile (`-k gthread --threads 32`) serves `bench.api_wsgi:app` on a fresh copy;
   8 client threads with keep-alive connections send the transitions.
3. Floor: the same gunicorn serves the same app on another fresh copy; the clients call its bare endpoint
   `POST /bench/floor/<client>/<n>`, which replays request n's recorded statements with psycopg, one
   transaction per request: the same SQL issued with none of our Python around it.
Goal: the API reaches at least 0.6× the floor's rate.
"""

from __future__ import annotations

import http.client
import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


CLIENTS = 8
ISSUES_PER_CLIENT = 4
ROUNDS = int(os.environ.get("KIKET_BENCH_API_ROUNDS", "150"))
WARMUP = 15
RUNS = 3
GOAL = 0.6
# gunicorn worker processes for both runs: WEB_CONCURRENCY, as gunicorn itself reads it (default 1, the Procfile).
WORKERS = os.environ.get("WEB_CONCURRENCY", "1")
ROOT = Path(__file__).resolve().parents[1]
# Tokens are signed with it: the recording app and both servers must share it.
SECRET_KEY = os.environ.get("SECRET_KEY") or "kiket-bench-secret"


def _settings(dsn: str, redis_url: str) -> dict:
    return {"SQLALCHEMY_DATABASE_URI": dsn.replace("postgresql://", "postgresql+psycopg://", 1),
            "REDIS_URL": redis_url, "SECRET_KEY": SECRET_KEY, "KIKET_API_RATE_LIMIT": 1_000_000}


def _prepare(dsn: str, redis_url: str) -> tuple[str, list[list[str]]]:
    """The project, its issues and a token; (token, issue keys per client)."""
    from app.extensions import db
    from app.factory import create_app
    from app.services import accounts, projects
    from app.services.runtime import issues
    from app.services.gateway import credentials

    app = create_app(_settings(dsn, redis_url))
    with app.app_context():
        db.create_all()
        owner = accounts.create_user("bench@example.com", "correct horse battery", "owner")
        project = projects.create_project(owner, "BENCH", "Bench", "", "kanban")
        keys = [issues.create_issue(project, owner, issue_type="task", title=f"Bench {n}").key
                for n in range(CLIENTS * ISSUES_PER_CLIENT)]
        _, token = credentials.create_personal_token(owner, "bench", ["issues:transition"])
        db.session.remove()
        db.engine.dispose()
    return token, [keys[c::CLIENTS] for c in range(CLIENTS)]


def _plan(keys: list[str]) -> list[tuple[str, str]]:
    """One client's requests: (issue key, target state), its issues in turn, back and forth."""
    state = {key: "backlog" for key in keys}
    out = []
    for n in range(WARMUP + ROUNDS):
        key = keys[n % len(keys)]
        state[key] = "in_progress" if state[key] == "backlog" else "backlog"
        out.append((key, state[key]))
    return out


def _record(dsn: str, redis_url: str, token: str, plans: list[list[tuple[str, str]]]) -> list[list[list[tuple]]]:
    """Statements of every request, per client, sending each client's requests in order through the app."""
    from sqlalchemy import event

    from app.extensions import db
    from bench.api_floor import build_app

    app = build_app(_settings(dsn, redis_url))
    recorded: list[list[tuple]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        recorded[-1].append((statement, parameters, executemany))

    out: list[list[list[tuple]]] = [[] for _ in plans]
    client = app.test_client()
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", record)
    for n in range(WARMUP + ROUNDS):
        for c, plan in enumerate(plans):
            key, target = plan[n]
            recorded.append([])
            response = client.post(f"/api/v1/issues/{key}/transitions", json={"to": target},
                                   headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.get_data(as_text=True)
            out[c].append(recorded[-1])
    with app.app_context():
        event.remove(db.engine, "before_cursor_execute", record)
        db.engine.dispose()
    return out


def _serve(dsn: str, redis_url: str, floor_file: str | None) -> tuple[subprocess.Popen, int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": dsn, "REDIS_URL": redis_url, "KIKET_API_RATE_LIMIT": "1000000",
           "KIKET_LOG_LEVEL": "WARNING", "SECRET_KEY": SECRET_KEY,
           "PYTHONPATH": str(ROOT), "KIKET_ENV": "production"}
    if floor_file:
        env["KIKET_BENCH_FLOOR"] = floor_file
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "32", "--workers", WORKERS,
                                "--no-control-socket", "--bind", f"127.0.0.1:{port}", "bench.api_wsgi:app"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("gunicorn did not start")


def _drive(port: int, requests_per_client: list[list[tuple[str, bytes, dict]]]) -> float:
    """Send each client's requests on its own keep-alive connection; requests per second after the warm-up."""
    barrier = threading.Barrier(len(requests_per_client) + 1)
    marks: list[float] = []
    failures: list[str] = []

    def run(requests: list[tuple[str, bytes, dict]]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for n, (path, body, headers) in enumerate(requests):
            if n == WARMUP:
                barrier.wait()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            if response.status != 200:
                failures.append(f"{path}: {response.status} {data[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=run, args=(r,)) for r in requests_per_client]
    for thread in threads:
        thread.start()
    barrier.wait()
    marks.append(time.perf_counter())
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - marks[0]
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, first: {failures[0]}")
    return CLIENTS * ROUNDS / elapsed


def main() -> None:
    from redis import Redis

    from bench.scratch import scratch_copies, scratch_database

    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/10"
    processes: list[subprocess.Popen] = []
    floor_file = tempfile.NamedTemporaryFile(suffix=".pickle", delete=False).name
    with scratch_database() as (base, base_url), scratch_copies(base) as copy:
        try:
            Redis.from_url(redis_url).flushdb()
            token, keys = _prepare(base_url, redis_url)
            plans = [_plan(k) for k in keys]
            recorded = _record(copy(), redis_url, token, plans)
            statements = sum(len(r) for per_client in recorded for r in per_client[WARMUP:]) / (CLIENTS * ROUNDS)
            with open(floor_file, "wb") as handle:
                pickle.dump(recorded, handle)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            api_requests = [[(f"/api/v1/issues/{key}/transitions", json.dumps({"to": target}).encode(), headers)
                             for key, target in plan] for plan in plans]
            floor_requests = [[(f"/bench/floor/{c}/{n}", b"", {}) for n in range(WARMUP + ROUNDS)]
                              for c in range(CLIENTS)]
            services, floors = [], []
            for _ in range(RUNS):
                for rates, requests, floor_path in ((services, api_requests, None), (floors, floor_requests, floor_file)):
                    process, port = _serve(copy(), redis_url, floor_path)
                    processes.append(process)
                    rates.append(_drive(port, requests))
                    process.terminate()
                    process.wait(20)
            service, floor = max(services), max(floors)
            ratio = service / floor
            print(f"PostgreSQL scratch databases {base}_*; gunicorn -k gthread --threads 32 --workers {WORKERS}; "
                  f"{CLIENTS} clients × {ROUNDS} transitions (after {WARMUP} each to warm up), best of {RUNS} runs; "
                  f"{statements:.1f} SQL statements per request")
            print(f"floor (a bare endpoint replaying each request's statements with psycopg): {floor:8.1f} /s")
            print(f"POST /api/v1/issues/{{key}}/transitions (key, rate limit, gates, audit, outbox): {service:8.1f} /s")
            print(f"all runs: floor {', '.join(f'{f:.0f}' for f in floors)}; api {', '.join(f'{a:.0f}' for a in services)}")
            print(f"ratio api/floor: {ratio:.2f}x (goal >= {GOAL}x): {'met' if ratio >= GOAL else 'NOT met'}")
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
                    process.wait(20)
            os.unlink(floor_file)
            Redis.from_url(redis_url).flushdb()


if __name__ == "__main__":
    main()

"""Transitions per second through `transitions.apply_transition` against the floor of its own SQL, on PostgreSQL.

A scratch template database is created on the server of DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/test) with a kanban project and its issues; every run works on a
fresh copy of it, and everything is dropped afterwards. Redis is REDIS_URL (default
redis://127.0.0.1:6379/10, flushed).

The service run moves issues back and forth between `backlog` and `in_progress` through the service: the
issue read, the configuration key, the gates, the optimistic UPDATE, the history row, the audit chain,
the outbox event, the commit and the worker's wake-up on Redis. Every SQL statement it sends is recorded
as the driver received it (text and parameters), one transaction per transition.

The floor, in the same run, replays exactly those statements with psycopg on another copy of the same
database, one transaction each: the same SQL issued directly, with none of our Python around it.
Goal: the service reaches at least half the floor's rate.
"""

from __future__ import annotations

import os
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

ROUNDS = int(os.environ.get("KIKET_BENCH_TRANSITIONS", "400"))
WARMUP = 40
ISSUES = 20
GOAL = 0.5
RUNS = 3


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    return url.replace("postgres://", "postgresql://", 1)


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.split("+")[0], parts.netloc, f"/{name}", parts.query, parts.fragment))


def _app(dsn: str, redis_url: str):
    from app.factory import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": dsn.replace("postgresql://", "postgresql+psycopg://", 1),
                       "REDIS_URL": redis_url})


def _prepare(app) -> tuple[int, list[int]]:
    """A kanban project with ISSUES issues in `backlog`; the owner's id and the issue ids."""
    from app.extensions import db
    from app.services import accounts, projects
    from app.services.runtime import issues
    from app.services.sync import configuration

    with app.app_context():
        db.create_all()
        owner = accounts.create_user("bench@example.com", "correct horse battery", "owner")
        project = projects.create_project(owner, "BENCH", "Bench", "", "kanban")
        issue_type = issues.creatable_types(configuration.project_config(project))[0].key
        ids = [issues.create_issue(project, owner, issue_type=issue_type, title=f"Bench {n}").id
               for n in range(ISSUES)]
        owner_id = owner.id
        db.session.remove()
        db.engine.dispose()
    return owner_id, ids


def _service(app, owner_id: int, issue_ids: list[int]) -> tuple[float, list[list[tuple]]]:
    """Transitions per second through the service, and the statements of each transition (warm-up first)."""
    from sqlalchemy import event

    from app.extensions import db
    from app.models import User
    from app.services.runtime import transitions

    recorded: list[list[tuple]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        recorded[-1].append((statement, parameters, executemany))

    with app.app_context():
        owner = db.session.get(User, owner_id)
        _ = owner.membership  # loaded once, as a request's user is
        event.listen(db.engine, "before_cursor_execute", record)
        state = {i: "backlog" for i in issue_ids}
        started = 0.0
        for n in range(WARMUP + ROUNDS):
            if n == WARMUP:
                started = time.perf_counter()
            issue_id = issue_ids[n % len(issue_ids)]
            state[issue_id] = "in_progress" if state[issue_id] == "backlog" else "backlog"
            recorded.append([])
            transitions.apply_transition(issue_id, owner, target=state[issue_id])
        rate = ROUNDS / (time.perf_counter() - started)
        event.remove(db.engine, "before_cursor_execute", record)
        db.session.remove()
        db.engine.dispose()
    return rate, recorded


def _floor(dsn: str, transactions: list[list[tuple]]) -> float:
    """Transitions per second replaying the recorded statements directly, one transaction per transition."""
    import psycopg
    from psycopg.pq import ExecStatus

    TUPLES_OK = ExecStatus.TUPLES_OK
    with psycopg.connect(dsn) as conn:
        started = 0.0
        for n, statements in enumerate(transactions):
            if n == WARMUP:
                started = time.perf_counter()
            with conn.transaction():
                for statement, parameters, many in statements:
                    cursor = conn.cursor()
                    if many:
                        cursor.executemany(statement, parameters)
                    else:
                        cursor.execute(statement, parameters)
                    if cursor.pgresult.status == TUPLES_OK:
                        cursor.fetchall()
        return ROUNDS / (time.perf_counter() - started)


def main() -> None:
    import psycopg

    server = _server_url()
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/10"
    base = f"kiket_bench_{uuid.uuid4().hex[:10]}"
    admin = _with_db(server, urlsplit(server).path.lstrip("/") or "postgres")
    copies: list[str] = []

    def copy() -> str:
        name = f"{base}_{len(copies)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {base}")
        copies.append(name)
        return _with_db(server, name)

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {base}")
    try:
        template_app = _app(_with_db(server, base), redis_url)
        template_app.extensions["redis"].flushdb()
        owner_id, issue_ids = _prepare(template_app)
        floors, services, statements = [], [], 0
        for _ in range(RUNS):
            rate, transactions = _service(_app(copy(), redis_url), owner_id, issue_ids)
            services.append(rate)
            floors.append(_floor(copy(), transactions))
            statements = sum(len(t) for t in transactions[WARMUP:]) / ROUNDS
        template_app.extensions["redis"].flushdb()
        floor, service = max(floors), max(services)
        ratio = service / floor
        print(f"PostgreSQL scratch databases {base}_*; {ROUNDS} transitions per run over {ISSUES} issues, "
              f"best of {RUNS}; {statements:.1f} SQL statements per transition")
        print(f"floor (the service's own statements replayed directly, one transaction each): {floor:8.1f} /s "
              f"({1000 / floor:.2f} ms)")
        print(f"service apply_transition (gates, history, audit chain, outbox event, wake-up):  {service:8.1f} /s "
              f"({1000 / service:.2f} ms)")
        print(f"ratio service/floor: {ratio:.2f}x (goal >= {GOAL}x): {'met' if ratio >= GOAL else 'NOT met'}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in [*copies, base]:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()

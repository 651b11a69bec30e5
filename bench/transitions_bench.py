"""Transitions per second through `transitions.apply_transition` against the floor of its SQL, on PostgreSQL.

A scratch database is created on the server of DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test)
and dropped afterwards; Redis is REDIS_URL (default redis://127.0.0.1:6379/10, flushed). Issues of a kanban
project move back and forth between `backlog` and `in_progress` through the service (gates, optimistic
lock, history row, audit chain, commit, and the `issue.transitioned` job enqueued on RQ). The floor, in
the same run, issues the same writes directly in one transaction each: the UPDATE with the lock-version
check, the INSERT of the history row and the INSERT of the audit event. Goal: at least 0.5x the floor.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

ROUNDS = int(os.environ.get("KIKET_BENCH_TRANSITIONS", "400"))
ISSUES = 20
GOAL = 0.5


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    return url.replace("postgres://", "postgresql://", 1)


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.split("+")[0], parts.netloc, f"/{name}", parts.query, parts.fragment))


def _floor(dsn: str, project_id: int, issue_ids: list[int], rounds: int) -> float:
    """Transitions per second for the bare statements, one transaction per transition."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT id, state, lock_version FROM issues WHERE id = ANY(%s)", (issue_ids,)).fetchall()
        state = {r[0]: [r[1], r[2]] for r in rows}
        seq, prev = conn.execute("SELECT coalesce(max(seq), 0), coalesce(max(hash), %s) FROM audit_events "
                                 "WHERE project_id = %s", ("0" * 64, project_id)).fetchone()
        started = time.perf_counter()
        for n in range(rounds):
            issue_id = issue_ids[n % len(issue_ids)]
            current, version = state[issue_id]
            target = "in_progress" if current == "backlog" else "backlog"
            now = datetime.now(timezone.utc)
            seq += 1
            data = json.dumps({"from": current, "to": target, "key": issue_id}, sort_keys=True)
            digest = hashlib.sha256((prev + data).encode()).hexdigest()
            with conn.transaction():
                cur = conn.execute(
                    "UPDATE issues SET state = %s, state_entry = state_entry + 1, state_entered_at = %s, "
                    "updated_at = %s, lock_version = lock_version + 1 WHERE id = %s AND lock_version = %s",
                    (target, now, now, issue_id, version))
                assert cur.rowcount == 1
                conn.execute("INSERT INTO issue_transitions (issue_id, from_state, to_state, transition_id, actor_kind, at) "
                             "VALUES (%s, %s, %s, %s, 'user', %s)", (issue_id, current, target, "floor", now))
                conn.execute("INSERT INTO audit_events (project_id, seq, kind, issue_id, data, created_at, prev_hash, hash) "
                             "VALUES (%s, %s, 'issue.transitioned', %s, %s, %s, %s, %s)",
                             (project_id, seq, issue_id, data, now, prev, digest))
            prev = digest
            state[issue_id] = [target, version + 1]
        return rounds / (time.perf_counter() - started)


def _service(app, owner_id: int, issue_ids: list[int], rounds: int, *, enqueue: bool) -> float:
    from app.extensions import db
    from app.models import Issue, User
    from app.services import events, transitions

    saved = events._emit
    if not enqueue:
        events._emit = lambda *args, **kwargs: None
    try:
        with app.app_context():
            owner = db.session.get(User, owner_id)
            states = dict(db.session.execute(db.select(Issue.id, Issue.state).where(Issue.id.in_(issue_ids))).all())
            started = time.perf_counter()
            for n in range(rounds):
                issue_id = issue_ids[n % len(issue_ids)]
                target = "in_progress" if states[issue_id] == "backlog" else "backlog"
                transitions.apply_transition(issue_id, owner, target=target)
                states[issue_id] = target
            rate = rounds / (time.perf_counter() - started)
            db.session.remove()
            return rate
    finally:
        events._emit = saved


def main() -> None:
    import psycopg

    server = _server_url()
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/10"
    name = f"kiket_bench_{uuid.uuid4().hex[:10]}"
    admin = _with_db(server, urlsplit(server).path.lstrip("/") or "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = _with_db(server, name)
    try:
        from app.extensions import db
        from app.factory import create_app
        from app.models import Issue
        from app.services import accounts, configuration, issues, projects

        app = create_app({"SQLALCHEMY_DATABASE_URI": dsn.replace("postgresql://", "postgresql+psycopg://", 1),
                          "REDIS_URL": redis_url})
        redis = app.extensions["redis"]
        redis.flushdb()
        with app.app_context():
            db.create_all()
            owner = accounts.create_user("bench@example.com", "correct horse battery", "owner")
            project = projects.create_project(owner, "BENCH", "Bench", "", "kanban")
            # The floor writes to its own project, so the two audit chains never share sequence numbers.
            other = projects.create_project(owner, "FLOOR", "Floor", "", "kanban")
            issue_type = issues.creatable_types(configuration.project_config(project))[0].key
            issue_ids = [issues.create_issue(project, owner, issue_type=issue_type, title=f"Bench {n}").id
                         for n in range(ISSUES)]
            floor_ids = [issues.create_issue(other, owner, issue_type=issue_type, title=f"Floor {n}").id
                         for n in range(ISSUES)]
            assert {db.session.get(Issue, i).state for i in issue_ids + floor_ids} == {"backlog"}
            owner_id, floor_project = owner.id, other.id
            db.session.remove()

        # Warm caches (config, statements, connections) on both paths.
        _service(app, owner_id, issue_ids, 40, enqueue=True)
        _floor(dsn, floor_project, floor_ids, 40)
        floors, services, bare = [], [], []
        for _ in range(2):
            floors.append(_floor(dsn, floor_project, floor_ids, ROUNDS))
            services.append(_service(app, owner_id, issue_ids, ROUNDS, enqueue=True))
            bare.append(_service(app, owner_id, issue_ids, ROUNDS, enqueue=False))
        floor, service, no_events = max(floors), max(services), max(bare)
        queued = redis.llen("rq:queue:default")
        ratio = service / floor
        print(f"PostgreSQL scratch database {name}; {ROUNDS} transitions per run over {ISSUES} issues, best of 2")
        print(f"floor (UPDATE with lock check + INSERT history + INSERT audit, one transaction): {floor:8.1f} /s")
        print(f"service apply_transition, events enqueued on RQ ({queued} jobs queued, not run): {service:8.1f} /s")
        print(f"service apply_transition, events not enqueued (for comparison only):            {no_events:8.1f} /s")
        print(f"enqueueing the event costs {1000 / service - 1000 / no_events:.2f} ms per transition "
              f"({(1 - service / no_events) * 100:.0f}% of the service time); the figure above includes it")
        print(f"ratio service/floor: {ratio:.2f}x (goal >= {GOAL}x): {'met' if ratio >= GOAL else 'NOT met'}")
        redis.flushdb()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()

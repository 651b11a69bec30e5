"""Board render time for a project of 10,000 and of 100,000 issues, against the floor of its own SQL, on PostgreSQL.

A scratch database is created on the server of DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test)
with a project on the kanban template (four columns, WIP limits, standard cards with priority and comment
badges) whose issues are spread over the columns, people, priorities and labels, some with comments.
Redis is REDIS_URL (default redis://127.0.0.1:6379/10, flushed).

Rendered cards are kept per process (app/blueprints/boards/views.py::card_html); the cold figure
empties that cache before each render.

The render is the whole page as a signed-in person gets it (`GET /projects/BENCH/boards/kanban` through the
app: session, access, configuration, counts, first 50 cards per column, badges, templates), timed end to end;
every SQL statement it sends is recorded. The floor replays exactly those statements with psycopg on the same
database: the same SQL issued directly. Goals: p50 under 50 ms and within 2x the floor at 10,000 issues;
p50 under 150 ms at 100,000.
"""

from __future__ import annotations

import os
import random
import statistics
import time

RENDERS = int(os.environ.get("KIKET_BENCH_BOARD_RENDERS", "60"))
WARMUP = 5
SIZES = ((10_000, 50.0, 2.0), (100_000, 150.0, None))
PASSWORD = "correct horse battery"


def _app(dsn: str, redis_url: str):
    from app.factory import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": dsn.replace("postgresql://", "postgresql+psycopg://", 1),
                       "REDIS_URL": redis_url, "WTF_CSRF_ENABLED": False})


def _prepare(app) -> int:
    """The project and its people; returns the project id."""
    from app.extensions import db
    from app.models import ProjectMembership
    from app.services import accounts, projects

    with app.app_context():
        db.create_all()
        owner = accounts.create_user("bench@example.com", PASSWORD, "owner")
        project = projects.create_project(owner, "BENCH", "Bench", "", "kanban")
        for n in range(8):
            person = accounts.create_user(f"person{n}@example.com", PASSWORD, "member")
            db.session.add(ProjectMembership(project_id=project.id, user_id=person.id, role="member"))
        db.session.commit()
        project_id = project.id
        db.session.remove()
    return project_id


def _add_issues(app, project_id: int, start: int, count: int) -> None:
    """`count` more issues numbered from `start`, inserted in bulk (with a comment on every fifth)."""
    from app.extensions import db
    from app.models import Project, User
    from app.models.base import utcnow
    from app.models.issues import Comment, Issue, ProjectCounter
    from app.services.sync import configuration

    rng = random.Random(start)
    with app.app_context():
        project = db.session.get(Project, project_id)
        workflow = configuration.project_config(project).workflows["kanban"]
        people = [None, *db.session.scalars(db.select(User.id))]
        states = ["backlog"] * 5 + ["in_progress"] * 2 + ["review"] + ["done"] * 12
        now = utcnow()
        rows = []
        for number in range(start, start + count):
            rows.append({
                "project_id": project_id, "number": number, "key": f"BENCH-{number}",
                "issue_type": rng.choice(("task", "story", "bug")), "title": f"Bench issue {number}",
                "description": "", "state": rng.choice(states), "priority": rng.choice((None, "low", "medium", "high")),
                "assignee_id": rng.choice(people), "labels": rng.choice(([], ["ui"], ["api", "backend"])),
                "custom_fields": {}, "workflow_id": "kanban", "workflow_version": workflow.version,
                "state_entry": 1, "state_entered_at": now, "created_at": now, "updated_at": now, "lock_version": 1,
            })
        for chunk in range(0, len(rows), 5000):
            db.session.execute(Issue.__table__.insert(), rows[chunk:chunk + 5000])
        ids = list(db.session.scalars(db.select(Issue.id).where(Issue.number >= start)))
        comments = [{"issue_id": ident, "author_id": None, "body": "Looked at it.", "created_at": now}
                    for ident in ids[::5]]
        if comments:
            db.session.execute(Comment.__table__.insert(), comments)
        db.session.execute(db.update(ProjectCounter).where(ProjectCounter.project_id == project_id)
                           .values(next_issue_number=start + count))
        db.session.commit()
        db.session.remove()
        # A database in service has been vacuumed since its rows were written (autovacuum): so has this one.
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(db.text("VACUUM ANALYZE"))


def _renders(app, cold: bool = False) -> tuple[list[float], list[list[tuple]]]:
    """Milliseconds per page render, and the statements each render sent (`cold`: the process's card cache
    emptied before each render, as after a restart or when every card changed)."""
    from app.blueprints.boards import views
    from sqlalchemy import event

    from app.extensions import db

    client = app.test_client()
    response = client.post("/login", data={"email": "bench@example.com", "password": PASSWORD})
    assert response.status_code == 303, response.status_code
    recorded: list[list[tuple]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        recorded[-1].append((statement, parameters))

    times = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", record)
    for n in range(WARMUP + RENDERS):
        recorded.append([])
        if cold:
            views._cards_cache.clear()
        started = time.perf_counter()
        response = client.get("/projects/BENCH/boards/kanban")
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200 and b'id="colhead-done"' in response.data
        if n >= WARMUP:
            times.append(elapsed)
    with app.app_context():
        event.remove(db.engine, "before_cursor_execute", record)
    return times, recorded[WARMUP:]


def _floor(dsn: str, renders: list[list[tuple]]) -> list[float]:
    """Milliseconds per render replaying its statements directly with psycopg."""
    import psycopg

    times = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statements in renders[:3] + renders:
            started = time.perf_counter()
            for statement, parameters in statements:
                cursor = conn.execute(statement, parameters)
                if cursor.description is not None:
                    cursor.fetchall()
            times.append((time.perf_counter() - started) * 1000)
    return times[3:]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    from bench.scratch import scratch_database

    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/10"
    with scratch_database() as (name, dsn):
        app = _app(dsn, redis_url)
        app.extensions["redis"].flushdb()
        project_id = _prepare(app)
        have = 1
        print(f"PostgreSQL scratch database {name}; kanban board, page renders through the app, "
              f"{RENDERS} per size after {WARMUP} warm-up")
        for size, goal_ms, goal_ratio in SIZES:
            _add_issues(app, project_id, have, size - have + 1)
            have = size + 1
            times, renders = _renders(app)
            floor = _floor(dsn, renders)
            p50, p99, f50 = statistics.median(times), _pct(times, 0.99), statistics.median(floor)
            ratio = p50 / f50
            verdict = p50 < goal_ms and (goal_ratio is None or ratio <= goal_ratio)
            cold = statistics.median(_renders(app, cold=True)[0])
            print(f"{size:>7,} issues: render p50 {p50:6.1f} ms  p99 {p99:6.1f} ms | floor (same {len(renders[0])} "
                  f"statements via psycopg) p50 {f50:6.1f} ms | ratio {ratio:.2f}x | goal p50 < {goal_ms:.0f} ms"
                  + (f" and <= {goal_ratio}x floor" if goal_ratio else "") + f": {'met' if verdict else 'NOT met'}"
                  f" | cold card cache p50 {cold:6.1f} ms")
        app.extensions["redis"].flushdb()
        with app.app_context():
            from app.extensions import db

            db.session.remove()
            db.engine.dispose()


if __name__ == "__main__":
    main()

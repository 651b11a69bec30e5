"""Prepared statements give what `Session.execute` gives, on both databases, inside the session's transaction."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import event, select, update

from app.models import Issue
from app.services.prepared import Prepared


def test_rows_match_the_session_and_binds_go_through_the_types(app, owner):
    from app.extensions import db
    from app.services import projects
    from app.services.runtime import issues

    project = projects.create_project(owner, "KAN", "Kanban", "", "kanban")
    made = issues.create_issue(project, owner, issue_type="task", title="Typed", labels=["a", "b"])
    table = Issue.__table__
    # A literal carried by the statement, and one parameter used twice (positional on SQLite).
    statement = select(table, sa.literal("x").label("kind")).where(
        table.c.id == sa.bindparam("id"), table.c.project_id != sa.bindparam("id") - 10_000)
    rows, _ = Prepared(statement).execute({"id": made.id})
    expected = db.session.execute(statement, {"id": made.id}).one()
    assert rows == [tuple(expected)]
    values = dict(zip(Prepared(statement).names, rows[0]))
    assert values["labels"] == ["a", "b"] and values["created_at"].tzinfo is not None and values["kind"] == "x"


def test_writes_join_the_session_transaction_and_the_engine_sees_them(app, owner):
    from app.extensions import db
    from app.models.base import utcnow
    from app.services import projects
    from app.services.runtime import issues

    project = projects.create_project(owner, "KAN", "Kanban", "", "kanban")
    made = issues.create_issue(project, owner, issue_type="task", title="Moved")
    table = Issue.__table__
    move = Prepared(update(table).where(table.c.id == sa.bindparam("issue_id"))
                    .values(state=sa.bindparam("state"), updated_at=sa.bindparam("at")))
    seen: list[str] = []
    listener = lambda conn, cursor, statement, *rest: seen.append(statement)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        _, count = move.execute({"issue_id": made.id, "state": "in_progress", "at": utcnow()})
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert count == 1 and len(seen) == 1 and seen[0].startswith("UPDATE issues")
    db.session.rollback()
    assert db.session.scalar(select(Issue.state).where(Issue.id == made.id)) == "backlog"
    move.execute({"issue_id": made.id, "state": "in_progress", "at": utcnow()})
    db.session.commit()
    assert db.session.scalar(select(Issue.state).where(Issue.id == made.id)) == "in_progress"


def test_driver_errors_come_back_as_sqlalchemy_errors(app, owner):
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from app.extensions import db
    from app.models import ProjectCounter
    from app.services import projects
    from app.services.projects import ensure_counter

    project = projects.create_project(owner, "KAN", "Kanban", "", "kanban")
    ensure_counter(project.id)
    counters = ProjectCounter.__table__
    duplicate = Prepared(insert(counters), ("project_id", "next_issue_number", "audit_seq"))
    with pytest.raises(IntegrityError):
        duplicate.execute({"project_id": project.id, "next_issue_number": 1, "audit_seq": 0})
    db.session.rollback()

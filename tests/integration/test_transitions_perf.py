"""Guards for the cost of one transition: statements per call, no re-select after it, a cache that stays correct.

Counts, not timings: a statement added to `apply_transition` shows up here, whatever the machine's speed
(`python -m bench transitions` measures the rate on PostgreSQL).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select, update

POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")
# The issue with its project, people and the actor's role; the configuration's key; the issue's rows
# (watchers, ticks, documents, approvals); the WIP count of a limited target column; UPDATE issue;
# INSERT history; UPDATE audit counter (returning the previous hash on PostgreSQL; SQLite SELECTs it);
# INSERT audit event; INSERT outbox event.
MAX_STATEMENTS = 9 if POSTGRES else 10


@pytest.fixture
def project(owner):
    from app.services import projects

    return projects.create_project(owner, "KAN", "Kanban", "", "kanban")


def new_task(project, owner, title="Task"):
    from app.services.runtime import issues

    return issues.create_issue(project, owner, issue_type="task", title=title)


@contextmanager
def statements():
    """The SQL statements sent to the database inside the block."""
    from app.extensions import db

    sent: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_one_transition_issues_at_most_nine_or_ten_statements(app, owner, project):
    from app.services import audit
    from app.services.runtime import transitions

    issue = new_task(project, owner)
    transitions.apply_transition(issue.id, owner, target="in_progress")  # warms the configuration cache
    with statements() as sent:
        moved = transitions.apply_transition(issue.id, owner, target="backlog")
    assert len(sent) <= MAX_STATEMENTS, "\n".join(sent)
    assert sum("issue_events" in s for s in sent) == 1
    # No SELECT after the commit: the actor stays as this session read it.
    with statements() as after:
        assert (moved.key, moved.state, moved.lock_version, moved.state_entry) == ("KAN-1", "backlog", 3, 3)
        assert owner.email == "owner@example.com"
    assert after == []
    assert audit.verify(project.id).ok


def test_the_result_matches_the_database(app, owner, project):
    from app.extensions import db
    from app.models.issues import Issue, IssueTransition
    from app.services.runtime import transitions

    issue = new_task(project, owner)
    moved = transitions.apply_transition(issue.id, owner, target="in_progress")
    db.session.expire_all()
    fresh = db.session.get(Issue, issue.id)
    record = db.session.get(IssueTransition, moved.record_id)
    assert (moved.id, moved.key, moved.state, moved.state_entry, moved.lock_version) == (
        fresh.id, fresh.key, fresh.state, fresh.state_entry, fresh.lock_version)
    assert (record.issue_id, record.from_state, record.to_state, record.transition_id) == (
        issue.id, moved.from_state, moved.state, moved.transition)


def test_a_change_made_elsewhere_between_two_calls_is_seen(app, owner, project):
    from app.extensions import db
    from app.models.issues import Issue
    from app.services.errors import Conflict
    from app.services.runtime import transitions

    issue = new_task(project, owner)
    transitions.apply_transition(issue.id, owner, target="in_progress")
    # Another process moves it back (as the service would: the lock version goes up).
    with db.engine.begin() as conn:
        conn.execute(update(Issue).where(Issue.id == issue.id)
                     .values(state="backlog", lock_version=Issue.lock_version + 1))
    with pytest.raises(Conflict):
        transitions.apply_transition(issue.id, owner, target="in_progress", lock_version=2)
    moved = transitions.apply_transition(issue.id, owner, target="in_progress", lock_version=3)
    assert (moved.state, moved.lock_version) == ("in_progress", 4)


def test_a_layer_save_is_seen_by_the_next_config_load(app, owner, project, make_user):
    from app.services.sync import configuration, layers

    make_user("dev@example.com", "member")
    before = configuration.project_config(project)  # cached now
    assert not any(m.identity == "dev@example.com" for m in before.team.members)
    team = "team:\n  members:\n    - {user: dev@example.com, roles: [viewer]}\n"
    assert layers.save_layer_file(owner, "team.yaml", team, project=project).saved
    after = configuration.project_config(project)
    assert any(m.identity.lstrip("@") == "dev@example.com" for m in after.team.members)
    assert configuration.project_config(project) is after  # and cached again


@pytest.mark.skipif(not POSTGRES, reason="row-level concurrency needs PostgreSQL; SQLite serializes writers")
def test_concurrent_transitions_of_one_project_keep_one_audit_chain(app, owner, project):
    from app.extensions import db
    from app.models import User
    from app.models.audit import AuditEvent
    from app.services import audit
    from app.services.runtime import transitions

    writers = 10
    issue_ids = [new_task(project, owner, f"Task {n}").id for n in range(writers)]
    owner_id, project_id = owner.id, project.id
    db.session.remove()
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def move(issue_id):
        barrier.wait(timeout=30)
        with app.app_context():
            try:
                for target in ("in_progress", "backlog", "in_progress"):
                    transitions.apply_transition(issue_id, db.session.get(User, owner_id), target=target)
            except Exception as exc:  # asserted below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=move, args=(i,)) for i in issue_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    total = db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.project_id == project_id))
    assert total == writers + 3 * writers
    assert audit.verify(project_id) == audit.VerifyResult(ok=True, checked=total)

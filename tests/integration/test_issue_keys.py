"""Issue numbers are per project, consecutive, and never handed out twice, even to concurrent writers."""

import threading

import pytest
from sqlalchemy.orm.exc import StaleDataError

from app.extensions import db
from app.models import Issue
from app.services.projects import create_project
from app.services.runtime import issue_keys

THREADS = 20


@pytest.fixture
def project(make_user):
    return create_project(make_user(), "ENG", "Engineering", "", "kanban")


def new_issue(project, title="Something broke"):
    number = issue_keys.allocate_number(project.id)
    issue = Issue(project_id=project.id, number=number, key=issue_keys.issue_key(project.key, number), issue_type="task",
                  title=title, state="todo", workflow_id="kanban", workflow_version="0" * 64)
    db.session.add(issue)
    db.session.commit()
    return issue


def test_numbers_are_consecutive_per_project(project, make_user):
    other = create_project(make_user("ops@example.com", "admin"), "OPS", "Operations", "", "kanban")
    keys = [new_issue(project).key for _ in range(3)] + [new_issue(other).key]
    assert keys == ["ENG-1", "ENG-2", "ENG-3", "OPS-1"]


def test_a_rolled_back_allocation_leaves_no_gap(project):
    assert issue_keys.allocate_number(project.id) == 1
    db.session.rollback()
    assert new_issue(project).number == 1


def test_concurrent_allocations_get_distinct_consecutive_numbers(app, project):
    # Each thread has its own app context, hence its own session and connection. On PostgreSQL
    # the counter row lock serializes them; SQLite allows one writer at a time and makes the
    # others wait (pysqlite's 5 s busy timeout), which is plenty for 20 one-statement writes.
    project_id = project.id
    barrier = threading.Barrier(THREADS)
    numbers, errors = [], []

    def allocate():
        with app.app_context():
            try:
                barrier.wait(10)
                numbers.append(issue_keys.allocate_number(project_id))
                db.session.commit()
            except Exception as error:  # collected and asserted below: a thread cannot fail the test itself
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=allocate) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(numbers) == list(range(1, THREADS + 1))
    assert issue_keys.allocate_number(project_id) == THREADS + 1


def test_stale_issue_update_is_refused(app, project):
    issue_id = new_issue(project).id
    mine = db.session.get(Issue, issue_id)
    assert mine.lock_version == 1
    with app.app_context():
        theirs = db.session.get(Issue, issue_id)
        theirs.title = "Their change"
        db.session.commit()
        assert theirs.lock_version == 2
    mine.title = "My change"
    with pytest.raises(StaleDataError):
        db.session.commit()
    db.session.rollback()
    assert db.session.get(Issue, issue_id).title == "Their change"

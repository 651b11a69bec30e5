"""The audit trail is a hash chain per project; verification names the first broken link."""

import threading

import pytest

from app.extensions import db
from app.models import AuditEvent
from app.services import audit
from app.services.projects import create_project


@pytest.fixture
def project(make_user):
    return create_project(make_user(), "LEG", "Legal", "", "kanban")


def write_events(project_id, count):
    for n in range(1, count + 1):
        audit.record(project_id, "issue.transitioned", None, None, {"n": n, "to": "review", "note": "é"})
    db.session.commit()
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.project_id == project_id)
                                   .order_by(AuditEvent.seq)))[-count:]


def test_events_chain_and_verify(project, make_user):
    other = create_project(make_user("b@example.com", "admin"), "OPS", "Operations", "", "kanban")
    events = write_events(project.id, 5)
    write_events(other.id, 2)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == audit.GENESIS_HASH
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(events, events[1:]))
    assert audit.verify(project.id) == audit.VerifyResult(ok=True, checked=5)
    assert audit.verify(other.id) == audit.VerifyResult(ok=True, checked=2)


def test_verify_survives_a_fresh_session(app, project):
    project_id = project.id
    write_events(project_id, 3)
    db.session.remove()
    with app.app_context():
        assert audit.verify(project_id).ok


def test_tampered_data_breaks_the_chain_at_that_row(app, project):
    events = write_events(project.id, 5)
    target = events[2]
    db.session.execute(db.text("UPDATE audit_events SET data = :data WHERE id = :id"),
                       {"data": '{"n": 3, "to": "done", "note": "\\u00e9"}', "id": target.id})
    db.session.commit()
    db.session.expire_all()
    result = audit.verify(project.id)
    assert not result.ok
    assert result.first_broken == audit.BrokenLink(seq=3, id=target.id, reason="hash does not match the event's content")
    assert result.checked == 3

    outcome = app.test_cli_runner().invoke(args=["kiket", "audit", "verify", "leg"])
    assert outcome.exit_code == 1
    assert f"BROKEN at seq 3 (event id {target.id})" in outcome.output


def test_deleted_row_breaks_the_chain_where_it_was(project):
    events = write_events(project.id, 4)
    db.session.execute(db.text("DELETE FROM audit_events WHERE id = :id"), {"id": events[1].id})
    db.session.commit()
    db.session.expire_all()
    result = audit.verify(project.id)
    assert (result.ok, result.first_broken.seq, result.first_broken.id) == (False, 3, events[2].id)
    assert result.first_broken.reason.startswith("sequence gap")


def test_rehashed_row_still_breaks_at_the_next_link(project):
    events = write_events(project.id, 4)
    row = events[1]
    forged = audit.chain_hash(row.prev_hash, audit.canonical(row.project_id, row.seq, "forged", row.actor_id,
                                                            row.issue_id, row.data, row.created_at))
    db.session.execute(db.text("UPDATE audit_events SET kind = 'forged', hash = :h WHERE id = :id"), {"h": forged, "id": row.id})
    db.session.commit()
    db.session.expire_all()
    broken = audit.verify(project.id).first_broken
    assert (broken.seq, broken.id, broken.reason) == (3, events[2].id, "prev_hash does not match the previous event's hash")


def test_cli_reports_an_intact_chain_and_unknown_projects(app, project):
    write_events(project.id, 2)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["kiket", "audit", "verify", "LEG"])
    assert ok.exit_code == 0 and "audit chain OK (2 events)" in ok.output
    missing = runner.invoke(args=["kiket", "audit", "verify", "NOPE"])
    assert missing.exit_code != 0 and "no project" in missing.output


def test_concurrent_writers_do_not_fork_the_chain(app, project):
    project_id, writers = project.id, 12
    barrier = threading.Barrier(writers)
    errors = []

    def write():
        with app.app_context():
            try:
                barrier.wait(10)
                audit.record(project_id, "comment.added", None, None, {"thread": threading.get_ident()})
                db.session.commit()
            except Exception as error:  # collected and asserted below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert db.session.scalar(db.select(db.func.count(AuditEvent.id)).where(AuditEvent.project_id == project_id)) == writers
    assert audit.verify(project_id) == audit.VerifyResult(ok=True, checked=writers)

"""The audit page: project owners and admins read the chain, filter it (in the URL), and verify it on demand."""

from __future__ import annotations

import pytest

from tests.conftest import post_form


@pytest.fixture
def project(app, make_user):
    """OPS, owned by ada; carol is a plain member. Two issues and a comment, so the trail has something to filter."""
    from app.extensions import db
    from app.models import ProjectMembership
    from app.services import projects
    from app.services.runtime import issues, transitions

    ada = make_user("ada@example.com", "owner")
    project = projects.create_project(ada, "OPS", "Operations", "", "kanban")
    carol = make_user("carol@example.com", "member")
    db.session.add(ProjectMembership(project_id=project.id, user_id=carol.id, role="member"))
    db.session.commit()
    first = issues.create_issue(project, ada, issue_type="task", title="First")
    issues.create_issue(project, ada, issue_type="task", title="Second")
    transitions.add_comment(first.id, ada, "a note")
    return project


def test_admins_see_the_chain_and_its_verification(client, login, project):
    login("ada@example.com")
    page = client.get("/projects/OPS/audit").get_data(as_text=True)
    assert "The chain holds: 3 events checked" in page
    assert page.count('id="audit-event-') == 3
    assert "issue.created" in page and "issue.commented" in page
    assert 'href="/projects/OPS/issues/1"' in page
    assert 'href="/projects/OPS/audit"' in client.get("/projects/OPS").get_data(as_text=True)


def test_filters_narrow_the_trail_and_stay_in_the_url(client, login, project):
    login("ada@example.com")
    response = client.get("/projects/OPS/audit?issue=OPS-1&kind=issue.commented", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html and 'id="audit-events"' in html
    assert "HX-Request" in response.headers["Vary"]
    assert html.count('id="audit-event-') == 1 and "issue.commented" in html
    assert client.get("/projects/OPS/audit?issue=2").get_data(as_text=True).count('id="audit-event-') == 1
    assert client.get("/projects/OPS/audit?actor=system").get_data(as_text=True).count('id="audit-event-') == 0
    assert client.get("/projects/OPS/audit?since=2000-01-01&until=2000-01-02").get_data(as_text=True) \
        .count('id="audit-event-') == 0
    bad = client.get("/projects/OPS/audit?since=yesterday").get_data(as_text=True)
    assert "since: Not a valid date. (filter ignored)" in bad and bad.count('id="audit-event-') == 3


def test_pages_of_fifty(client, login, project, app):
    from app.extensions import db
    from app.services import audit

    for n in range(60):
        audit.record(project.id, "test.event", None, None, {"n": n})
    db.session.commit()
    login("ada@example.com")
    first = client.get("/projects/OPS/audit?kind=test.event").get_data(as_text=True)
    assert first.count('id="audit-event-') == 50 and "Page 1 of 2" in first
    assert 'href="/projects/OPS/audit?page=2&amp;kind=test.event"' in first
    second = client.get("/projects/OPS/audit?kind=test.event&page=2").get_data(as_text=True)
    assert second.count('id="audit-event-') == 10


def test_a_tampered_row_shows_as_the_first_broken_link(client, login, project):
    from app.extensions import db
    from app.models import AuditEvent

    target = db.session.scalar(db.select(AuditEvent).where(AuditEvent.project_id == project.id, AuditEvent.seq == 2))
    db.session.execute(db.text("UPDATE audit_events SET kind = 'issue.deleted' WHERE id = :id"), {"id": target.id})
    db.session.commit()
    login("ada@example.com")
    page = client.get("/projects/OPS/audit").get_data(as_text=True)
    assert f"broken at event #2 (id {target.id}): hash does not match the event&#39;s content" in page
    response = post_form(client, "/projects/OPS/audit/verify", headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="audit-verification"' in fragment and "<html" not in fragment
    assert "broken at event #2" in fragment
    assert post_form(client, "/projects/OPS/audit/verify").status_code == 303


def test_verify_needs_the_csrf_token(client, login, project):
    login("ada@example.com")
    assert client.post("/projects/OPS/audit/verify").status_code == 400


def test_members_and_strangers_are_refused(client, login, project, make_user):
    make_user("dave@example.com", "member")
    login("carol@example.com")
    assert client.get("/projects/OPS/audit").status_code == 403
    assert post_form(client, "/projects/OPS/audit/verify").status_code == 403
    assert 'href="/projects/OPS/audit"' not in client.get("/projects/OPS").get_data(as_text=True)


def test_strangers_get_a_404(client, login, project, make_user):
    make_user("dave@example.com", "member")
    login("dave@example.com")
    assert client.get("/projects/OPS/audit").status_code == 404


def test_the_configuration_page_links_the_migrations_page_for_admins(client, login, project):
    login("ada@example.com")
    assert 'href="/projects/OPS/migrations/"' in client.get("/projects/OPS/configuration").get_data(as_text=True)

"""The bell, the notification list, mark read (one or all) and the admins' outbox."""

from __future__ import annotations

from tests.conftest import csrf_token, post_form

HX = {"HX-Request": "true"}


def test_bell_counts_unread_and_the_list_marks_read(app, client, make_user, login):
    from app.services.runtime import notifications

    owner = make_user("owner@example.com", "owner")
    other = make_user("other@example.com", "member")
    first, second = (notifications.notify([owner.id], None, None, text)[0] for text in ("Build <b>broke</b>", "Fixed"))
    notifications.notify([other.id], None, None, "Not yours")
    login()

    page = client.get("/projects").get_data(as_text=True)
    # No polling: the page's live socket refreshes the bell.
    assert 'id="bell"' in page and 'every 30s' not in page and 'ws-connect="' in page

    bell = client.get("/notifications/bell", headers=HX)
    html = bell.get_data(as_text=True)
    assert bell.status_code == 200 and 'id="bell"' in html and '<span class="badge">2</span>' in html
    assert "<html" not in html and "HX-Request" in bell.headers["Vary"]

    listing = client.get("/notifications").get_data(as_text=True)
    assert "Build &lt;b&gt;broke&lt;/b&gt;" in listing and "Not yours" not in listing

    token = csrf_token(client)
    response = client.post("/notifications/read", data={"id": first.id, "csrf_token": token}, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="notifications"' in html and "<html" not in html
    assert 'hx-swap-oob="true"' in html and '<span class="badge">1</span>' in html
    assert notifications.unread_count(owner.id) == 1

    # Another user's id is ignored.
    other_id = notifications.list_for(other.id)[0].id
    client.post("/notifications/read", data={"id": other_id, "csrf_token": token}, headers=HX)
    assert notifications.unread_count(other.id) == 1

    response = post_form(client, "/notifications/read", {"all": "1"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/notifications")
    assert notifications.unread_count(owner.id) == 0
    assert '<span class="badge">' not in client.get("/notifications/bell", headers=HX).get_data(as_text=True)


def test_outbox_is_for_organization_admins(app, client, make_user, login):
    from app.services.runtime import notifications

    owner = make_user("owner@example.com", "owner")
    make_user("dev@example.com", "member")
    notifications.notify([owner.id], None, None, "Mail me", channel="email", emails=["ext@example.org"])
    login("dev@example.com")
    assert client.get("/admin/outbox").status_code == 403
    post_form(client, "/logout")
    login()
    html = client.get("/admin/outbox").get_data(as_text=True)
    assert "ext@example.org" in html and "[Kiket] Mail me" in html and "kept" in html
    assert "/admin/outbox" in client.get("/admin/").get_data(as_text=True)


def test_an_assignee_sees_a_hook_notification_arrive(app, client, make_user, login):
    from tests.support.issue_events import make_issue, move, run_default

    from app.extensions import db
    from app.models import Issue
    from app.services import projects

    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, "BUG", "Bugs", "", "bug_tracking")
    issue = make_issue(project, "Broken upload", reporter=owner, custom_fields={"severity": "low"})
    for state in ("triaging", "fixing", "verifying", "closed"):
        move(db.session.get(Issue, issue.id), state, owner)
    run_default(app)
    login()
    html = client.get("/notifications/bell", headers=HX).get_data(as_text=True)
    assert '<span class="badge">1</span>' in html
    listing = client.get("/notifications").get_data(as_text=True)
    assert f"Bug {issue.id} (Broken upload) is fixed." in listing
    # The issue by its key and title, linked; no empty approvals card above the list.
    assert (f'<a class="notification-issue" href="/projects/BUG/issues/{issue.number}">'
            f'<span class="key">{issue.key}</span> Broken upload</a>') in listing
    assert '<section id="automation-approvals" aria-label' in listing

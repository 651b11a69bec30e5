"""Issue pages over HTTP: list, create form with custom fields, detail, inline edits, transitions, access."""

from __future__ import annotations

import io
import re

import pytest

from tests.conftest import csrf_token, post_form
from tests.support.issue_event_calls import event_calls  # noqa: F401  (fixture)

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _events(event_calls):
    return event_calls


@pytest.fixture
def owner(make_user, login):
    user = make_user("owner@example.com", "owner")
    login()
    return user


@pytest.fixture
def project(owner):
    from app.services import projects

    return projects.create_project(owner, "BUG", "Bugs", "", "bug_tracking")


def create_bug(client, **overrides):
    data = {"issue_type": "bug", "title": "Crash on save", "cf.severity": "high"}
    data.update(overrides)
    return post_form(client, "/projects/BUG/issues", data)


def assert_fragment(response, root_id: str, status: int = 200):
    html = response.get_data(as_text=True)
    assert response.status_code == status, html[:500]
    assert "<html" not in html
    assert re.search(rf'id="{re.escape(root_id)}"', html), html[:300]
    assert "HX-Request" in response.headers.get("Vary", "")
    return html


def test_create_form_renders_the_type_fields_and_swaps_them(client, project):
    page = client.get("/projects/BUG/issues/new")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'name="cf.severity"' in html and "<html" in html
    fragment = assert_fragment(client.get("/projects/BUG/issues/new?issue_type=task", headers=HX), "issue-form")
    assert "cf.severity" not in fragment


def test_create_validates_custom_fields_with_422(client, project):
    response = create_bug(client, **{"cf.severity": "apocalyptic"})
    assert response.status_code == 422
    assert "Severity must be one of critical, high, medium, low" in response.get_data(as_text=True)
    response = post_form(client, "/projects/BUG/issues", {"issue_type": "bug", "title": ""}, headers=HX)
    html = assert_fragment(response, "issue-form", 422)
    assert "Give the issue a title." in html and "Severity is required" in html


def test_create_redirects_and_shows_the_issue(client, project):
    response = create_bug(client, labels="ui, crash", priority="high")
    assert response.status_code == 303 and response.headers["Location"].endswith("/projects/BUG/issues/1")
    html = client.get("/projects/BUG/issues/1").get_data(as_text=True)
    assert "BUG-1" in html and "Crash on save" in html and "Start Triage" in html
    htmx = post_form(client, "/projects/BUG/issues", {"issue_type": "task", "title": "T"}, headers=HX)
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"].endswith("/projects/BUG/issues/2")


def test_list_filters_paginate_and_return_the_fragment(client, project, owner):
    from app.services.runtime import issue_queries, issues

    for n in range(3):
        issues.create_issue(project, owner, issue_type="task", title=f"Task {n}", labels=["alpha"] if n else [])
    create_bug(client, title="Needle bug")
    html = client.get("/projects/BUG/issues").get_data(as_text=True)
    assert "BUG-4" in html and "<html" in html
    fragment = assert_fragment(client.get("/projects/BUG/issues?text=needle", headers=HX), "issue-list")
    assert "Needle bug" in fragment and "Task 1" not in fragment
    fragment = assert_fragment(client.get("/projects/BUG/issues?label=alpha", headers=HX), "issue-list")
    assert "Task 1" in fragment and "Task 0" not in fragment
    page = issue_queries.list_issues(owner, project, per_page=2, page=2)
    assert page.total == 4 and page.pages == 2 and [i.number for i in page.items] == [2, 1]


def test_transition_blocked_shows_every_reason_then_succeeds(client, project, owner):
    create_bug(client)
    post_form(client, "/projects/BUG/issues/1/transition", {"transition": "reported__triaging", "lock_version": "1"})
    response = post_form(client, "/projects/BUG/issues/1/transition",
                         {"transition": "triaging__fixing", "lock_version": "2"}, headers=HX)
    html = assert_fragment(response, "issue-1", 422)
    assert "Transition refused" in html and "Field &#39;Assignee&#39; is required" in html
    assert "Only roles triager, developer may use &#39;Accept&#39;" in html
    response = post_form(client, "/projects/BUG/issues/1/transition",
                         {"transition": "triaging__wont_fix", "lock_version": "2", "comment": "Duplicate"}, headers=HX)
    html = assert_fragment(response, "issue-1")
    assert "Won&#39;t Fix" in html and "Duplicate" in html


def test_simulate_fragment_lists_every_gate(client, project):
    create_bug(client)
    response = client.get("/projects/BUG/issues/1/simulate?transition=reported__triaging", headers=HX)
    html = assert_fragment(response, "verdict-1-reported__triaging")
    for gate in ("permission", "conditions", "required fields", "predicate", "checklists", "documents", "approval",
                 "comment", "wip"):
        assert f"<td>{gate}</td>" in html
    assert "would be allowed" in html


def test_stale_lock_version_is_409_with_a_message(client, project):
    create_bug(client)
    ok = post_form(client, "/projects/BUG/issues/1", {"field": "title", "value": "Renamed", "lock_version": "1"},
                   headers=HX)
    assert_fragment(ok, "issue-1")
    stale = post_form(client, "/projects/BUG/issues/1", {"field": "title", "value": "Again", "lock_version": "1"},
                      headers=HX)
    html = assert_fragment(stale, "issue-1", 409)
    assert "changed by someone else" in html and "Renamed" in html
    stale = post_form(client, "/projects/BUG/issues/1/transition",
                      {"transition": "reported__triaging", "lock_version": "1"})
    assert stale.status_code == 409


def test_inline_edit_of_a_custom_field(client, project):
    create_bug(client)
    form = assert_fragment(client.get("/projects/BUG/issues/1/fields/custom_fields.severity/edit", headers=HX),
                           "field-custom_fields-severity")
    assert 'name="value"' in form
    bad = post_form(client, "/projects/BUG/issues/1", {"field": "custom_fields.severity", "value": "meh",
                                                       "lock_version": "1"}, headers=HX)
    assert_fragment(bad, "field-custom_fields-severity", 422)
    assert bad.headers["HX-Retarget"] == "#field-custom_fields-severity"
    good = post_form(client, "/projects/BUG/issues/1", {"field": "custom_fields.severity", "value": "critical",
                                                        "lock_version": "1"}, headers=HX)
    assert "critical" in assert_fragment(good, "issue-1")


def test_comments_render_markdown_safely(client, project):
    create_bug(client)
    response = post_form(client, "/projects/BUG/issues/1/comments",
                         {"body": "**bold** <script>alert(1)</script> [x](javascript:alert(1))"}, headers=HX)
    html = assert_fragment(response, "issue-1")
    assert "<strong>bold</strong>" in html and "<script>alert" not in html and "&lt;script&gt;" in html
    assert 'href="javascript:' not in html


def test_attachments_upload_and_download_as_attachment(client, project):
    create_bug(client)
    response = client.post("/projects/BUG/issues/1/attachments", data={
        "csrf_token": csrf_token(client), "document_key": "report",
        "file": (io.BytesIO(b"<html>hi</html>"), "page.html", "text/html")}, content_type="multipart/form-data")
    assert response.status_code == 303
    html = client.get("/projects/BUG/issues/1").get_data(as_text=True)
    link = re.search(r'href="(/projects/BUG/issues/1/attachments/\d+)"', html).group(1)
    download = client.get(link)
    assert download.status_code == 200 and download.data == b"<html>hi</html>"
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"


def test_checklist_ticks_over_http(client, project, owner):
    from app.services.runtime import issues, transitions
    from app.services.sync import configuration
    from app.services.sync.layers import save_layer_file

    save_layer_file(owner, "team.yaml", "team:\n  members:\n    - {user: owner@example.com, roles: [developer, qa]}\n",
                    project=project)
    configuration.clear_cache()
    issue = issues.create_issue(project, owner, issue_type="bug", title="B", custom_fields={"severity": "low"},
                                assignee_id=owner.id)
    for target in ("triaging", "fixing", "verifying"):
        transitions.apply_transition(issue.id, owner, target=target)
    for item in ("reproduced_before", "fixed_after"):
        response = post_form(client, f"/projects/BUG/issues/1/checklists/verification/{item}", {"checked": "true"},
                             headers=HX)
        assert_fragment(response, "issue-1")
    assert "2 of 2 required items checked" in response.get_data(as_text=True)
    assert transitions.simulate(issue.id, owner, target="closed").allowed


def test_viewers_get_403_and_strangers_404(client, project, make_user, login, owner):
    from app.extensions import db
    from app.models import ProjectMembership

    create_bug(client)
    viewer = make_user("viewer@example.com", "member")
    make_user("stranger@example.com", "member")
    db.session.add(ProjectMembership(project_id=project.id, user_id=viewer.id, role="viewer"))
    db.session.commit()
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    login("viewer@example.com")
    assert client.get("/projects/BUG/issues/1").status_code == 200
    assert client.get("/projects/BUG/issues").status_code == 200
    assert create_bug(client).status_code == 403
    assert client.get("/projects/BUG/issues/new").status_code == 403
    assert post_form(client, "/projects/BUG/issues/1/comments", {"body": "hi"}).status_code == 403
    assert post_form(client, "/projects/BUG/issues/1", {"field": "title", "value": "x", "lock_version": "1"}
                     ).status_code == 403
    assert client.get("/projects/BUG/issues/1/fields/title/edit").status_code == 403
    assert post_form(client, "/projects/BUG/issues/1/transition", {"transition": "reported__triaging"}
                     ).status_code == 403
    page = client.get("/projects/BUG/issues/1").get_data(as_text=True)
    assert "You lack the issue.transition permission" in page
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    login("stranger@example.com")
    for url in ("/projects/BUG/issues", "/projects/BUG/issues/1", "/projects/BUG/issues/new",
                "/projects/BUG/issues/1/simulate?transition=x"):
        assert client.get(url).status_code == 404, url
    assert post_form(client, "/projects/BUG/issues/1/comments", {"body": "hi"}).status_code == 404


def test_anonymous_requests_are_sent_to_login(app):
    client = app.test_client()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("issues.") and "GET" in rule.methods:
            url = rule.rule.replace("<key>", "BUG").replace("<int:number>", "1").replace("<path:field>", "title") \
                .replace("<int:attachment_id>", "1")
            assert client.get(url).status_code in (302, 401), url


@pytest.mark.parametrize("template", ["kanban", "scrum", "bug_tracking"])
def test_every_bundled_template_creates_and_shows_each_issue_type(client, owner, template):
    from app.services import projects
    from app.services.runtime import issues
    from app.services.sync import configuration

    project = projects.create_project(owner, "TPL", "Template", "", template)
    config = configuration.project_config(project)
    for itype in issues.creatable_types(config):
        data = {"issue_type": itype.key, "title": f"A {itype.label}"}
        for fdef in itype.fields:
            if fdef.required:
                data[f"cf.{fdef.key}"] = str(fdef.options[0][0]) if fdef.options else "1"
        response = post_form(client, "/projects/TPL/issues", data)
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        page = client.get(response.headers["Location"])
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "Transitions" in html and f"A {itype.label}" in html
    listing = client.get("/projects/TPL/issues").get_data(as_text=True)
    assert listing.count('class="key"') >= len(issues.creatable_types(config))

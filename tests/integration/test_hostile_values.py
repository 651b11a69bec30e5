"""`javascript:`, `data:` and `vbscript:` values in every field type, through the issue form and inline editor, the
configuration (field defaults), automations' set_field and the API: each is refused with a clear error or
stored and rendered as text, never as a link, script or image source."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape
from sqlalchemy import select

from tests.conftest import post_form
from tests.support.issue_events import make_issue, run_default, save_override

HOSTILE = (
    "javascript:alert(document.domain)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "[click](javascript:alert(1)) ![x](data:image/png;base64,AAAA) <javascript:alert(2)>",
)
# An attribute that would run or load the value: <a href>, <img src>, <form action>, … (quotes, spaces, case).
ACTIVE = re.compile(r"""(?:href|src|action|formaction|srcdoc|data)\s*=\s*["']?\s*(?:javascript|data|vbscript)\s*:""", re.I)

FIELDS = {  # key: type
    "s": "string", "t": "text", "m": "markdown", "n": "number", "i": "integer", "b": "boolean", "d": "date",
    "dt": "datetime", "e": "enum", "me": "multi_enum", "em": "email", "u": "url", "us": "user", "f": "file",
}
# Types whose check refuses these values (the others hold any text, shown as text).
REFUSING = {"n", "i", "b", "d", "dt", "e", "me", "em", "u", "us"}


def issue_types(defaults: dict | None = None) -> str:
    lines = ['model_version: "1.0"', "issue_types:", "  - key: probe", "    label: Probe", "    workflow: kanban",
             "    fields:"]
    for key, kind in FIELDS.items():
        lines += [f"      - key: {key}", f"        label: F{key}", f"        type: {kind}"]
        if kind in ("enum", "multi_enum"):
            lines.append("        options: [alpha, beta]")
        if defaults and key in defaults:
            lines.append(f"        default: {defaults[key]!r}".replace("'", '"') if '"' not in defaults[key]
                         else f"        default: '{defaults[key]}'")
    return "\n".join(lines) + "\n"


def assert_safe(html: str) -> None:
    match = ACTIVE.search(html)
    assert match is None, html[max(0, match.start() - 200):match.end() + 200]
    assert "<script>alert" not in html


@pytest.fixture
def owner(make_user, login):
    user = make_user("owner@example.com", "owner")
    login()
    return user


@pytest.fixture
def project(owner):
    from app.services import projects

    project = projects.create_project(owner, "HOST", "Hostile", "", "kanban")
    save_override(owner, project, "issue_types.yaml", issue_types())
    return project


def issue_page(client, number: int) -> str:
    response = client.get(f"/projects/HOST/issues/{number}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert_safe(html)
    return html


def test_the_issue_form_refuses_or_shows_as_text_in_every_field_type(client, project):
    number = 0
    for value in HOSTILE:
        for key, kind in FIELDS.items():
            response = post_form(client, "/projects/HOST/issues",
                                 {"issue_type": "probe", "title": "Probe", f"cf.{key}": value})
            html = response.get_data(as_text=True)
            assert_safe(html)
            if key in REFUSING and kind != "boolean":
                assert response.status_code == 422, (key, value)
                assert re.search(rf"F{key} (must be |.* is not one of alpha, beta)", html), (key, value)
                continue
            assert response.status_code == 303, (key, value, html[:500])
            number += 1
            page = issue_page(client, number)
            if kind == "boolean":
                continue  # a checkbox: any text that is not a yes-word is "No"
            if kind != "markdown":
                # The value is there, as text (escaped).
                assert str(escape(value.split("(", 1)[0])) in page, (key, value)
    assert "must be an http(s) URL" in post_form(
        client, "/projects/HOST/issues", {"issue_type": "probe", "title": "P", "cf.u": HOSTILE[0]}).get_data(as_text=True)


def test_the_inline_editor_refuses_a_script_link(client, project):
    created = post_form(client, "/projects/HOST/issues",
                        {"issue_type": "probe", "title": "Probe", "cf.u": "https://example.com/ok"})
    assert created.status_code == 303
    assert 'href="https://example.com/ok"' in issue_page(client, 1)
    for value in HOSTILE[:4]:
        response = post_form(client, "/projects/HOST/issues/1", {"field": "custom_fields.u", "value": value,
                                                                 "lock_version": "1"}, headers={"HX-Request": "true"})
        assert response.status_code == 422 and "must be an http(s) URL" in response.get_data(as_text=True)
    assert 'href="https://example.com/ok"' in issue_page(client, 1)
    # Markdown in the description and a comment: the script links stay text.
    post_form(client, "/projects/HOST/issues/1", {"field": "description", "value": HOSTILE[4], "lock_version": "1"})
    post_form(client, "/projects/HOST/issues/1/comments", {"body": HOSTILE[4]})
    page = issue_page(client, 1)
    assert page.count("[click](javascript:alert(1))") >= 2


def test_a_script_url_default_in_the_configuration_is_a_diagnostic_and_not_used(client, owner, project):
    from app.services.sync import layers

    text = issue_types({"u": "javascript:alert(document.domain)", "s": "javascript:alert(1)",
                        "m": "[x](javascript:alert(1))"})
    result = layers.save_layer_file(owner, "issue_types.yaml", text, project=project)
    assert result.saved
    problems = [d for d in result.diagnostics if d.get("code") == "invalid_value" and "not an http(s) URL" in d.get("message", "")]
    assert problems, result.diagnostics
    data_default = layers.check_layer_file(owner, "issue_types.yaml", issue_types({"u": "data:text/html,x"}),
                                           project=project)
    assert any("not an http(s) URL" in d.get("message", "") for d in data_default.diagnostics)
    # Issues of the type still get created; the URL field stays empty, the text defaults show as text.
    created = post_form(client, "/projects/HOST/issues", {"issue_type": "probe", "title": "Defaults"})
    assert created.status_code == 303, created.get_data(as_text=True)[:500]
    from app.extensions import db
    from app.models.issues import Issue

    issue = db.session.scalar(select(Issue).where(Issue.title == "Defaults"))
    assert "u" not in (issue.custom_fields or {}) or not issue.custom_fields["u"]
    assert issue.custom_fields["s"] == "javascript:alert(1)"
    issue_page(client, issue.number)


AUTOMATION = """model_version: "1.0"
automations:
  - id: hostile
    name: Hostile values
    trigger: issue.created
    actions:
""" + "".join(f"""      - type: set_field
        field: {path}
        value: "{value}"
""" for path, value in [
    ("custom_fields.u", "javascript:alert(document.domain)"),
    ("custom_fields.u", "data:text/html,x"),
    ("custom_fields.em", "javascript:alert(1)"),
    ("custom_fields.n", "javascript:alert(1)"),
    ("custom_fields.d", "javascript:alert(1)"),
    ("custom_fields.e", "javascript:alert(1)"),
    ("custom_fields.us", "javascript:alert(1)"),
    ("custom_fields.u.href", "javascript:alert(1)"),
    ("priority", "javascript:alert(1)"),
    ("due_date", "javascript:alert(1)"),
    ("labels", "javascript:alert(1)"),
    ("custom_fields.s", "javascript:alert(1)"),
    ("custom_fields.m", "[x](javascript:alert(1))"),
    ("title", "javascript:alert(1)"),
]) + """      - type: assign
        field: custom_fields.us
        user: "javascript:alert(1)"
"""


def test_automation_set_field_gets_the_same_checks(app, client, owner, project):
    from app.extensions import db
    from app.models import AutomationRun
    from app.models.issues import Issue

    save_override(owner, project, "automations/hostile.yaml", AUTOMATION)
    issue = make_issue(project, "Target", issue_type="probe", reporter=owner)
    run_default(app)
    run = db.session.scalar(select(AutomationRun).where(AutomationRun.automation_id == "hostile"))
    actions = run.input["actions"]
    statuses = [(a["status"], a["detail"]) for a in actions]
    refused = [d for s, d in statuses if s == "failed"]
    assert len(refused) == 11, [a for a in statuses if a[0] != "failed"]
    assert all(d.startswith("refused: ") and "retrying" not in d for d in refused), refused
    details = " | ".join(refused)
    assert "custom_fields.u: Fu must be an http(s) URL" in details and "nothing was stored" in details
    assert "custom_fields.em: Fem must be an email address" in details
    assert "custom_fields.u is a url field; it has no part 'href'" in details
    assert "priority: Choose one of" in details and "due_date: must be a date" in details
    assert "labels: 'javascript:alert(1)' is not a valid label" in details
    assert "custom_fields.us: Fus must be the email of a user" in details
    assert statuses[-1] == ("skipped", "no one to assign")  # the assign names no account: nothing to write
    assert [s for s, _ in statuses].count("applied") == 3
    db.session.expire_all()
    stored = db.session.get(Issue, issue.id)
    fields = stored.custom_fields or {}
    assert not fields.get("u") and not fields.get("em") and not fields.get("us") and "n" not in fields
    assert fields["s"] == "javascript:alert(1)" and stored.title == "javascript:alert(1)"
    assert stored.priority is None and stored.due_date is None and stored.labels == []
    # No retry was queued for the refused values.
    from app.queue import get_queue
    assert not [j for j in get_queue("default").jobs if "retry_directive" in (j.func_name or "")]
    html = issue_page(client, stored.number)
    assert "[x](javascript:alert(1))" in html


def test_the_api_refuses_script_urls_and_renders_text_safely(app, client, owner, project):
    from app.services.gateway import credentials

    token = credentials.create_personal_token(owner, "tests", ["*"])[1]
    headers = {"Authorization": f"Bearer {token}"}
    for value in HOSTILE[:4]:
        refused = client.post("/api/v1/issues", headers=headers, json={
            "projectKey": "HOST", "issueType": "probe", "title": "Via API", "fields": {"u": value}})
        assert refused.status_code == 422, refused.get_data(as_text=True)
        assert "must be an http(s) URL" in " ".join(refused.get_json()["errors"]["fields.u"])
    created = client.post("/api/v1/issues", headers=headers, json={
        "projectKey": "HOST", "issueType": "probe", "title": "Via API", "description": HOSTILE[4],
        "fields": {"s": HOSTILE[0], "m": HOSTILE[4], "u": "https://example.com/"}})
    assert created.status_code == 201, created.get_data(as_text=True)
    key = created.get_json()["key"]
    for value in HOSTILE[:4]:
        patched = client.patch(f"/api/v1/issues/{key}", headers=headers, json={"fields": {"u": value}})
        assert patched.status_code == 422 and "must be an http(s) URL" in patched.get_data(as_text=True)
        assert client.patch(f"/api/v1/issues/{key}", headers=headers,
                            json={"fields": {"em": value}}).status_code == 422
    html = issue_page(client, int(key.split("-")[1]))
    assert 'href="https://example.com/"' in html

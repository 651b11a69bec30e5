"""Directives (§10.3): every core action turned into data the service runs, with sandboxed templates."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.kiket.model import Action
from app.kiket.runtime.directives import Directory, build_directive, build_directives, pick_assignee, \
    resolve_recipients
from app.kiket.runtime.events import Event
from app.kiket.runtime.snapshot import Actor, IssueSnapshot, template_context

from .conftest import NOW

DIRECTORY = Directory(
    role_members={"legal": ("lena", "lars"), "engineering_lead": ("erin",), "oncall": ("otto", "olga", "oleg"),
                  "team_lead": ("tess",), "manager": ()},
    users=frozenset({"alice", "rita", "lena", "lars", "erin", "otto", "olga", "oleg", "tess", "ivy@example.com"}),
    load={"otto": 5, "olga": 1, "oleg": 1},
    rotation={"oncall": 0},
)
SECRETS = {"GITHUB_WEBHOOK": "https://hooks.example.com/gh?token=s3cret", "TOKEN": "abc"}


def snap(**kw) -> IssueSnapshot:
    base = dict(id=42, key="ENG-42", title="Login fails on Safari", status="fixing", issue_type="bug",
                workflow="bug", assignee="alice", reporter="rita", created_at=NOW - timedelta(hours=5),
                state_entered_at=NOW - timedelta(hours=1), custom_fields={"severity": "high", "counsel": "lars"},
                watchers=("otto",))
    base.update(kw)
    return IssueSnapshot(**base)


def ctx(issue=None, event=None):
    return template_context(issue or snap(), NOW, event, Actor("alice"), project={"key": "ENG"})


def core(type_: str, **params) -> Action:
    return Action(type_, params, "core")


def test_bug_fixing_webhook_renders_secrets_and_keeps_types(revision):
    action = revision("engineering").workflows["bug"].states["fixing"].hooks["on_enter"][0]
    d = build_directive(action, ctx(), directory=DIRECTORY, secrets=SECRETS)
    assert d.kind == "webhook"
    assert d.params["url"] == SECRETS["GITHUB_WEBHOOK"]
    assert d.params["method"] == "POST" and d.params["timeout_s"] == 10
    assert d.params["body"] == {"action": "create_branch", "issue_id": 42,
                                "branch_name": "fix/42-login-fails-on-safari"}


def test_missing_secret_fails_before_any_request(revision):
    action = revision("engineering").workflows["bug"].states["fixing"].hooks["on_enter"][0]
    d = build_directive(action, ctx(), directory=DIRECTORY, secrets={})
    assert d.kind == "failed" and "GITHUB_WEBHOOK" in d.reason and not d.runnable


def test_secrets_never_reach_other_actions():
    d = build_directive(core("notify", recipients={"user": "assignee"}, message="token=${env.TOKEN}"), ctx(),
                        directory=DIRECTORY, secrets=SECRETS)
    assert d.kind == "notify" and d.params["message"] == "token="


@pytest.mark.parametrize("url", ["file:///etc/passwd", "javascript:alert(1)", "ftp://example.com/x", "//example.com",
                                 "http://user:pw@example.com/", "https://exa mple.com/", "${issue.nothing}"])
def test_webhook_refuses_non_http_urls(url):
    d = build_directive(core("webhook", url=url, method="POST"), ctx(), secrets=SECRETS)
    assert d.kind == "failed"


def test_webhook_refuses_header_injection_from_issue_data():
    hostile = snap(title="x\r\nX-Admin: yes")
    action = core("webhook", url="https://example.com/h", headers={"X-Title": "${issue.title}"})
    assert build_directive(action, ctx(hostile)).kind == "failed"
    fine = build_directive(core("webhook", url="https://example.com/h", headers={"Authorization": "Bearer ${env.TOKEN}"},
                                method="PUT"), ctx(), secrets=SECRETS)
    assert fine.params["headers"] == {"Authorization": "Bearer abc"} and fine.params["method"] == "PUT"


@pytest.mark.parametrize("template, expected", [
    ("${issue._private}", ""),
    ("${issue.__class__}", ""),
    ("${env.TOKEN}", ""),
    ("{{ issue.title | upper }}", "LOGIN FAILS ON SAFARI"),
    ("${issue.custom_fields.severity} / ${issue.status_label}", "high / Fixing"),
    ("${nothing.here}", ""),
    ("\\${issue.title}", "${issue.title}"),
])
def test_hostile_and_odd_templates_render_safely(revision, template, expected):
    workflow = revision("engineering").workflows["bug"]
    context = template_context(snap(), NOW, workflow=workflow)
    d = build_directive(core("add_comment", body=template + " tail"), context)
    assert d.kind == "add_comment" and d.params["body"] == expected + " tail" and d.params["author"] == "system"


def test_huge_template_output_is_capped():
    d = build_directive(core("add_comment", body="${issue.description}"), ctx(snap(description="x" * 200_000)))
    assert len(d.params["body"].encode()) <= 64 * 1024


def test_notify_recipients_from_the_legal_sla_hook(revision):
    action = revision("legal").workflows["contract"].states["legal_review"].sla.on_warning[0]
    d = build_directive(action, ctx(snap(title="NDA Acme")), directory=DIRECTORY)
    assert d.kind == "notify"
    assert d.params["users"] == ("alice", "lena", "lars")
    assert d.params["message"] == "⚠️ Contract NDA Acme approaching SLA in Legal Review"
    assert d.params["channel"] == "in_app" and d.params["level"] == "info"


@pytest.mark.parametrize("spec, users, emails", [
    ({"user": "assignee"}, ("alice",), ()),
    ({"user": "submitter"}, ("rita",), ()),
    ({"fields": ["reporter", "custom_fields.counsel"]}, ("rita", "lars"), ()),
    ({"user": "custom_fields.counsel"}, ("lars",), ()),
    ({"users": ["@legal", "erin"]}, ("lena", "lars", "erin"), ()),
    ({"roles": ["oncall", "manager"]}, ("otto", "olga", "oleg"), ()),
    ({"users": ["boss@example.org", "ivy@example.com"]}, ("ivy@example.com",), ("boss@example.org",)),
    (["watchers", "assignee", "alice"], ("otto", "alice"), ()),
    ("reporter", ("rita",), ()),
])
def test_recipient_resolution(spec, users, emails):
    found = resolve_recipients(spec, ctx(), DIRECTORY)
    assert found.users == users and found.emails == emails


def test_unresolvable_recipients_are_reported_and_skip_the_notification():
    d = build_directive(core("notify", recipients={"roles": ["manager", "ghosts"], "user": "nobody"}, message="hi"),
                        ctx(), directory=DIRECTORY)
    assert d.kind == "skipped" and d.reason == "no recipients resolved"
    assert "role manager has no members" in d.params["unresolved"]


@pytest.mark.parametrize("channel, kind", [("email", "notify"), ("in_app", "notify"), ("slack:#eng", "skipped"),
                                           ("teams:x", "skipped")])
def test_notify_channels(channel, kind):
    d = build_directive(core("notify", recipients={"user": "assignee"}, message="m", channel=channel, level="error"),
                        ctx(), directory=DIRECTORY)
    assert d.kind == kind
    if kind == "notify":
        assert d.params["level"] == "critical"


def test_stub_actions_are_skipped(revision):
    actions = revision("engineering").workflows["bug"].states["reported"].hooks["on_enter"]
    assert {d.kind for d in build_directives(actions, ctx())} == {"skipped"}
    assert {d.reason for d in build_directives(actions, ctx())} == {"not supported"}
    scrum_notify = revision("scrum").automations["silent_issue_follow_up"].actions[0]
    assert build_directive(scrum_notify, ctx()).reason == "not supported"
    assert build_directive(Action("frobnicate", {}, "unknown"), ctx()).kind == "skipped"


def test_assign_current_assignee_with_fallback(revision):
    action = revision("scrum").automations["silent_issue_follow_up"].actions[1]
    assert build_directive(action, ctx(), directory=DIRECTORY).params["user"] == "alice"
    d = build_directive(action, ctx(snap(assignee=None)), directory=DIRECTORY)
    assert d.params["user"] == "tess" and d.params["role"] == "team_lead" and d.params["field"] == "assignee"


def test_assign_incident_commander_to_a_custom_field(revision):
    action = revision("engineering").automations["incident-commander"].actions[0]
    d = build_directive(action, ctx(), directory=DIRECTORY)
    assert d.kind == "assign" and d.params["field"] == "custom_fields.incident_commander"
    assert d.params["user"] == "olga" and d.params["rotation_index"] == 1  # round robin after cursor 0


@pytest.mark.parametrize("strategy, expected", [("least_loaded", "olga"), ("round_robin", "olga"), (None, "olga")])
def test_assign_strategies(strategy, expected):
    assert pick_assignee(("otto", "olga", "oleg"), strategy, "oncall", DIRECTORY) == expected


def test_round_robin_wraps_and_least_loaded_breaks_ties_by_order():
    directory = Directory(rotation={"r": 2}, load={"a": 1, "b": 0, "c": 0})
    assert pick_assignee(("a", "b", "c"), "round_robin", "r", directory) == "a"
    assert pick_assignee(("a", "b", "c"), "least_loaded", "r", directory) == "b"
    assert pick_assignee((), "least_loaded", "r", directory) is None


def test_assign_nobody():
    d = build_directive(core("assign", to="@manager"), ctx(), directory=DIRECTORY)
    assert d.kind == "skipped" and d.reason == "no one to assign"


def test_set_field_and_protected_fields(revision):
    action = revision("engineering").automations["bug-sla-breach"].actions[2]
    d = build_directive(action, ctx())
    assert d.params == {"field": "custom_fields.escalated", "value": True}
    assert build_directive(core("set_field", field="priority", value="${issue.custom_fields.severity}"),
                           ctx()).params == {"field": "priority", "value": "high"}
    for field in ("status", "id", "key", "issue.workflow", "_x"):
        assert build_directive(core("set_field", field=field, value=1), ctx()).kind == "failed"


def test_labels(revision):
    add = revision("legal").automations["gdpr-sla-breach"].actions[1]
    assert build_directive(add, ctx()).params == {"labels": ("compliance-risk",)}
    d = build_directive(core("remove_label", labels=["a", "${issue.custom_fields.severity}", "", "a"]), ctx())
    assert d.kind == "remove_label" and d.params["labels"] == ("a", "high")
    assert build_directive(core("add_label", label="${issue.nothing}"), ctx()).kind == "failed"


def test_comment_alias_from_legal_automation(revision):
    action = revision("legal").automations["gdpr-completion-audit"].actions[1]
    d = build_directive(action, ctx())
    assert d.kind == "add_comment" and d.params["body"].startswith("✅ GDPR request completed")


def test_add_watcher_from_engineering(revision):
    action = revision("engineering").automations["critical-bug-alert"].actions[1]
    assert build_directive(action, ctx(), directory=DIRECTORY).params["users"] == ("erin",)


def test_escalate_notifies_and_labels():
    d = build_directive(core("escalate", to=["@legal", "assignee"], message="Stuck: ${issue.key}"), ctx(),
                        directory=DIRECTORY)
    assert d.kind == "escalate"
    assert d.params["users"] == ("lena", "lars", "alice") and d.params["label"] == "escalated"
    assert d.params["message"] == "Stuck: ENG-42" and d.params["level"] == "critical"


def test_schedule_reminder_from_engineering(revision):
    action = revision("engineering").automations["postmortem-reminder"].actions[1]
    d = build_directive(action, ctx(), now=NOW)
    assert d.kind == "schedule_reminder" and d.params["delay_s"] == 48 * 3600
    assert d.params["due_at"] == (NOW + timedelta(hours=48)).isoformat()
    assert d.params["message"] == "⏰ Postmortem still pending for incident #42"
    assert d.params["condition"] is not None


def test_request_approval_from_scrum(revision):
    action = revision("scrum").automations["high_risk_issue_alert"].actions[1]
    d = build_directive(action, ctx(), directory=DIRECTORY)
    assert d.kind == "request_approval" and d.params["approvers"] == ("@engineering_manager",)
    assert d.params["reason"] == "Approve mitigation for AI flagged high risk work"


def test_transition_and_create_issue():
    assert build_directive(core("transition", to="testing"), ctx()).params == {"to": "testing", "name": None}
    d = build_directive(core("create_issue", workflow="bug", issue_type="task", title="Follow up ${issue.key}",
                             fields={"parent_key": "${issue.key}"}, link="relates"), ctx())
    assert d.kind == "create_issue" and d.params["title"] == "Follow up ENG-42"
    assert d.params["fields"] == {"parent_key": "ENG-42"}
    assert build_directive(core("create_issue", title="${issue.nothing}"), ctx()).kind == "failed"


def test_sla_event_roots_in_templates(revision):
    action = revision("legal").automations["gdpr-sla-warning"].actions[0]
    event = Event("sla.warning", None, {"sla": {"state": "processing", "time_remaining": "3h 20m"}})
    d = build_directive(action, ctx(event=event), directory=DIRECTORY)
    assert d.params["message"] == "⚠️ GDPR deadline approaching: Request #42 (3h 20m remaining)"
    assert d.params["users"] == ("alice", "lena", "lars")


def test_missing_placeholders_are_reported():
    d = build_directive(core("add_comment", body="a ${issue.custom_fields.nope} b"), ctx())
    assert d.kind == "add_comment" and d.missing == ("issue.custom_fields.nope",)

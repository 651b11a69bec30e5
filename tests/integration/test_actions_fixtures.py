"""Core actions (spec §10.3) and stubs, as the fixture repositories' own hooks, SLA policies, automations and
recipes run them after real service calls: the effects engine on the `default` queue, outcomes read back from
the database.

On the fixtures: notify (in-app, to roles, person fields and `custom_fields.*`), webhook (the delivery it
records), assign (a role into a custom field), add_watcher, schedule_reminder, request_approval, and the
add_comment (legal's `comment`), the ai_*, blockchain_anchor and anchor_data stubs. set_field and add_label
(engineering's `bug-sla-breach`) and the scrum assign are in test_automations_rules.py. No fixture uses
transition, remove_label, escalate or create_issue: they run on workflows written in test_effects_hooks.py and
test_effects_runtime.py (create_issue also from a cron automation in test_automations_project_events.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from rq.job import Job
from sqlalchemy import select

from tests.support.fixture_projects import LEGAL_TEAM, by_title, member, override, synced_project, write_custom_fields
from tests.support.issue_events import hook_runs, make_issue, run_default


def messages(user, issue) -> list[tuple[str, str]]:
    """(message, level) of a user's notifications about an issue, oldest first."""
    from app.extensions import db
    from app.models import Notification

    return [(n.message, n.level) for n in db.session.scalars(select(Notification).where(
        Notification.user_id == user.id, Notification.issue_id == issue.id).order_by(Notification.id))]


def actions(run_input) -> list[tuple[str, str]]:
    return [(a["type"], a["status"]) for a in run_input["actions"]]


def last_hooks(project, issue, event: str) -> list[tuple[str, str, str]]:
    """(phase, type, status) of the issue's latest hook run for `event`."""
    run = [r for r in hook_runs(project.id, issue.id) if r.data["event"] == event][-1]
    return [(a["phase"], a["type"], a["status"]) for a in run.data["actions"]]


def automation_run(automation_id: str, issue):
    from app.extensions import db
    from app.models import AutomationRun

    return db.session.scalar(select(AutomationRun).where(AutomationRun.automation_id == automation_id,
                                                         AutomationRun.issue_id == issue.id))


def deliveries() -> list[tuple[str, str, dict]]:
    """(event, url as displayed, JSON body) of every webhook delivery recorded (the seed issues' too), in order."""
    from app.extensions import db
    from app.models import WebhookDelivery

    return [(d.event, d.url, json.loads(d.request_body)) for d in
            db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))]


def transition(app, issue, actor, target):
    """Apply a transition through the service, let the effects engine run, and read the issue again."""
    from app.extensions import db
    from app.models import Issue
    from app.services.runtime import transitions

    transitions.apply_transition(issue.id, actor, target=target)
    run_default(app)
    return db.session.get(Issue, issue.id)


ENGINEERING_TEAM = """team:
  roles:
    - {name: oncall, description: On call}
    - {name: engineering_lead, description: Leads engineering}
    - {name: engineering, description: Engineers}
  members:
    - {user: oncall@example.com, roles: [oncall]}
    - {user: lead@example.com, roles: [engineering_lead, engineering]}
"""


@pytest.fixture
def engineering(app, owner, make_user, tmp_path):
    """Engineering at main, its undeclared roles given members, its webhook URLs set as project secrets."""
    from app.services.webhooks import secrets

    project, _, _ = synced_project(app, owner, tmp_path, "engineering")
    oncall = member(make_user, project, "oncall@example.com")
    lead = member(make_user, project, "lead@example.com")
    override(app, owner, project, "team.yaml", ENGINEERING_TEAM)
    for name in ("SLACK_WEBHOOK", "STATUS_PAGE_WEBHOOK", "GITHUB_WEBHOOK", "CHANGELOG_WEBHOOK"):
        secrets.set_secret(project.id, name, f"https://hooks.example.com/{name.lower()}", owner.id)
    run_default(app)  # the seed issues' creation effects
    return project, oncall, lead


def test_an_incident_from_detection_to_postmortem(app, owner, engineering):
    from app.extensions import db
    from app.models import Issue, SlaTimer
    from app.queue import get_queue
    from app.services.runtime import sla, transitions

    project, oncall, lead = engineering
    seen = len(deliveries())
    incident = make_issue(project, "Checkout is down", issue_type="incident", reporter=owner, assignee=owner,
                          custom_fields={"severity": "P1"})
    run_default(app)
    # detected's on_enter: the AI stub, the page to on-call and leads, the Slack webhook.
    assert last_hooks(project, incident, "issue.created") == [
        ("on_enter", "ai_analyze", "skipped"), ("on_enter", "notify", "applied"), ("on_enter", "webhook", "applied")]
    assert deliveries()[seen:] == [("issue.created", "[redacted]", {
        "channel": "#incidents", "text": "🚨 New incident: Checkout is down",
        "attachments": [{"color": "danger", "fields": [
            {"title": "Severity", "value": "P1", "short": True},
            {"title": "Affected Services", "value": "", "short": True}]}]})]
    # incident-commander (severity in [P1, P2]): the on-call member becomes the commander.
    commander = automation_run("incident-commander", incident)
    assert commander.outcome == "applied"
    assert actions(commander.input) == [("assign", "applied"), ("ai_action", "skipped"), ("ai_action", "skipped"),
                                        ("notify", "applied")]
    assert db.session.get(Issue, incident.id).custom_fields["incident_commander"] == "oncall@example.com"
    paged = [("🚨 INCIDENT: Checkout is down - Severity: P1", "critical"),
             ("🚨 P1 Incident: Checkout is down", "critical")]
    assert messages(oncall, incident) == paged and messages(lead, incident) == paged

    # investigating's SLA rule for `p1` matches the issue's `P1` (strings compare case-insensitively).
    incident = transition(app, incident, owner, "investigating")
    timer = db.session.scalar(select(SlaTimer).where(SlaTimer.issue_id == incident.id,
                                                     SlaTimer.state == "investigating"))
    entered = incident.state_entered_at
    assert (timer.rule_key, timer.warning_at, timer.breach_at) == (
        "rule-0", entered + timedelta(minutes=5), entered + timedelta(minutes=15))
    fired = [e for e in sla.sweep(entered + timedelta(minutes=16)).sla_events if e[0] == incident.key]
    assert fired == [(incident.key, "sla.warning"), (incident.key, "sla.breach")]

    for target in ("mitigating", "resolved"):
        incident = transition(app, incident, owner, target)
    assert [d[2] for d in deliveries()[seen + 1:]] == [
        {"status": "investigating", "incident_id": incident.id,
         "message": "We are aware of the issue and actively working on a fix."},
        {"status": "resolved", "incident_id": incident.id}]
    # `product` has no members: only the engineering role hears of it.
    assert last_hooks(project, incident, "issue.transitioned") == [
        ("on_enter", "notify", "applied"), ("on_enter", "webhook", "applied")]
    assert messages(lead, incident)[-1] == ("✅ Incident resolved: Checkout is down", "success")

    for item in ("timeline_documented", "root_cause_identified", "action_items_created", "stakeholders_notified"):
        transitions.tick_checklist(incident.id, owner, "postmortem_checklist", item, True)
    run_default(app)
    assert last_hooks(project, incident, "checklist.completed") == [("on_complete", "anchor_data", "skipped")]

    incident = transition(app, incident, owner, "postmortem")
    reminder = automation_run("postmortem-reminder", incident)
    assert actions(reminder.input) == [("notify", "applied"), ("schedule_reminder", "applied")]
    needed = (f"📝 Postmortem needed for incident #{incident.id}: Checkout is down", "info")
    # The commander and the leads.
    assert messages(oncall, incident)[-1] == needed and messages(lead, incident)[-1] == needed
    [job_id] = [j for j in get_queue("default").scheduled_job_registry.get_job_ids()
                if j.startswith(f"reminder-{incident.id}-")]
    job = Job.fetch(job_id, connection=app.extensions["redis"])
    assert job.args[1:4] == ("postmortem", incident.state_entry,
                             f"⏰ Postmortem still pending for incident #{incident.id}")
    # When due (in 48 h) its condition, still in postmortem, holds: the assignee hears of it.
    assert job.perform() == "sent to 1"
    assert messages(owner, incident)[-1] == (f"⏰ Postmortem still pending for incident #{incident.id}", "warning")


def test_a_critical_bug_alerts_the_leads_and_its_fix_and_deploy_call_their_webhooks(app, owner, engineering):
    from app.extensions import db
    from app.models import Issue
    from app.services.runtime import issue_page, issues, transitions

    project, oncall, lead = engineering
    bug = make_issue(project, "Crash on Save!", reporter=owner, assignee=owner, custom_fields={"severity": "critical"})
    run_default(app)
    issues.update_issue(bug.id, owner, bug.lock_version, description="Every time")
    run_default(app)
    alert = automation_run("critical-bug-alert", bug)
    assert actions(alert.input) == [("notify", "applied"), ("add_watcher", "applied")]
    assert messages(oncall, bug) == [("🔴 Critical bug reported: Crash on Save!", "critical")]
    assert [w.email for w in issue_page.issue_view(owner, db.session.get(Issue, bug.id)).watchers] == ["lead@example.com"]

    for target in ("triaging", "fixing"):
        bug = transition(app, bug, owner, target)
    assert deliveries()[-1] == ("issue.transitioned", "[redacted]", {
        "action": "create_branch", "issue_id": bug.id, "branch_name": f"fix/{bug.id}-crash-on-save"})
    bug = transition(app, bug, owner, "testing")
    write_custom_fields(bug.id, ci_status="passed", integration_status="passed", security_status="clean")
    transitions.tick_checklist(bug.id, owner, "bug_testing", "manual_qa", True)
    bug = transition(app, bug, owner, "deployed")
    assert last_hooks(project, bug, "issue.transitioned") == [
        ("on_enter", "notify", "applied"), ("on_enter", "webhook", "applied")]
    assert messages(owner, bug)[-1] == (f"Bug #{bug.id} has been fixed and deployed!", "success")
    assert deliveries()[-1][2] == {"type": "bug_fix", "issue_id": bug.id, "title": "Crash on Save!"}


# 2026-11-30 is a Monday; the default calendar is Mon–Fri 09:00–17:00 UTC.
MONDAY_9AM = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def legal(app, owner, make_user, tmp_path):
    project, _, _ = synced_project(app, owner, tmp_path, "legal", "LEG")
    counsel = member(make_user, project, "counsel@example.com")
    override(app, owner, project, "team.yaml", LEGAL_TEAM)
    run_default(app)
    return project, counsel


def test_contract_hooks_and_the_legal_review_sla_policy_notify_the_right_people(app, owner, legal):
    from app.extensions import db
    from app.models import SlaTimer
    from app.services.runtime import issues, sla, transitions

    project, counsel = legal
    contract = by_title(project, "Meridian")
    issues.update_issue(contract.id, owner, contract.lock_version, assignee_id=owner.id)
    transitions.decide_approval(contract.id, counsel, "approved")
    contract = transition(app, contract, owner, "pending_signature")
    assert messages(owner, contract)[-1] == (
        "📋 Contract ready for signature: Enterprise SaaS agreement with Meridian Financial", "info")
    for target in ("countersigned", "active"):
        contract = transition(app, contract, owner, target)
    # `sales` has no members; the anchor is a stub.
    assert last_hooks(project, contract, "issue.transitioned") == [
        ("on_enter", "notify", "applied"), ("on_enter", "blockchain_anchor", "skipped")]
    assert messages(counsel, contract)[-1] == (
        "✅ Contract executed: Enterprise SaaS agreement with Meridian Financial", "success")

    waiting = make_issue(project, "Reseller agreement", issue_type="contract", state="legal_review",
                         reporter=owner, assignee=owner, entered_at=MONDAY_9AM)
    run_default(app)
    timer = db.session.scalar(select(SlaTimer).where(SlaTimer.issue_id == waiting.id))
    # 48 and 120 business hours: six and fifteen 8-hour days.
    assert timer.warning_at == datetime(2026, 12, 7, 17, tzinfo=timezone.utc)
    assert timer.breach_at == datetime(2026, 12, 18, 17, tzinfo=timezone.utc)
    assert [e for e in sla.sweep(timer.warning_at).sla_events if e[0] == waiting.key] == [
        (waiting.key, "sla.warning")]
    assert [e for e in sla.sweep(timer.breach_at).sla_events if e[0] == waiting.key] == [
        (waiting.key, "sla.breach")]
    run_default(app)
    # on_warning: the assignee and role legal; on_breach: roles legal and manager (no members).
    warning = ("⚠️ Contract Reseller agreement approaching SLA in Legal Review", "info")
    breach = ("🚨 SLA BREACH: Contract Reseller agreement exceeded 120h in Legal Review", "critical")
    assert messages(counsel, waiting) == [
        (f"Approval requested: {waiting.key} Reseller agreement is in Legal Review", "warning"), warning, breach]
    assert messages(owner, waiting) == [warning]


def test_a_completed_gdpr_request_tells_its_submitter_and_leaves_an_audit_comment(app, owner, legal):
    from app.extensions import db
    from app.models import Comment
    from app.services.runtime import issues

    project, counsel = legal
    request = issues.create_issue(project, owner, issue_type="gdpr_request", title="Export my data")
    run_default(app)
    # gdpr-classification: two AI stubs, then counsel hears of it (the AI would have filled the fields).
    assert actions(automation_run("gdpr-classification", request).input) == [
        ("ai_action", "skipped"), ("ai_action", "skipped"), ("notify", "applied")]
    assert messages(counsel, request) == [("🔐 New GDPR request:  from ", "info")]
    for target in ("verifying_identity", "processing", "completed"):
        request = transition(app, request, owner, target)
    assert last_hooks(project, request, "issue.transitioned") == [
        ("on_enter", "notify", "applied"), ("on_enter", "blockchain_anchor", "skipped")]
    assert (f"Your GDPR request has been completed. Reference: #{request.id}", "info") in messages(owner, request)
    audit = automation_run("gdpr-completion-audit", request)
    # The fixture spells it `comment`, an alias of add_comment.
    assert actions(audit.input) == [("blockchain_anchor", "skipped"), ("add_comment", "applied")]
    comment = db.session.scalar(select(Comment).where(Comment.issue_id == request.id))
    assert comment.author_id is None
    assert comment.body == "✅ GDPR request completed and anchored to blockchain for compliance audit trail."


SCRUM_TEAM = """team:
  roles:
    - {name: operations_manager, description: Operations}
    - {name: engineering_manager, description: Engineering managers}
  members:
    - {user: ops@example.com, roles: [operations_manager]}
    - {user: em@example.com, roles: [engineering_manager]}
"""


def test_scrum_recipes_gated_by_approval_request_approvals_once_approved(app, owner, make_user, tmp_path):
    from datetime import date

    from app.services.runtime import issues
    from app.services.runtime.effects import gated_runs

    project, _, _ = synced_project(app, owner, tmp_path, "scrum", "SCR")
    ops = member(make_user, project, "ops@example.com")
    manager = member(make_user, project, "em@example.com")
    override(app, owner, project, "team.yaml", SCRUM_TEAM)
    story = make_issue(project, "Payments revamp", issue_type="UserStory", state="in_progress", reporter=owner,
                       priority="critical", custom_fields={"ai_risk_score": 0.9})
    run_default(app)
    # Overdue since yesterday, so hours_until_due <= 8 holds whatever the time of day.
    issues.update_issue(story.id, owner, story.lock_version, due_date=date.today() - timedelta(days=1))
    run_default(app)
    breach, risk = automation_run("sla_breach_escalation", story), automation_run("high_risk_issue_alert", story)
    assert (breach.outcome, risk.outcome) == ("awaiting_approval", "awaiting_approval")
    assert messages(ops, story) == [] and messages(manager, story) == []

    approved = gated_runs.decide_run(breach.id, owner, approve=True)
    assert approved.outcome == "applied (approved by owner@example.com)"
    # The Teams channel is a stub; request_approval asks the operations managers.
    assert actions(approved.input) == [("notify", "skipped"), ("request_approval", "applied")]
    assert messages(ops, story) == [(f"Approval requested on {story.key} Payments revamp: "
                              "Approve mitigation plan for impending SLA breach", "warning")]
    denied = gated_runs.decide_run(risk.id, owner, approve=False, reason="Known risk")
    assert denied.outcome == "denied by owner@example.com" and "actions" not in denied.input
    assert messages(manager, story) == []

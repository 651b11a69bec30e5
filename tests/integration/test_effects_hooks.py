"""Hooks after commit (spec §8.7): on_exit, transition actions, on_enter in order; core actions for real;
stubs recorded as skipped; a failing action never undoes the transition."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.issue_events import Receiver, hook_runs, make_issue, move, run_default, save_override

WORKFLOW = """model_version: "1.0"
workflow:
  id: ops
  name: Operations
  version: 1.0.0
states:
  reported:
    type: initial
    category: pending
    metadata: {label: Reported}
    on_enter:
      - action: add_label
        label: fresh
      - action: ai_analyze
        agent: ai.engineering.bug_categorizer
        store_result_in: custom_fields.severity
    on_exit:
      - action: webhook
        url: "${env.HOOK_URL}/exit"
        body: {step: exit, issue: "${issue.id}"}
  triaging:
    type: active
    category: active
    metadata: {label: Triaging}
    on_enter:
      - action: webhook
        url: "${env.HOOK_URL}/enter"
        body: {step: enter, key: "${issue.key}", priority: "${issue.priority}"}
      - action: notify
        recipients: {fields: [reporter]}
        message: "Triage started for ${issue.title}"
      - action: assign
        to: dev@example.com
      - action: add_watcher
        users: [lead@example.com]
      - action: remove_label
        label: fresh
      - action: escalate
        to: [lead@example.com]
        message: "Look at ${issue.key}"
      - action: create_issue
        issue_type: ticket
        title: "Follow up ${issue.key}"
      - action: schedule_reminder
        delay: 1h
        message: "Still triaging ${issue.key}"
      - action: request_approval
        approvers: [lead@example.com]
        reason: Needs a lead
      - action: notify
        channel: "slack:#bugs"
        message: hi
  closed:
    type: final
    category: completed
    metadata: {label: Closed}
transitions:
  - from: reported
    to: triaging
    name: Start Triage
    actions:
      - action: webhook
        url: "${env.HOOK_URL}/transition"
        body: {step: transition}
      - action: set_field
        field: priority
        value: high
      - action: set_field
        field: custom_fields.severity
        value: critical
      - action: add_comment
        body: "Triage started by ${actor.name}"
  - from: triaging
    to: closed
    name: Close
"""

# The bundled template is the project's repository layer and wins per element: a new type and workflow
# in the project's overrides are what a test can add.
TICKET = """model_version: "1.0"
issue_types:
  - key: ticket
    label: Ticket
    workflow: ops
"""


@pytest.fixture
def setup(app, make_user):
    from app.services import projects
    from app.services.webhooks import secrets

    owner = make_user("owner@example.com", "owner")
    dev = make_user("dev@example.com", "member")
    lead = make_user("lead@example.com", "member")
    project = projects.create_project(owner, "OPS", "Operations", "", "kanban")
    save_override(owner, project, "workflows/ops.yaml", WORKFLOW)
    save_override(owner, project, "issue_types.yaml", TICKET)
    receiver = Receiver()
    app.config["KIKET_WEBHOOK_ALLOW_PRIVATE"] = True
    secrets.set_secret(project.id, "HOOK_URL", receiver.url, owner.id)
    secrets.set_secret(project.id, "WEBHOOK_SECRET", "s3cret-signing", owner.id)
    yield owner, dev, lead, project, receiver
    receiver.close()


def run_webhooks(app):
    from rq import SimpleWorker

    from app.queue import get_queue

    SimpleWorker([get_queue("webhooks")], connection=app.extensions["redis"]).work(burst=True)


def test_hooks_run_in_order_after_commit_and_core_actions_apply(app, setup):
    from app.extensions import db
    from app.models import Comment, EmailOutbox, Issue, Notification, Watcher
    from app.queue import get_queue

    owner, dev, lead, project, receiver = setup
    issue = make_issue(project, "Crash on upload", issue_type="ticket", reporter=owner,
                       custom_fields={"severity": "low"})
    run_default(app)
    db.session.expire_all()
    assert db.session.get(Issue, issue.id).labels == ["fresh"]
    created = hook_runs(project.id, issue.id)
    assert [a["status"] for a in created[0].data["actions"]] == ["applied", "skipped"]
    assert created[0].data["actions"][1]["detail"] == "not supported"

    move(db.session.get(Issue, issue.id), "triaging", owner)
    # Nothing ran yet: hooks are asynchronous, after the commit.
    assert db.session.get(Issue, issue.id).priority is None
    run_default(app)
    run_webhooks(app)
    db.session.expire_all()
    issue = db.session.get(Issue, issue.id)

    # Order: on_exit, transition actions, on_enter; the enter webhook saw the transition's set_field.
    assert [r["path"] for r in receiver.requests] == ["/exit", "/transition", "/enter"]
    assert receiver.requests[0]["body"] == {"step": "exit", "issue": issue.id}
    assert receiver.requests[2]["body"]["priority"] == "high"
    assert receiver.requests[0]["headers"]["X-Kiket-Signature"].startswith("sha256=")

    run = hook_runs(project.id, issue.id)[1]
    phases = [(a["phase"], a["type"], a["status"]) for a in run.data["actions"]]
    assert phases[:5] == [("on_exit", "webhook", "applied"), ("transition", "webhook", "applied"),
                          ("transition", "set_field", "applied"), ("transition", "set_field", "applied"),
                          ("transition", "add_comment", "applied")]
    assert phases[-1] == ("on_enter", "notify", "skipped")
    assert all(status == "applied" for _, _, status in phases[:-1]), phases

    assert issue.priority == "high" and issue.custom_fields["severity"] == "critical"
    assert issue.assignee_id == dev.id
    assert "fresh" not in issue.labels and "escalated" in issue.labels
    comment = db.session.scalar(select(Comment).where(Comment.issue_id == issue.id))
    assert comment.author_id is None and comment.body == "Triage started by owner@example.com"
    assert db.session.scalar(select(Watcher).where(Watcher.issue_id == issue.id, Watcher.user_id == lead.id))
    messages = {(n.user_id, n.message) for n in db.session.scalars(select(Notification))}
    assert (owner.id, "Triage started for Crash on upload") in messages
    assert (lead.id, f"Look at {issue.key}") in messages
    assert any(uid == lead.id and m.startswith("Approval requested") for uid, m in messages)
    follow_up = db.session.scalar(select(Issue).where(Issue.title == f"Follow up {issue.key}"))
    assert follow_up is not None and follow_up.issue_type == "ticket"
    assert db.session.scalar(select(EmailOutbox)) is None
    scheduled = get_queue("default").scheduled_job_registry.get_job_ids()
    assert any(job_id.startswith(f"reminder-{issue.id}-") for job_id in scheduled)


def test_a_failing_action_is_recorded_and_never_undoes_the_transition(app, setup, monkeypatch):
    from app.extensions import db
    from app.models import Issue
    from app.services.runtime.effects.actions import HANDLERS

    owner, dev, lead, project, receiver = setup
    issue = make_issue(project, "Flaky", issue_type="ticket", reporter=owner)
    run_default(app)

    def broken(*args, **kwargs):
        raise RuntimeError("notification store is down")

    monkeypatch.setitem(HANDLERS, "notify", broken)
    move(db.session.get(Issue, issue.id), "triaging", owner)
    run_default(app)
    db.session.expire_all()
    issue = db.session.get(Issue, issue.id)
    assert issue.state == "triaging"
    actions = hook_runs(project.id, issue.id)[-1].data["actions"]
    notify = [a for a in actions if a["type"] == "notify" and a["status"] != "skipped"]
    assert notify[0]["status"] == "failed" and "notification store is down" in notify[0]["detail"]
    # The actions after the failing one still ran.
    assert issue.assignee_id == dev.id and "escalated" in issue.labels


def test_missing_secret_fails_the_webhook_before_any_request(app, setup):
    from app.extensions import db
    from app.models import Issue, WebhookDelivery
    from app.services.webhooks import secrets

    owner, dev, lead, project, receiver = setup
    secrets.delete_secret(project.id, "HOOK_URL", owner.id)
    issue = make_issue(project, "No secret", issue_type="ticket", reporter=owner)
    move(issue, "triaging", owner)
    run_default(app)
    run_webhooks(app)
    actions = hook_runs(project.id, issue.id)[-1].data["actions"]
    assert actions[0]["status"] == "failed" and "HOOK_URL" in actions[0]["detail"]
    assert receiver.requests == [] and db.session.scalar(select(WebhookDelivery)) is None
    assert db.session.get(Issue, issue.id).state == "triaging"

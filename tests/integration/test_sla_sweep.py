"""SLA timers per state entry with a controlled clock: warning and breach fire once each, business hours
respected, their hooks and automations run; rules are re-selected when fields change."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from tests.support.issue_events import hook_runs, make_issue, move, run_default, save_override

WORKFLOW = """model_version: "1.0"
workflow:
  id: desk
  name: Service desk
  version: 1.0.0
states:
  new:
    type: initial
    category: pending
    metadata: {label: New}
    sla:
      - condition: {field: custom_fields.severity, operator: "=", value: critical}
        warning: 1h
        breach: 2h
      - default: true
        warning: 10h
        breach: 20h
  waiting:
    type: active
    category: active
    metadata: {label: Waiting}
    sla:
      warning: 2h
      breach: 4h
      business_hours: true
      on_warning:
        - action: notify
          recipients: {fields: [reporter]}
          message: "SLA warning on ${issue.key}: ${sla.time_remaining} left"
      on_breach:
        - action: add_label
          label: policy-breach
    on_sla_warning:
      - action: add_label
        label: sla-warning
    on_sla_breach:
      - action: add_label
        label: sla-breach
  done:
    type: final
    category: completed
    metadata: {label: Done}
transitions:
  - {from: new, to: waiting, name: Wait}
  - {from: waiting, to: done, name: Finish}
"""

TYPES = """model_version: "1.0"
issue_types:
  - key: request
    label: Request
    workflow: desk
    fields:
      - {key: severity, label: Severity, type: enum, options: [critical, normal]}
"""

AUTOMATIONS = """model_version: "1.0"
automations:
  - id: breach-comment
    name: Comment on breach
    trigger:
      event: sla.breached
      conditions:
        - field: issue_type
          equals: request
    actions:
      - type: add_comment
        body: "Breached after ${sla.elapsed} (${sla.threshold})"
"""

# 2026-11-27 is a Friday; the default calendar is Mon–Fri 09:00–17:00 UTC.
FRIDAY_4PM = datetime(2026, 11, 27, 16, 0, tzinfo=timezone.utc)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc)


@pytest.fixture
def desk(app, make_user):
    from app.services import projects

    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, "DESK", "Desk", "", "kanban")
    save_override(owner, project, "workflows/desk.yaml", WORKFLOW)
    save_override(owner, project, "issue_types.yaml", TYPES)
    save_override(owner, project, "automations/sla.yaml", AUTOMATIONS)
    return owner, project


def timer_of(issue_id, state):
    from app.extensions import db
    from app.models import SlaTimer

    db.session.expire_all()
    return db.session.scalar(select(SlaTimer).where(SlaTimer.issue_id == issue_id, SlaTimer.state == state))


def test_warning_and_breach_fire_once_each_in_business_hours_and_run_their_hooks(app, desk):
    from app.extensions import db
    from app.models import AutomationRun, Comment, Issue, Notification
    from app.services.runtime import sla

    owner, project = desk
    issue = make_issue(project, "Printer on fire", issue_type="request", reporter=owner, state="waiting",
                       entered_at=FRIDAY_4PM)
    run_default(app)
    timer = timer_of(issue.id, "waiting")
    # One business hour on Friday, then Monday from 09:00: warning at 10:00, breach at 12:00.
    assert timer.warning_at == at(30, 10) and timer.breach_at == at(30, 12)

    # Friday evening: three calendar hours, one business hour — nothing is due.
    assert sla.sweep(at(27, 19)).sla_events == []
    assert sla.sweep(at(29, 23)).sla_events == []

    assert sla.sweep(at(30, 10, 30)).sla_events == [(issue.key, "sla.warning")]
    assert sla.sweep(at(30, 11)).sla_events == []
    run_default(app)
    db.session.expire_all()
    assert db.session.get(Issue, issue.id).labels == ["sla-warning"]
    note = db.session.scalar(select(Notification).where(Notification.user_id == owner.id))
    assert note.message == f"SLA warning on {issue.key}: 1h 30m left"

    assert sla.sweep(at(30, 12, 5)).sla_events == [(issue.key, "sla.breach")]
    assert sla.sweep(at(30, 13)).sla_events == []
    assert sla.sweep(at(30, 16)).sla_events == []
    run_default(app)
    db.session.expire_all()
    issue = db.session.get(Issue, issue.id)
    # State-level on_sla_breach first, then the policy's on_breach.
    assert issue.labels == ["sla-warning", "sla-breach", "policy-breach"]
    timer = timer_of(issue.id, "waiting")
    assert timer.warning_fired_at == at(30, 10, 30) and timer.breach_fired_at == at(30, 12, 5)
    kinds = [run.data["event"] for run in hook_runs(project.id, issue.id)]
    assert kinds.count("sla.warning") == 1 and kinds.count("sla.breach") == 1

    run = db.session.scalar(select(AutomationRun).where(AutomationRun.automation_id == "breach-comment"))
    assert run.outcome == "applied" and run.trigger_event == "sla.breach" and run.duration_ms >= 0
    comment = db.session.scalar(select(Comment).where(Comment.issue_id == issue.id))
    assert comment.body == "Breached after 4h 5m (4h)"


def test_leaving_the_state_stops_the_timer_and_a_new_entry_starts_one(app, desk):
    from app.extensions import db
    from app.models import Issue
    from app.services.runtime import sla

    owner, project = desk
    issue = make_issue(project, "Short one", issue_type="request", reporter=owner, entered_at=at(27, 9))
    run_default(app)
    assert timer_of(issue.id, "new").breach_at == at(28, 5)  # calendar time: 20h
    move(db.session.get(Issue, issue.id), "waiting", owner, at=at(27, 10))
    run_default(app)
    assert timer_of(issue.id, "new").stopped_at is not None
    assert timer_of(issue.id, "waiting").warning_at == at(27, 12)
    move(db.session.get(Issue, issue.id), "done", owner, at=at(27, 11))
    run_default(app)
    assert timer_of(issue.id, "waiting").stopped_at is not None
    assert sla.sweep(at(30, 16)).sla_events == []


def test_rules_are_reselected_when_fields_change(app, desk):
    from app.extensions import db
    from app.models import Issue
    from app.services.runtime import issue_page, issues

    owner, project = desk
    issue = make_issue(project, "Escalating", issue_type="request", reporter=owner, entered_at=at(27, 9))
    run_default(app)
    assert timer_of(issue.id, "new").breach_at == at(28, 5)
    issue = db.session.get(Issue, issue.id)
    issues.update_issue(issue.id, owner, issue.lock_version, custom_fields={"severity": "critical"})
    run_default(app)
    timer = timer_of(issue.id, "new")
    assert timer.warning_at == at(27, 10) and timer.breach_at == at(27, 11) and timer.rule_key == "rule-0"
    assert issue_page.issue_view(owner, db.session.get(Issue, issue.id)) is not None


def test_the_sweep_job_reschedules_itself_every_five_minutes(app, desk):
    from app.queue import get_queue
    from app.services.runtime import sla
    from jobs import default

    now = at(27, 16, 2)
    job_id = sla.schedule_sweep(now)
    assert job_id == f"sweep-{int(at(27, 16, 5).timestamp())}"
    assert sla.schedule_sweep(now) == job_id  # idempotent: every worker names the same slot
    registry = get_queue("default").scheduled_job_registry
    assert registry.get_job_ids() == [job_id]
    default.sweep()  # runs now: schedules the slot after the current time, then sweeps
    assert len(registry.get_job_ids()) == 2


def test_a_reminder_rechecks_its_conditions_when_due(app, desk):
    from app.extensions import db
    from app.kiket.conditions import Compare
    from app.models import Issue, Notification
    from app.services.runtime.effects import reminders

    owner, project = desk
    issue = make_issue(project, "Remind me", issue_type="request", reporter=owner, assignee=owner, emit=False)
    still_new = Compare(path="status", op="eq", value="new")
    assert reminders.send_reminder(issue.id, "new", 1, "Still new", {"user": "assignee"}, None, []) == "sent to 1"
    move(db.session.get(Issue, issue.id), "waiting", owner)
    outcome = reminders.send_reminder(issue.id, "new", 1, "Still new", {"user": "assignee"}, still_new, [])
    assert outcome == "skipped: conditions no longer hold"
    messages = [n.message for n in db.session.scalars(select(Notification).where(Notification.user_id == owner.id))]
    assert messages.count("Still new") == 1

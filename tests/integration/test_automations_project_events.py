"""Issue-free automation events (spec §10.2): `workflow.updated` (alias `config.synced`) after a revision is
activated, and `schedule.cron` from the 5-minute sweep, once per (automation, minute), in the project timezone."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from tests.support.issue_events import run_default, save_override
from tests.support.sync_repos import bare_remote, file_url, push_change, run_worker

SYNCED = """model_version: "1.0"
automations:
  - id: tell-the-owner
    name: Tell the owner
    trigger: config.synced
    actions:
      - type: notify
        recipients: {users: [owner@example.com]}
        message: "Workflows of {{project.key}} updated to {{event.revision.commit_sha}}"
      - type: add_label
        label: never
"""

EXTRA = """model_version: "1.0"
automations:
  - id: extra
    name: Extra
    trigger: issue.created
    actions:
      - type: add_label
        label: extra
"""

CRON = """model_version: "1.0"
automations:
  - id: standup
    name: Stand-up reminder
    trigger: {event: schedule.cron, cron: "0 9 * * MON-FRI"}
    actions:
      - type: notify
        recipients: {users: [owner@example.com]}
        message: "Stand-up at {{event.schedule.at}}"
  - id: quarter-hours
    name: Every quarter hour
    trigger: {cron: "*/15 * * * *"}
    actions:
      - type: create_issue
        issue_type: task
        title: "Quarter-hour check"
"""

PROJECT = """model_version: "1.0"
project:
  business_hours: {timezone: Europe/Berlin}
"""


def runs(automation_id):
    from app.extensions import db
    from app.models import AutomationRun

    db.session.expire_all()
    return list(db.session.scalars(select(AutomationRun).where(AutomationRun.automation_id == automation_id)
                                   .order_by(AutomationRun.id)))


def messages(user):
    from app.extensions import db
    from app.models import Notification

    return [n.message for n in db.session.scalars(select(Notification).where(Notification.user_id == user.id)
                                                  .order_by(Notification.id))]


def test_workflow_updated_runs_after_each_activation(app, make_user, tmp_path):
    from app.extensions import db
    from app.models import ConfigRevision, SyncRun
    from app.services import projects
    from app.services.sync import repositories, revisions, runs as sync_runs

    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, "SYN", "Synced", "", "kanban")
    save_override(owner, project, "automations/synced.yaml", SYNCED)
    remote = bare_remote(tmp_path, "scrum")
    repository, _ = repositories.add_repository(project, file_url(remote), actor=owner)
    run = sync_runs.request_sync(repository.id, trigger="ui")
    run_worker(app)
    db.session.expire_all()
    revision = db.session.get(ConfigRevision, db.session.get(SyncRun, run.id).revision_id)
    assert revision.status == "active"
    run_default(app)

    [first] = runs("tell-the-owner")
    assert first.issue_id is None and first.trigger_event == "workflow.updated"
    assert first.input["event"]["revision"]["commit_sha"] == revision.commit_sha
    # Issue-free: the notify is performed; an action that needs an issue is skipped, saying why.
    assert [(a["type"], a["status"]) for a in first.input["actions"]] == [("notify", "applied"),
                                                                         ("add_label", "skipped")]
    assert first.input["actions"][1]["detail"] == "needs an issue; this event has none"
    assert first.outcome == "applied"
    assert messages(owner)[-1] == f"Workflows of SYN updated to {revision.commit_sha}"

    # The same revision enqueued again runs nothing twice; a new activation (a rollback) runs again.
    from app.services.runtime import events

    events.workflow_updated(project.id, revision.id)
    run_default(app)
    assert len(runs("tell-the-owner")) == 1
    push_change(remote, "main", ".kiket/automations/extra.yaml", EXTRA, "One more automation")
    second = sync_runs.request_sync(repository.id, trigger="ui")
    run_worker(app)
    db.session.expire_all()
    newer = db.session.get(ConfigRevision, db.session.get(SyncRun, second.id).revision_id)
    assert newer.status == "active"
    run_default(app)
    assert [r.input["event"]["revision"]["commit_sha"] for r in runs("tell-the-owner")] == [
        revision.commit_sha, newer.commit_sha]

    # A rollback activates the older revision again: the automation runs once more.
    revisions.rollback(project, revision.id, owner)
    run_default(app)
    assert len(runs("tell-the-owner")) == 3


def cron_project(make_user):
    from app.services import projects

    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, "CRN", "Cron", "", "kanban")
    save_override(owner, project, "project.yaml", PROJECT)
    save_override(owner, project, "automations/cron.yaml", CRON)
    return owner, project


def at(day, hour, minute):
    return datetime(2027, 3, day, hour, minute, tzinfo=timezone.utc)


def test_the_sweep_runs_cron_automations_once_per_minute_in_the_project_timezone(app, make_user):
    from app.extensions import db
    from app.models import Issue
    from app.services.runtime import sla

    owner, project = cron_project(make_user)
    # Monday 1 March 2027: 09:00 in Berlin (CET, UTC+1) is 08:00 UTC.
    first = sla.sweep(at(1, 7, 45))  # no previous sweep: the window is the last 5 minutes
    assert first.cron_runs == [("CRN", "quarter-hours", "2027-03-01T08:45:00+01:00")]
    second = sla.sweep(at(1, 8, 0))
    assert sorted(r[1] for r in second.cron_runs) == ["quarter-hours", "standup"]
    assert [r[2] for r in second.cron_runs if r[1] == "standup"] == ["2027-03-01T09:00:00+01:00"]
    # The same window again (a racing or repeated sweep) fires nothing twice.
    assert sla.sweep(at(1, 8, 0)).cron_runs == []
    assert sla.sweep(at(1, 8, 10)).cron_runs == []
    assert sla.sweep(at(1, 8, 15)).cron_runs == [("CRN", "quarter-hours", "2027-03-01T09:15:00+01:00")]
    [standup] = runs("standup")
    assert standup.issue_id is None and standup.trigger_event == "schedule.cron" and standup.outcome == "applied"
    assert messages(owner) == ["Stand-up at 2027-03-01T09:00:00+01:00"]
    created = list(db.session.scalars(select(Issue.title).where(Issue.project_id == project.id)))
    assert created == ["Quarter-hour check"] * 3


def test_the_cron_window_is_the_time_since_the_previous_sweep(app, make_user):
    from app.services.runtime.effects import automations

    cron_project(make_user)
    # A sweep late by an hour catches up the minutes it missed, once each.
    got = automations.sweep_cron(at(1, 9, 0), since=at(1, 7, 59))
    assert sorted((r[1], r[2][11:16]) for r in got) == [
        ("quarter-hours", "09:00"), ("quarter-hours", "09:15"), ("quarter-hours", "09:30"),
        ("quarter-hours", "09:45"), ("quarter-hours", "10:00"), ("standup", "09:00")]
    # The next sweep starts where that one ended (kept in Redis).
    assert [r[2][11:16] for r in automations.sweep_cron(at(1, 9, 15))] == ["10:15"]
    # Saturday: no stand-up.
    assert [r[1] for r in automations.sweep_cron(at(6, 8, 0), since=at(6, 7, 59))] == ["quarter-hours"]


def test_a_gated_cron_automation_waits_for_approval(app, make_user):
    from app.services.runtime.effects import automations, gated_runs

    owner, project = cron_project(make_user)
    save_override(owner, project, "automations/cron.yaml", CRON.replace(
        "    name: Stand-up reminder\n", "    name: Stand-up reminder\n    requires_approval: true\n"))
    automations.sweep_cron(at(1, 8, 0), since=at(1, 7, 59))
    [run] = runs("standup")
    assert run.outcome == "awaiting_approval" and run.issue_id is None
    assert "Automation 'Stand-up reminder' awaits approval on CRN" in messages(owner)
    decided = gated_runs.decide_run(run.id, owner, approve=True)
    assert decided.outcome == "applied (approved by owner@example.com)"
    assert "Stand-up at 2027-03-01T09:00:00+01:00" in messages(owner)

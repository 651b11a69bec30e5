"""Automations (spec §10): fixture recipes and automations fire on their events with their conditions;
time-based ones through the sweep once per state entry; loop protection; the per-project rate limit;
every run recorded with input, outcome and duration."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from tests.support.issue_events import make_issue, move, run_default, save_override
from tests.support.fixture_projects import synced_project


def runs(automation_id=None):
    from app.extensions import db
    from app.models import AutomationRun

    db.session.expire_all()
    query = select(AutomationRun).order_by(AutomationRun.id)
    if automation_id:
        query = query.where(AutomationRun.automation_id == automation_id)
    return list(db.session.scalars(query))


def test_scrum_silent_issue_recipe_fires_once_per_state_entry_through_the_sweep(app, make_user, tmp_path):
    from app.extensions import db
    from app.models import Issue
    from app.services.runtime import sla

    owner = make_user("owner@example.com", "owner")
    project, _, _ = synced_project(app, owner, tmp_path, "scrum", "SCR")
    issue = make_issue(project, "Quiet story", issue_type="UserStory", state="in_progress", reporter=owner,
                       assignee=owner)
    run_default(app)
    db.session.expire_all()
    quiet_since = db.session.get(Issue, issue.id).updated_at

    def mine(result):
        # The fixture's seed issues are quiet too; only this issue matters here.
        return [r for r in result.automation_runs if r[0] == issue.key]

    assert mine(sla.sweep(quiet_since + timedelta(hours=47))) == []
    assert mine(sla.sweep(quiet_since + timedelta(hours=49))) == [(issue.key, "silent_issue_follow_up")]
    assert mine(sla.sweep(quiet_since + timedelta(hours=60))) == []

    run = next(r for r in runs("silent_issue_follow_up") if r.issue_id == issue.id)
    assert run.outcome == "applied" and run.input["via"] == "sweep"
    statuses = [(a["type"], a["status"]) for a in run.input["actions"]]
    # teams: is a stub channel; the assign keeps the current assignee.
    assert statuses == [("notify", "skipped"), ("assign", "applied")]
    assert run.input["actions"][0]["detail"] == "not supported"

    # A new entry into the state may fire it again.
    move(db.session.get(Issue, issue.id), "review", owner, at=quiet_since + timedelta(hours=61))
    run_default(app)
    assert mine(sla.sweep(quiet_since + timedelta(hours=61 + 49))) == [(issue.key, "silent_issue_follow_up")]


def test_scrum_recipes_that_require_approval_wait_for_an_approval(app, make_user, tmp_path):
    from app.extensions import db
    from app.models import Issue
    from app.services.runtime import issues

    owner = make_user("owner@example.com", "owner")
    project, _, _ = synced_project(app, owner, tmp_path, "scrum", "SCR")
    issue = make_issue(project, "Risky", issue_type="Task", state="in_progress", reporter=owner, priority="high")
    run_default(app)
    issue = db.session.get(Issue, issue.id)
    # Overdue since yesterday, so hours_until_due <= 8 holds whatever the time of day.
    issues.update_issue(issue.id, owner, issue.lock_version, due_date=date.today() - timedelta(days=1))
    run_default(app)
    run = next(r for r in runs("sla_breach_escalation") if r.issue_id == issue.id)
    assert run.trigger_event == "issue.updated" and run.outcome == "awaiting_approval"
    assert [a["type"] for a in run.input["planned"]] == ["notify", "request_approval"]
    assert "actions" not in run.input  # nothing was performed
    assert [r for r in runs("high_risk_issue_alert") if r.issue_id == issue.id] == []  # its condition (ai_risk_score) does not hold


def test_engineering_breach_automation_and_the_chain_it_causes(app, make_user, tmp_path):
    from app.extensions import db
    from app.models import Issue
    from app.services.runtime import sla

    owner = make_user("owner@example.com", "owner")
    project, _, _ = synced_project(app, owner, tmp_path, "engineering", "ENG")
    issue = make_issue(project, "Leak", issue_type="bug", reporter=owner, assignee=owner,
                       custom_fields={"severity": "critical"})
    move(db.session.get(Issue, issue.id), "triaging", owner)
    run_default(app)
    db.session.expire_all()
    entered = db.session.get(Issue, issue.id).state_entered_at
    fired = [e for e in sla.sweep(entered + timedelta(hours=5)).sla_events if e[0] == issue.key]
    assert fired == [(issue.key, "sla.warning"), (issue.key, "sla.breach")]
    run_default(app)
    db.session.expire_all()
    issue = db.session.get(Issue, issue.id)
    assert "sla-breached" in issue.labels and issue.custom_fields["escalated"] is True
    breach = next(r for r in runs("bug-sla-breach") if r.issue_id == issue.id)
    assert breach.outcome == "applied" and breach.depth == 0 and breach.trigger_event == "sla.breach"
    # Its set_field is an issue.updated caused by the automation: critical-bug-alert reacts at depth 1,
    # and bug-sla-breach itself never reacts to its own change.
    alert = [r for r in runs("critical-bug-alert") if r.issue_id == issue.id]
    assert alert and all(r.depth == 1 for r in alert) and alert[0].input["chain"] == ["bug-sla-breach"]
    # bug-triage on creation: its ai_action stubs are recorded as skipped.
    triage = next(r for r in runs("bug-triage") if r.issue_id == issue.id)
    assert {a["status"] for a in triage.input["actions"]} == {"skipped"}


LOOPING = """model_version: "1.0"
automations:
""" + "".join(f"""  - id: bump-{n}
    name: Bump {n}
    trigger: issue.updated
    actions:
      - type: set_field
        field: custom_fields.bumps_{n}
        value: "{{{{issue.custom_fields.bumps_{n}}}}}x"
""" for n in "abcd")


def test_loop_protection_stops_self_reaction_and_chains_deeper_than_three(app, make_user):
    from app.extensions import db
    from app.models import Issue
    from app.services import projects
    from app.services.runtime import events

    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, "LOOP", "Loop", "", "kanban")
    save_override(owner, project, "automations/looping.yaml", LOOPING)
    issue = make_issue(project, "Spinning", issue_type="task", reporter=owner, emit=False)
    events.issue_updated(issue.id, {"title": ("a", "Spinning")}, owner.id)
    db.session.commit()
    for _ in range(6):
        run_default(app)
    all_runs = runs()
    applied = [r for r in all_runs if r.outcome == "applied"]
    stopped = [r.outcome for r in all_runs if r.outcome.startswith("loop_stopped")]
    assert max(r.depth for r in applied) == 2
    assert any("never react to their own actions" in o for o in stopped)
    assert any("3 automations deep" in o for o in stopped)
    db.session.expire_all()
    fields = db.session.get(Issue, issue.id).custom_fields
    assert set(fields) == {"bumps_a", "bumps_b", "bumps_c", "bumps_d"}


COMMENTS = """model_version: "1.0"
automations:
  - id: on-comment
    name: Label commented issues
    trigger: comment.created
    actions:
      - type: add_label
        label: discussed
"""


def test_rate_limit_per_project_and_action_type(app, make_user):
    from app.services import projects
    from app.services.runtime import transitions

    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, "RATE", "Rate", "", "kanban")
    save_override(owner, project, "automations/comments.yaml", COMMENTS)
    app.config["KIKET_AUTOMATION_RATE_LIMIT"] = 2
    issue = make_issue(project, "Chatty", issue_type="task", reporter=owner, emit=False)
    for n in range(3):
        transitions.add_comment(issue.id, owner, f"comment {n}")
    run_default(app)
    outcomes = [r.outcome for r in runs("on-comment")]
    assert outcomes == ["applied", "applied", "rate_limited"]
    assert all(r.input["event"]["comment"]["body"].startswith("comment") for r in runs("on-comment"))

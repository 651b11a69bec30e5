"""Automation matching (§10) on the fixtures' real recipes and automations, and the safety rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from app.kiket.runtime.automations import (
    RateWindow, evaluate_automations, match_automations, needs_sweep, sweep_automations, sweep_key,
)
from app.kiket.runtime.events import Event, canonical_event, transition_event
from app.kiket.runtime.snapshot import Actor, IssueSnapshot

from .conftest import NOW

ALICE = Actor("alice", frozenset({"member"}), frozenset({"issue.*"}))


def scrum_issue(**kw) -> IssueSnapshot:
    base = dict(id=3, key="SCR-3", title="Story", status="in_progress", issue_type="UserStory", workflow="scrum",
                priority="medium", created_at=NOW - timedelta(days=10), updated_at=NOW - timedelta(hours=1),
                state_entered_at=NOW - timedelta(days=3), assignee="alice")
    base.update(kw)
    return IssueSnapshot(**base)


def ids(automations) -> list[str]:
    return [a.id for a in automations]


@pytest.mark.parametrize("name, canonical", [
    ("sla.breached", "sla.breach"), ("sla_breach", "sla.breach"), ("sla_warning", "sla.warning"),
    ("comment.created", "issue.commented"), ("config.synced", "workflow.updated"), ("issue.created", "issue.created"),
    ("nope", None),
])
def test_event_aliases(name, canonical):
    assert canonical_event(name) == canonical


def test_unknown_event_is_rejected():
    with pytest.raises(ValueError):
        Event("issue.exploded")


@pytest.mark.parametrize("changes, expected", [
    ({"updated_at": NOW - timedelta(hours=1)}, []),
    ({"updated_at": NOW - timedelta(hours=49)}, ["silent_issue_follow_up"]),
    ({"updated_at": NOW - timedelta(hours=49), "status": "review"}, ["silent_issue_follow_up"]),
    ({"updated_at": NOW - timedelta(hours=49), "status": "sprint_backlog"}, []),
    ({"custom_fields": {"ai_risk_score": 0.8}}, ["high_risk_issue_alert"]),
    ({"custom_fields": {"ai_risk_score": "0.7"}}, ["high_risk_issue_alert"]),
    ({"custom_fields": {"ai_risk_score": 0.2}}, []),
    ({"priority": "High", "due_date": NOW + timedelta(hours=6)}, ["sla_breach_escalation"]),
    ({"priority": "high", "due_date": NOW + timedelta(hours=9)}, []),
    ({"priority": "low", "due_date": NOW + timedelta(hours=1)}, []),
    ({"priority": "critical", "due_date": NOW.date(), "status": "review"}, []),
    ({"priority": "critical", "due_date": NOW.date() - timedelta(days=1), "status": "review"},
     ["sla_breach_escalation"]),
])
def test_scrum_recipes_on_issue_updated(revision, changes, expected):
    snap = scrum_issue(**changes)
    event = Event("issue.updated", ALICE, {"changes": {"title": ["a", "b"]}})
    assert ids(match_automations(revision("scrum"), event, snap, NOW)) == expected


def test_recipes_only_see_issues_of_their_workflow(revision):
    snap = scrum_issue(workflow="other", custom_fields={"ai_risk_score": 0.9})
    assert match_automations(revision("scrum"), Event("issue.updated", ALICE), snap, NOW) == ()


def test_recipes_ignore_other_events(revision):
    snap = scrum_issue(custom_fields={"ai_risk_score": 0.9})
    assert match_automations(revision("scrum"), Event("issue.created", ALICE), snap, NOW) == ()


def test_disabled_automations_are_skipped(revision):
    rev = revision("scrum")
    disabled = {k: replace(a, enabled=False) for k, a in rev.automations.items()}
    snap = scrum_issue(custom_fields={"ai_risk_score": 0.9})
    assert match_automations(replace(rev, automations=disabled), Event("issue.updated", ALICE), snap, NOW) == ()


@pytest.mark.parametrize("recipe, sweep", [("silent_issue_follow_up", True), ("sla_breach_escalation", True),
                                           ("high_risk_issue_alert", False)])
def test_needs_sweep(revision, recipe, sweep):
    for name in ("scrum", "kanban"):
        assert needs_sweep(revision(name).automations[recipe]) is sweep


def test_sweep_fires_once_per_state_entry(revision):
    rev = revision("scrum")
    snap = scrum_issue(updated_at=NOW - timedelta(hours=50))
    due = sweep_automations(rev, snap, NOW, set())
    assert ids(due) == ["silent_issue_follow_up"]
    fired = {sweep_key(a, snap) for a in due}
    assert sweep_automations(rev, snap, NOW + timedelta(minutes=5), fired) == ()
    reentered = replace(snap, status="review", state_entered_at=NOW)
    assert ids(sweep_automations(rev, reentered, NOW + timedelta(minutes=5), fired)) == ["silent_issue_follow_up"]


@pytest.mark.parametrize("severity, matched", [("P1", True), ("p1", True), ("p2", True), ("P3", False),
                                               (None, False)])
def test_engineering_incident_commander_matches_case_insensitively(revision, severity, matched):
    snap = IssueSnapshot(id=9, status="detected", issue_type="incident", workflow="incident",
                         custom_fields={"severity": severity}, created_at=NOW)
    got = ids(match_automations(revision("engineering"), Event("issue.created", ALICE), snap, NOW))
    assert ("incident-commander" in got) is matched


@pytest.mark.parametrize("event_name", ["sla.breach", "sla.breached", "sla_breach"])
def test_legal_breach_automation_through_aliases(revision, event_name):
    snap = IssueSnapshot(id=4, status="processing", issue_type="gdpr_request", workflow="gdpr", created_at=NOW)
    event = Event(event_name, None, {"sla": {"state": "processing", "time_remaining": "0m"}})
    assert ids(match_automations(revision("legal"), event, snap, NOW)) == ["gdpr-sla-breach"]


def test_legal_completion_audit_on_transition_to_completed(revision):
    snap = IssueSnapshot(id=4, status="completed", issue_type="gdpr_request", workflow="gdpr", created_at=NOW)
    events = transition_event("legal_review", "completed", "Approve & Complete", ALICE, final=True)
    assert [e.name for e in events] == ["issue.transitioned", "issue.closed"]
    assert ids(match_automations(revision("legal"), events[0], snap, NOW)) == ["gdpr-completion-audit"]
    assert match_automations(revision("legal"), events[1], snap, NOW) == ()
    other = transition_event("received", "rejected", "Reject Request", ALICE)[0]
    assert match_automations(revision("legal"), other, replace(snap, status="rejected"), NOW) == ()


def test_automations_never_react_to_their_own_actions(revision):
    rev = revision("legal")
    snap = IssueSnapshot(id=4, status="processing", issue_type="gdpr_request", workflow="gdpr", created_at=NOW)
    parent = Event("sla.breach", None, {})
    own = parent.caused_by("gdpr-sla-breach", "sla.breach")
    run, held = evaluate_automations(rev, own, snap, NOW)
    assert run == () and [h.reason for h in held] == ["automations never react to their own actions"]
    by_actor = Event("sla.breach", Actor("gdpr-sla-breach", is_automation=True))
    assert match_automations(rev, by_actor, snap, NOW) == ()
    other = Event("sla.breach", None, {}, chain=("some-other",))
    assert ids(match_automations(rev, other, snap, NOW)) == ["gdpr-sla-breach"]


@pytest.mark.parametrize("depth, runs", [(0, True), (1, True), (2, True), (3, False), (5, False)])
def test_causal_chain_stops_at_depth_three(revision, depth, runs):
    snap = scrum_issue(custom_fields={"ai_risk_score": 0.9})
    event = Event("issue.updated", ALICE)
    for step in range(depth):
        event = event.caused_by(f"auto-{step}", "issue.updated")
    assert event.depth == depth
    run, held = evaluate_automations(revision("scrum"), event, snap, NOW)
    assert bool(run) is runs
    if not runs:
        assert "deep" in held[0].reason


def test_issue_free_events_only_reach_project_automations(revision):
    assert match_automations(revision("scrum"), Event("workflow.updated", None, {"revision": {"commit_sha": "a"}}),
                             None, NOW) == ()
    assert match_automations(revision("scrum"), Event("issue.updated", ALICE), None, NOW) == ()


def test_rate_window_allows_sixty_runs_a_minute():
    window = RateWindow()
    for second in range(60):
        ok, window = window.admit("ENG", "notify", NOW + timedelta(seconds=second * 0.5))
        assert ok
    ok, window = window.admit("ENG", "notify", NOW + timedelta(seconds=30))
    assert not ok and window.count("ENG", "notify", NOW + timedelta(seconds=30)) == 60
    ok, _ = window.admit("ENG", "webhook", NOW + timedelta(seconds=30))
    assert ok
    ok, _ = window.admit("LEGAL", "notify", NOW + timedelta(seconds=30))
    assert ok
    ok, window = window.admit("ENG", "notify", NOW + timedelta(seconds=61))
    assert ok


def test_rate_window_is_immutable():
    window = RateWindow(limit=1)
    _, after = window.admit("P", "notify", NOW)
    assert window.hits == {} and after.count("P", "notify", NOW) == 1


def test_event_fields_feed_conditions(revision):
    event = Event("issue.transitioned", ALICE, {"from": "resolved", "to": "postmortem", "transition": "Complete"})
    fields = event.fields()
    assert fields["from_status"] == "resolved" and fields["to_status"] == "postmortem"
    assert fields["actor"]["type"] == "user"
    snap = IssueSnapshot(id=1, status="postmortem", issue_type="incident", workflow="incident", created_at=NOW,
                         due_date=date(2026, 3, 3))
    assert ids(match_automations(revision("engineering"), event, snap, NOW)) == ["postmortem-reminder"]

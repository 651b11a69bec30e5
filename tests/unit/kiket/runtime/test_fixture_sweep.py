"""Every fixture revision through the whole runtime: no gate, clock, match or directive may raise."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.kiket.automations import EVENTS
from app.kiket.runtime.automations import match_automations, needs_sweep
from app.kiket.runtime.directives import Directory, build_directive
from app.kiket.runtime.effects import plan_creation_effects, plan_transition_effects
from app.kiket.runtime.events import Event
from app.kiket.runtime.sla import due_events, sla_clock
from app.kiket.runtime.snapshot import Actor, IssueSnapshot, template_context
from app.kiket.runtime.transitions import available_transitions, evaluate_request
from tests.support.fixture_repos import REVISIONS

from .conftest import NOW

ACTOR = Actor("alice", frozenset({"member"}), frozenset({"issue.*"}))


@pytest.mark.parametrize("name, branch", REVISIONS)
def test_every_state_and_transition_evaluates(revision, name, branch):
    rev = revision(name, branch)
    for workflow in rev.workflows.values():
        for state in workflow.states:
            snap = IssueSnapshot(id=1, status=state, workflow=workflow.id, created_at=NOW - timedelta(days=1),
                                 state_entered_at=NOW - timedelta(hours=5))
            for verdict in available_transitions(workflow, snap, actor=ACTOR, now=NOW,
                                                 calendar=rev.project.business_hours):
                assert verdict.transition is not None
                assert all(g.reasons for g in verdict.gates if not g.passed)
                again = evaluate_request(workflow, snap, actor=ACTOR, now=NOW, transition=verdict.transition.id)
                assert again.transition == verdict.transition
                assert plan_transition_effects(workflow, state, verdict.transition.target, verdict.transition) is not None
        assert plan_creation_effects(workflow) is not None


@pytest.mark.parametrize("name, branch", REVISIONS)
def test_every_sla_policy_clocks(revision, name, branch):
    rev = revision(name, branch)
    for workflow in rev.workflows.values():
        for state in workflow.states.values():
            if state.sla is None:
                continue
            fired: set[str] = set()
            for days in range(0, 60, 3):
                clock = sla_clock(state.sla, NOW, NOW + timedelta(days=days), rev.project.business_hours,
                                  context={"custom_fields": {"severity": "critical"}})
                fired.update(due_events(clock, fired))
            assert fired == {"sla.warning", "sla.breach"}


@pytest.mark.parametrize("name, branch", REVISIONS)
def test_every_action_becomes_a_directive(revision, name, branch):
    rev = revision(name, branch)
    actions = [a for wf in rev.workflows.values() for s in wf.states.values() for hook in s.hooks.values() for a in hook]
    actions += [a for wf in rev.workflows.values() for t in wf.transitions for a in t.actions]
    actions += [a for wf in rev.workflows.values() for s in wf.states.values() if s.sla
                for a in (*s.sla.on_warning, *s.sla.on_breach)]
    actions += [a for auto in rev.automations.values() for a in auto.actions]
    assert actions
    snap = IssueSnapshot(id=1, title="T", status="x", assignee="alice", reporter="rita", created_at=NOW)
    context = template_context(snap, NOW, actor=ACTOR)
    kinds = set()
    for action in actions:
        directive = build_directive(action, context, directory=Directory(), secrets={}, now=NOW)
        kinds.add(directive.kind)
        if action.support != "core":
            assert directive.kind == "skipped" and directive.reason == "not supported"
    assert kinds - {"skipped", "failed"}


@pytest.mark.parametrize("name, branch", REVISIONS)
def test_every_event_matches_without_error(revision, name, branch):
    rev = revision(name, branch)
    for workflow in rev.workflows.values():
        snap = IssueSnapshot(id=1, status=workflow.initial, workflow=workflow.id, created_at=NOW)
        for event in sorted(EVENTS):
            for automation in match_automations(rev, Event(event, ACTOR), snap, NOW):
                assert automation.enabled
    for automation in rev.automations.values():
        assert needs_sweep(automation) is automation.sweep

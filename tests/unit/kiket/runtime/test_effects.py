"""Hook order (§8.7), creation effects, and checklist reset/completion bookkeeping (§8.6)."""

from __future__ import annotations

from app.kiket.loader import load_revision
from app.kiket.runtime.effects import (
    checklist_complete_effects, checklist_completed, checklist_progress, checklists_to_reset, plan_creation_effects,
    plan_transition_effects, plan_transition_phases, tickable_checklists,
)
from app.kiket.runtime.transitions import find_transition

HOOKS = b"""
workflow: {id: hooks}
states:
  a:
    type: initial
    on_enter: [{action: add_label, label: entered-a}]
    on_exit: [{action: add_label, label: left-a}, {action: add_comment, body: bye}]
  b:
    type: active
    on_enter: [{action: add_label, label: entered-b}]
    checklist: {id: b_list, items: [{id: one, label: One, required: true}, Two]}
  c:
    type: final
    checklist: {id: c_list, required_mode: any, items: [X, Y]}
transitions:
  - {from: a, to: b, name: Go, actions: [{type: set_field, field: priority, value: high}]}
  - {from: b, to: c, name: Finish, conditions: [{checklist: c_list, complete: true}]}
  - {from: c, to: b, name: Back}
"""


def hooks_workflow():
    result = load_revision({".kiket/workflows/hooks.yaml": HOOKS}, include_bundled=False)
    assert result.ok
    return result.revision.workflows["hooks"]


def test_order_is_on_exit_then_transition_then_on_enter():
    wf = hooks_workflow()
    phases = plan_transition_phases(wf, "a", "b", find_transition(wf, "a", "Go"))
    assert [(p, a.type, a.params.get("label")) for p, a in phases] == [
        ("on_exit", "add_label", "left-a"), ("on_exit", "add_comment", None),
        ("transition", "set_field", None), ("on_enter", "add_label", "entered-b"),
    ]
    assert [a.type for a in plan_transition_effects(wf, "a", "b", find_transition(wf, "a", "Go"))] == [
        "add_label", "add_comment", "set_field", "add_label"]


def test_creation_runs_the_initial_on_enter(revision):
    assert [a.params["label"] for a in plan_creation_effects(hooks_workflow())] == ["entered-a"]
    bug = revision("engineering").workflows["bug"]
    assert [a.type for a in plan_creation_effects(bug)] == ["ai_analyze", "ai_analyze", "ai_suggest"]


def test_incident_resolution_effects(revision):
    wf = revision("engineering").workflows["incident"]
    actions = plan_transition_effects(wf, "mitigating", "resolved", find_transition(wf, "mitigating", "Fix Applied"))
    assert [a.type for a in actions] == ["notify", "webhook"]


def test_manual_ticks_reset_on_entering_the_owning_state():
    wf = hooks_workflow()
    assert checklists_to_reset(wf, "b", find_transition(wf, "a", "Go")) == ("b_list",)
    assert checklists_to_reset(wf, "b", find_transition(wf, "c", "Back")) == ("b_list",)
    # Arriving through a transition guarded by the checklist keeps its ticks.
    assert checklists_to_reset(wf, "c", find_transition(wf, "b", "Finish")) == ()
    assert checklists_to_reset(wf, "a", None) == ()


def test_postmortem_ticks_survive_the_guarded_move(revision):
    wf = revision("engineering").workflows["incident"]
    assert "postmortem_checklist" in tickable_checklists(wf, "resolved")
    assert checklists_to_reset(wf, "postmortem", find_transition(wf, "resolved", "Complete Postmortem")) == ()
    assert tickable_checklists(wf, "investigating") == ()


def test_legal_checklists_are_tickable_in_their_own_states(revision):
    wf = revision("legal").workflows["gdpr"]
    assert tickable_checklists(wf, "verifying_identity") == ("identity_verification",)
    assert tickable_checklists(wf, "processing") == ("gdpr_processing",)


def test_identity_verification_optional_item_is_not_needed(revision):
    checklist = revision("legal").workflows["gdpr"].checklist("identity_verification")
    partial = checklist_progress(checklist, {"email_verified": True}, {})
    assert not partial.complete and partial.describe() == "1 of 2 required items checked"
    done = checklist_progress(checklist, {"email_verified": True, "account_match": True}, {})
    assert done.complete and "id_document" not in done.checked


def test_any_mode_and_no_required_items():
    wf = hooks_workflow()
    any_list = wf.checklist("c_list")
    assert not checklist_progress(any_list, {}, {}).complete
    assert checklist_progress(any_list, {"y": True}, {}).complete
    b_list = wf.checklist("b_list")
    assert checklist_progress(b_list, {"one": True}, {}).complete


def test_completion_is_detected_once(revision):
    wf = revision("engineering").workflows["bug"]
    before = {"bug_testing": {"manual_qa": True}}
    green = {"custom_fields": {"ci_status": "passed", "integration_status": "passed", "security_status": "clean"}}
    red = {"custom_fields": {"ci_status": "passed"}}
    assert [c.id for c in checklist_completed(wf, before, red, before, green)] == ["bug_testing"]
    assert checklist_completed(wf, before, green, before, green) == ()
    assert checklist_completed(wf, {}, green, before, red) == ()


def test_on_complete_runs_the_owning_state_hook(revision):
    wf = revision("engineering").workflows["incident"]
    actions = checklist_complete_effects(wf, "postmortem_checklist")
    assert [a.type for a in actions] == ["anchor_data"]
    assert checklist_complete_effects(wf, "missing") == ()

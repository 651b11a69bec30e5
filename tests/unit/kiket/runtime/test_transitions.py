"""Request evaluation (§8.8) against the fixtures' real workflows and a small hand-written one."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from app.kiket.runtime.snapshot import Actor, ApprovalRecord, IssueSnapshot
from app.kiket.runtime.transitions import GATES, available_transitions, evaluate_request, find_transition, outgoing
from app.kiket.runtime.wip import WipInfo

from .conftest import NOW

MEMBER = Actor("alice", frozenset({"member"}), frozenset({"issue.*"}))
LAWYER = Actor("lena", frozenset({"legal"}), frozenset({"issue.transition", "issue.approve"}))
BOT = Actor("some-automation", is_automation=True)


def issue(status: str, workflow: str, **kw) -> IssueSnapshot:
    base = dict(id=7, key="X-7", title="Thing", status=status, workflow=workflow, created_at=NOW - timedelta(days=2),
                updated_at=NOW - timedelta(hours=1), state_entered_at=NOW - timedelta(hours=3), reporter="rita")
    base.update(kw)
    return IssueSnapshot(**base)


def approval(who: str, *roles: str, decision: str = "approved", minutes: int = 0,
             org_admin: bool = False) -> ApprovalRecord:
    return ApprovalRecord(who, frozenset(roles), decision, NOW - timedelta(hours=1) + timedelta(minutes=minutes),
                          org_admin=org_admin)


# Legal: a quorum approval on legal_review gates every outgoing transition (no approval_required anywhere).
# Its approver role `legal` is declared nowhere, so organization owners and admins decide in its place (§16).
LEGAL_STAND_IN = "role legal (declared nowhere: an organization owner or admin decides in its place)"

@pytest.mark.parametrize("wf", ["contract", "gdpr"])
def test_legal_review_gates_every_outgoing_transition(revision, wf):
    workflow = revision("legal").workflows[wf]
    snap = issue("legal_review", wf)
    verdicts = available_transitions(workflow, snap, actor=MEMBER, now=NOW)
    assert len(verdicts) == len(outgoing(workflow, "legal_review")) >= 3
    for verdict in verdicts:
        assert not verdict.allowed
        assert verdict.failed == ("approval",)
        assert verdict.gate("approval").reasons == (f"Needs 1 approval from {LEGAL_STAND_IN} (0 so far)",)


@pytest.mark.parametrize("records, allowed", [
    ((), False),
    ((approval("olga", "owner", org_admin=True),), True),
    ((approval("bob", "sales"),), False),
    ((approval("lena", "legal"),), False),
    ((approval("olga", "owner", decision="denied", org_admin=True),), False),
    ((approval("olga", "owner", org_admin=True), approval("adam", "admin", decision="denied", org_admin=True)), False),
])
def test_contract_quorum_approval(revision, records, allowed):
    workflow = revision("legal").workflows["contract"]
    snap = issue("legal_review", "contract", approvals=records)
    verdict = evaluate_request(workflow, snap, actor=LAWYER, target="pending_signature", now=NOW)
    assert verdict.allowed is allowed
    assert verdict.transition.name == "Approve for Signature"
    if any(r.decision == "denied" for r in records):
        assert "Denied by" in verdict.gate("approval").reasons[0]


def test_states_without_policy_are_not_gated(revision):
    workflow = revision("legal").workflows["contract"]
    verdict = evaluate_request(workflow, issue("draft", "contract"), actor=MEMBER, target="internal_review", now=NOW)
    assert verdict.allowed and verdict.gate("approval").passed


def test_named_transition_picks_the_one_out_of_the_current_state(revision):
    workflow = revision("legal").workflows["contract"]
    for state in ("draft", "pending_signature", "countersigned"):
        verdict = evaluate_request(workflow, issue(state, "contract"), actor=MEMBER, transition="Cancel", now=NOW)
        assert verdict.allowed and verdict.transition.sources == (state,) and verdict.transition.target == "cancelled"


def test_named_transition_unavailable_from_state(revision):
    workflow = revision("legal").workflows["contract"]
    verdict = evaluate_request(workflow, issue("draft", "contract"), actor=MEMBER, transition="Terminate", now=NOW)
    assert not verdict.allowed and verdict.transition is None
    assert verdict.reasons == ("Transition 'Terminate' is not available from 'Draft'",)


# Engineering: conditions and checklist guards, including a guard naming the target's checklist.

def test_bug_fix_needs_an_assignee(revision):
    workflow = revision("engineering").workflows["bug"]
    blocked = evaluate_request(workflow, issue("triaging", "bug"), actor=MEMBER, target="fixing", now=NOW)
    assert not blocked.allowed and blocked.failed == ("conditions",)
    assert blocked.reasons == ("Assignee must be present (it is not set)",)
    ok = evaluate_request(workflow, issue("triaging", "bug", assignee="dev1"), actor=MEMBER, target="fixing", now=NOW)
    assert ok.allowed


POSTMORTEM_ITEMS = ("timeline_documented", "root_cause_identified", "action_items_created", "stakeholders_notified")


@pytest.mark.parametrize("ticked, allowed", [(0, False), (2, False), (3, False), (4, True)])
def test_postmortem_guard_uses_the_target_checklist(revision, ticked, allowed):
    workflow = revision("engineering").workflows["incident"]
    ticks = {"postmortem_checklist": {item: True for item in POSTMORTEM_ITEMS[:ticked]}}
    snap = issue("resolved", "incident", checklists=ticks)
    verdict = evaluate_request(workflow, snap, actor=MEMBER, target="postmortem", now=NOW)
    assert verdict.allowed is allowed
    if not allowed:
        assert verdict.failed == ("checklists",)
        assert verdict.reasons == (
            f"Checklist 'Postmortem Requirements' is not complete: {ticked} of 4 required items checked",)


@pytest.mark.parametrize("fields, manual, allowed", [
    ({}, True, False),
    ({"ci_status": "passed", "integration_status": "passed", "security_status": "clean"}, False, False),
    ({"ci_status": "PASSED", "integration_status": "passed", "security_status": "clean"}, True, True),
    ({"ci_status": "passed", "integration_status": "failed", "security_status": "clean"}, True, False),
])
def test_bug_testing_checklist_auto_items_follow_their_conditions(revision, fields, manual, allowed):
    workflow = revision("engineering").workflows["bug"]
    snap = issue("testing", "bug", custom_fields=fields, checklists={"bug_testing": {"manual_qa": manual}})
    verdict = evaluate_request(workflow, snap, actor=MEMBER, target="deployed", now=NOW)
    assert verdict.allowed is allowed


def test_auto_item_ticks_are_ignored(revision):
    workflow = revision("engineering").workflows["bug"]
    ticks = {"bug_testing": {"manual_qa": True, "unit_tests": True, "integration_tests": True, "security_scan": True}}
    verdict = evaluate_request(workflow, issue("testing", "bug", checklists=ticks), actor=MEMBER, target="deployed",
                               now=NOW)
    assert not verdict.allowed
    assert "1 of 4 required items checked" in verdict.reasons[0]


def test_declared_transition_out_of_a_final_state_is_allowed(revision):
    workflow = revision("engineering").workflows["bug"]
    verdict = evaluate_request(workflow, issue("deployed", "bug"), actor=MEMBER, target="fixing", now=NOW)
    assert verdict.allowed and verdict.transition.name == "Regression Found"


def test_undeclared_move_out_of_a_final_state_is_refused(revision):
    workflow = revision("engineering").workflows["bug"]
    verdict = evaluate_request(workflow, issue("deployed", "bug"), actor=MEMBER, target="triaging", now=NOW)
    assert not verdict.allowed and verdict.transition is None
    assert "final state" in verdict.reasons[0]


@pytest.mark.parametrize("state, target", [("reported", "deployed"), ("triaging", "testing"), ("fixing", "fixing")])
def test_undeclared_moves_are_refused(revision, state, target):
    workflow = revision("engineering").workflows["bug"]
    verdict = evaluate_request(workflow, issue(state, "bug"), actor=MEMBER, target=target, now=NOW)
    assert not verdict.allowed and verdict.transition is None
    assert verdict.gates[0].gate == "transition"


def test_unknown_target_state(revision):
    workflow = revision("engineering").workflows["bug"]
    verdict = evaluate_request(workflow, issue("reported", "bug"), actor=MEMBER, target="nowhere", now=NOW)
    assert verdict.reasons == ("Workflow 'Bug Tracking' has no state 'nowhere'",)


# The hand-written workflow: required fields, predicate, comment, roles, documents, sequential approval, WIP, "*".

def test_every_gate_is_reported_at_once(mini):
    workflow = mini.workflows["mini"]
    snap = issue("doing", "mini", priority="low")
    wip = WipInfo("In progress", 3, 3, "block", includes_issue=True)
    verdict = evaluate_request(workflow, snap, actor=Actor("x"), transition="Submit", now=NOW,
                               wip=WipInfo("Review", 3, 3, "block"), field_labels={"root_cause": "Root cause"})
    assert not verdict.allowed
    assert [g.gate for g in verdict.gates] == list(GATES)
    assert verdict.failed == ("permission", "required_fields", "predicate", "comment", "wip")
    assert verdict.reasons == (
        "You lack the issue.transition permission",
        "Field 'Root cause' is required",
        "Field 'Assignee' is required",
        "Priority must differ from 'low' (it is 'low')",
        "A comment is required for 'Submit'",
        "Column 'Review' is at its WIP limit (3/3)",
    )
    assert evaluate_request(workflow, snap, actor=MEMBER, transition="Fast track", now=NOW, wip=wip).failed == (
        "conditions",)


def test_submit_passes_when_everything_is_there(mini):
    workflow = mini.workflows["mini"]
    snap = issue("doing", "mini", priority="high", assignee="alice", custom_fields={"root_cause": "cache"})
    verdict = evaluate_request(workflow, snap, actor=MEMBER, target="review", comment="done", now=NOW)
    assert verdict.allowed and verdict.transition.name == "Submit"


def test_first_passing_candidate_wins(mini):
    workflow = mini.workflows["mini"]
    snap = issue("doing", "mini", labels=("trivial",))
    verdict = evaluate_request(workflow, snap, actor=MEMBER, target="review", now=NOW)
    assert verdict.allowed and verdict.transition.name == "Fast track"
    blocked = evaluate_request(workflow, replace(snap, labels=()), actor=MEMBER, target="review", now=NOW)
    assert not blocked.allowed and blocked.transition.name == "Submit"


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_required_fields_and_comment(mini, blank):
    workflow = mini.workflows["mini"]
    snap = issue("doing", "mini", priority="high", assignee="alice", custom_fields={"root_cause": blank})
    verdict = evaluate_request(workflow, snap, actor=MEMBER, transition="Submit", comment=blank, now=NOW)
    assert verdict.failed == ("required_fields", "comment")


@pytest.mark.parametrize("actor, allowed", [
    (Actor("d", frozenset({"dev"}), frozenset({"issue.transition"})), True),
    (Actor("d", frozenset({"DEV"}), frozenset({"*"})), True),
    (Actor("q", frozenset({"qa"}), frozenset({"issue.transition"})), False),
    (Actor("v", frozenset({"dev"}), frozenset({"issue.read"})), False),
    (BOT, True),
])
def test_roles_and_permission(mini, actor, allowed):
    verdict = evaluate_request(mini.workflows["mini"], issue("open", "mini"), actor=actor, target="doing", now=NOW)
    assert verdict.allowed is allowed
    if actor.is_automation:
        assert verdict.gate("permission").reasons == ("skipped for automations",)


def test_role_reason_names_the_roles(mini):
    verdict = evaluate_request(mini.workflows["mini"], issue("open", "mini"), actor=MEMBER, target="doing", now=NOW)
    assert verdict.reasons == ("Only role dev may use 'Start'",)


@pytest.mark.parametrize("state, allowed", [("open", True), ("doing", True), ("review", True), ("done", False),
                                            ("cancelled", False)])
def test_star_source_means_every_non_final_state(mini, state, allowed):
    snap = issue(state, "mini", documents=frozenset({"signed_nda"}))
    verdict = evaluate_request(mini.workflows["mini"], snap, actor=MEMBER, target="cancelled", now=NOW)
    assert verdict.allowed is allowed


def test_required_documents_block_every_way_out(mini):
    workflow = mini.workflows["mini"]
    for target in ("doing", "cancelled"):
        verdict = evaluate_request(workflow, issue("review", "mini"), actor=MEMBER, target=target, now=NOW,
                                   documents_declared={"signed_nda": "Signed NDA"})
        assert verdict.failed == ("documents",)
        assert verdict.reasons == ("Document 'Signed NDA' is required before leaving 'Review'",)


@pytest.mark.parametrize("amount, records, allowed", [
    (10, (), False),
    (10, (approval("c", "counsel"),), True),
    (5000, (approval("c", "counsel"),), False),
    (5000, (approval("c", "counsel", minutes=1), approval("f", "cfo", minutes=2)), True),
    (5000, (approval("f", "cfo", minutes=1), approval("c", "counsel", minutes=2)), False),
    (5000, (approval("both", "counsel", "cfo", minutes=1), approval("both", "counsel", "cfo", minutes=2)), False),
])
def test_sequential_chain_with_conditional_step(mini, amount, records, allowed):
    """Only explicitly flagged transitions are gated; the cfo step applies only above 1000."""
    workflow = mini.workflows["mini"]
    snap = issue("review", "mini", custom_fields={"amount": amount}, approvals=records,
                 documents=frozenset({"signed_nda"}))
    verdict = evaluate_request(workflow, snap, actor=MEMBER, transition="Accept", now=NOW)
    assert verdict.allowed is allowed
    for other in ("Rework", "Cancel"):
        assert evaluate_request(workflow, snap, actor=MEMBER, transition=other, now=NOW).allowed


def test_sequential_reason_names_the_step(mini):
    snap = issue("review", "mini", custom_fields={"amount": 5000}, approvals=(approval("c", "counsel"),),
                 documents=frozenset({"signed_nda"}))
    verdict = evaluate_request(mini.workflows["mini"], snap, actor=MEMBER, transition="Accept", now=NOW)
    assert verdict.reasons == ("Waiting for approval from role cfo (step 2 of 2)",)


@pytest.mark.parametrize("wip, passed", [
    (WipInfo("In progress", 3, 2, "block"), True),
    (WipInfo("In progress", 3, 3, "block"), False),
    (WipInfo("In progress", 3, 3, "block", includes_issue=True), True),
    (WipInfo("In progress", 3, 9, "warn"), True),
    (WipInfo("In progress", None, 9, "block"), True),
])
def test_wip_block(mini, wip, passed):
    verdict = evaluate_request(mini.workflows["mini"], issue("open", "mini"), actor=BOT, target="doing", now=NOW,
                               wip=wip)
    assert verdict.allowed is passed
    if not passed:
        assert verdict.reasons == ("Column 'In progress' is at its WIP limit (3/3)",)


def test_find_transition_by_key_or_name(mini):
    workflow = mini.workflows["mini"]
    assert find_transition(workflow, "doing", "doing__review_2").name == "Fast track"
    assert find_transition(workflow, "doing", "FAST TRACK").id == "doing__review_2"
    assert find_transition(workflow, "done", "Cancel") is None


def test_request_needs_a_target_or_name(mini):
    with pytest.raises(ValueError):
        evaluate_request(mini.workflows["mini"], issue("open", "mini"), actor=MEMBER, now=NOW)


def test_issue_in_unknown_state(mini):
    verdict = evaluate_request(mini.workflows["mini"], issue("gone", "mini"), actor=MEMBER, target="doing", now=NOW)
    assert not verdict.allowed and "does not declare" in verdict.reasons[0]


def test_condition_reasons_name_standard_fields_humanized_and_custom_fields_by_label():
    from app.kiket.conditions import All, Compare, explain
    from app.kiket.runtime.transitions import _condition_labels

    cond = All((Compare("due_date", "is_present"), Compare("custom_fields.value", "gte", 10)))
    labels = _condition_labels({"custom_fields.value": "Deal value"})
    assert explain(cond, {"custom_fields": {"value": 1}}, labels=labels) == [
        "Due date must be present (it is not set)", "Deal value must be at least 10 (it is 1)"]

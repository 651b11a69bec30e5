"""Approval semantics (§8.5): quorum, any, parallel, sequential, `when`, field approvers, and who may decide."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from app.kiket.conditions import Compare
from app.kiket.model import ApprovalPolicy, Approver
from app.kiket.runtime.approvals import approval_status, can_decide, gating_policy, requests_approval
from app.kiket.runtime.snapshot import ApprovalRecord
from app.kiket.runtime.transitions import find_transition

from .conftest import NOW


def rec(who, *roles, decision="approved", minute=0):
    return ApprovalRecord(who, frozenset(roles), decision, NOW + timedelta(minutes=minute))


PARALLEL = ApprovalPolicy("parallel", 2, (Approver("role", "counsel"), Approver("role", "cfo")))
ANY = ApprovalPolicy("any", 1, (Approver("user", "alice"), Approver("field", "custom_fields.owner")))
QUORUM2 = ApprovalPolicy("quorum", 2, (Approver("role", "legal"),))


@pytest.mark.parametrize("records, ok", [
    ((), False),
    ((rec("c", "counsel"),), False),
    ((rec("f", "cfo", minute=1), rec("c", "counsel", minute=2)), True),
    ((rec("both", "counsel", "cfo"),), False),
    ((rec("both", "counsel", "cfo"), rec("c", "counsel")), True),
])
def test_parallel_needs_each_entry_by_distinct_people(records, ok):
    status = approval_status(PARALLEL, records, {})
    assert status.satisfied is ok
    if not ok:
        assert all("Needs an approval from role" in r for r in status.reasons)


@pytest.mark.parametrize("records, ok", [
    ((rec("alice"),), True), ((rec("ALICE"),), True), ((rec("olaf"),), True), ((rec("bob", "legal"),), False),
])
def test_any_with_user_and_field_approvers(records, ok):
    assert approval_status(ANY, records, {"custom_fields": {"owner": "Olaf"}}).satisfied is ok


@pytest.mark.parametrize("records, ok, reason", [
    ((rec("a", "legal"),), False, "Needs 2 approvals from role legal (1 so far)"),
    ((rec("a", "legal"), rec("a", "legal", minute=1)), False, "Needs 2 approvals from role legal (1 so far)"),
    ((rec("a", "legal"), rec("b", "legal")), True, None),
])
def test_quorum_counts_distinct_people(records, ok, reason):
    status = approval_status(QUORUM2, records, {})
    assert status.satisfied is ok and (status.reasons == ((reason,) if reason else ()))


def test_approver_when_skips_entries_and_an_empty_chain_needs_nothing():
    policy = ApprovalPolicy("sequential", 1, (Approver("role", "cfo", Compare("custom_fields.amount", "gt", 1000)),))
    assert approval_status(policy, (), {"custom_fields": {"amount": 10}}).satisfied
    assert not approval_status(policy, (), {"custom_fields": {"amount": 5000}}).satisfied


def test_denial_by_a_non_approver_does_not_count():
    assert approval_status(QUORUM2, (rec("x", "sales", decision="denied"), rec("a", "legal"), rec("b", "legal")),
                           {}).satisfied


def test_who_may_decide():
    policy = ApprovalPolicy("quorum", 1, (Approver("role", "legal"),))
    lena = rec("lena", "legal")
    assert can_decide(policy, lena, (), {}, may_approve=True) is None
    assert can_decide(policy, lena, (), {}, may_approve=False) == "You lack the issue.approve permission"
    assert can_decide(policy, rec("sam", "sales"), (), {}, may_approve=True) == "Only role legal may decide"
    assert can_decide(policy, lena, (rec("lena", "legal"),), {}, may_approve=True) == \
        "You have already decided in this state"
    assert can_decide(policy, rec("lars", "legal"), (lena,), {}, may_approve=True) == "The approval is already complete"
    denied = (rec("lena", "legal", decision="denied"),)
    assert "denied" in can_decide(policy, rec("lars", "legal"), denied, {}, may_approve=True)


def test_a_role_declared_nowhere_is_decided_by_organization_owners_and_admins(revision):
    """legal's approver role `legal` exists in no team (§16): org owners/admins decide in its place."""
    policy = revision("legal").workflows["contract"].states["legal_review"].approval
    owner = ApprovalRecord("olga", frozenset({"owner"}), "approved", NOW, org_admin=True)
    assert can_decide(policy, owner, (), {}, may_approve=True) is None
    refusal = can_decide(policy, rec("lena", "legal"), (), {}, may_approve=True)
    assert refusal.startswith("Only role legal (declared nowhere: an organization owner or admin decides")
    assert approval_status(policy, (owner,), {}).satisfied
    assert not approval_status(policy, (rec("lena", "legal"),), {}).satisfied


def test_sequential_chain_is_decided_in_turn():
    """An out-of-turn approval would never count and would use up the person's decision: refused until their step."""
    chain = ApprovalPolicy("sequential", 1, (Approver("role", "counsel"), Approver("role", "cfo")))
    cfo, counsel = rec("f", "cfo"), rec("c", "counsel")
    assert can_decide(chain, cfo, (), {}, may_approve=True) == "Waiting for approval from role counsel first"
    assert can_decide(chain, counsel, (), {}, may_approve=True) is None
    assert can_decide(chain, cfo, (counsel,), {}, may_approve=True) is None
    assert can_decide(chain, rec("c2", "counsel"), (counsel,), {}, may_approve=True) == \
        "Waiting for approval from role cfo first"


def test_which_states_request_approval(revision, mini):
    contract = revision("legal").workflows["contract"]
    assert [s for s in contract.states if requests_approval(contract, s)] == ["legal_review"]
    assert requests_approval(mini.workflows["mini"], "review")
    assert not requests_approval(mini.workflows["mini"], "gone")


def test_approval_required_without_a_policy_needs_anyone(mini):
    workflow = mini.workflows["mini"]
    reopen = find_transition(workflow, "done", "Reopen")
    flagged = replace(reopen, approval_required=True)
    wf = replace(workflow, transitions=(*workflow.transitions[:-1], flagged))
    policy = gating_policy(wf, flagged, "done")
    assert policy.mode == "any" and policy.approvers == ()
    assert approval_status(policy, (rec("anyone"),), {}).satisfied
    assert approval_status(policy, (), {}).reasons == ("Needs 1 approval from anyone allowed to approve (0 so far)",)

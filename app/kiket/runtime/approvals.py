"""Approvals (spec §8.5): which transitions a policy gates, and whether the decisions so far satisfy it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.kiket.conditions import evaluate, normalize_path, resolve_path
from app.kiket.model import ApprovalPolicy, Approver, Transition, Workflow
from app.kiket.runtime.snapshot import ApprovalRecord

# `approval_required: true` without a policy: one approval by anyone allowed to approve.
ANY_APPROVER_POLICY = ApprovalPolicy(mode="any", required=1, approvers=())


@dataclass(frozen=True)
class ApprovalStatus:
    """Whether a policy is satisfied, denied, and what is still missing, in words."""

    satisfied: bool
    denied: bool
    approved_by: tuple[str, ...]
    reasons: tuple[str, ...]


def gating_policy(workflow: Workflow, transition: Transition, source: str) -> ApprovalPolicy | None:
    """The approval policy gating `transition` out of `source`, or None when it is not gated.

    If any outgoing transition sets `approval_required`, exactly those with `true` are gated;
    otherwise every outgoing transition is gated by the source state's policy (the legal repo).
    """
    from app.kiket.runtime.transitions import leaves_from

    if transition.approval is not None:
        return transition.approval
    state = workflow.states.get(source)
    policy = state.approval if state is not None else None
    outgoing = [t for t in workflow.transitions if leaves_from(workflow, t, source)]
    explicit = any(t.approval_required is not None or t.approval is not None for t in outgoing)
    if explicit:
        if transition.approval_required:
            return policy or ANY_APPROVER_POLICY
        return None
    return policy


def describe_approver(approver: Approver) -> str:
    """`role legal`, `user alice`, `field custom_fields.counsel`."""
    return f"{approver.kind} {approver.ref}"


def matches(approver: Approver, record: ApprovalRecord, context: Mapping) -> bool:
    """True when the person behind `record` is who `approver` names."""
    if approver.kind == "role":
        wanted = approver.ref.lstrip("@").casefold()
        return any(r.casefold() == wanted for r in record.roles)
    if approver.kind == "user":
        return record.approver.casefold() == approver.ref.lstrip("@").casefold()
    path = normalize_path(approver.ref)
    value = resolve_path(context, path) if path else None
    values = value if isinstance(value, (list, tuple)) else [value]
    return any(isinstance(v, str) and v.casefold() == record.approver.casefold() for v in values)


def active_approvers(policy: ApprovalPolicy, context: Mapping) -> tuple[Approver, ...]:
    """Approver entries that apply now (a `when` that does not hold skips the entry)."""
    return tuple(a for a in policy.approvers if a.when is None or evaluate(a.when, context))


def _eligible(approvers: Sequence[Approver], record: ApprovalRecord, context: Mapping) -> bool:
    return not approvers or any(matches(a, record, context) for a in approvers)


def _who(approvers: Sequence[Approver]) -> str:
    if not approvers:
        return "anyone allowed to approve"
    return " or ".join(describe_approver(a) for a in approvers)


def approval_status(policy: ApprovalPolicy, records: Sequence[ApprovalRecord], context: Mapping) -> ApprovalStatus:
    """Evaluate quorum / any / parallel / sequential semantics over this state entry's decisions."""
    approvers = active_approvers(policy, context)
    if policy.approvers and not approvers:
        return ApprovalStatus(True, False, (), ())
    if all(r.at is not None for r in records):
        records = sorted(records, key=lambda r: r.at)
    denials = [r for r in records if r.decision == "denied" and _eligible(approvers, r, context)]
    if denials:
        who = ", ".join(dict.fromkeys(r.approver for r in denials))
        return ApprovalStatus(False, True, (), (f"Denied by {who}; the issue must re-enter the state to ask again",))
    approvals = [r for r in records if r.decision == "approved"]
    if policy.mode in ("quorum", "any"):
        needed = max(1, policy.required) if policy.mode == "quorum" else 1
        people = tuple(dict.fromkeys(r.approver for r in approvals if _eligible(approvers, r, context)))
        if len(people) >= needed:
            return ApprovalStatus(True, False, people, ())
        noun = "approval" if needed == 1 else "approvals"
        return ApprovalStatus(False, False, people,
                              (f"Needs {needed} {noun} from {_who(approvers)} ({len(people)} so far)",))
    if policy.mode == "parallel":
        assignment = _match(approvers, approvals, context)
        missing = [a for i, a in enumerate(approvers) if i not in assignment]
        people = tuple(assignment[i].approver for i in sorted(assignment))
        if not missing:
            return ApprovalStatus(True, False, people, ())
        return ApprovalStatus(False, False, people, tuple(
            f"Needs an approval from {describe_approver(a)} ({len(approvers) - len(missing)} of {len(approvers)} "
            "approvals so far)" for a in missing))
    step = 0
    used: set[str] = set()
    people_seq: list[str] = []
    for record in approvals:
        if step >= len(approvers):
            break
        key = record.approver.casefold()
        if key not in used and matches(approvers[step], record, context):
            used.add(key)
            people_seq.append(record.approver)
            step += 1
    if step >= len(approvers):
        return ApprovalStatus(True, False, tuple(people_seq), ())
    return ApprovalStatus(False, False, tuple(people_seq), (
        f"Waiting for approval from {describe_approver(approvers[step])} (step {step + 1} of {len(approvers)})",))


def _match(approvers: Sequence[Approver], records: Sequence[ApprovalRecord], context: Mapping) -> dict[int, ApprovalRecord]:
    """Assign distinct people to approver entries (bipartite matching), so one person cannot fill two seats."""
    people: dict[str, ApprovalRecord] = {}
    for record in records:
        people.setdefault(record.approver.casefold(), record)
    seat_of: dict[str, int] = {}

    def place(index: int, seen: set[str]) -> bool:
        for person, record in people.items():
            if person in seen or not matches(approvers[index], record, context):
                continue
            seen.add(person)
            if person not in seat_of or place(seat_of[person], seen):
                seat_of[person] = index
                return True
        return False

    for index in range(len(approvers)):
        place(index, set())
    return {index: people[person] for person, index in seat_of.items()}


def can_decide(policy: ApprovalPolicy, approver: ApprovalRecord, records: Sequence[ApprovalRecord],
               context: Mapping, *, may_approve: bool) -> str | None:
    """None when this person may approve or deny now; otherwise why not (for the approve/deny buttons)."""
    if not may_approve:
        return "You lack the issue.approve permission"
    approvers = active_approvers(policy, context)
    if approvers and not any(matches(a, approver, context) for a in approvers):
        return f"Only {_who(approvers)} may decide"
    if any(r.approver.casefold() == approver.approver.casefold() for r in records):
        return "You have already decided in this state"
    status = approval_status(policy, records, context)
    if status.denied:
        return "The approval was denied; the issue must re-enter the state"
    if status.satisfied:
        return "The approval is already complete"
    if policy.mode == "sequential":
        # A decision out of turn would never count (the chain is filled in order) and would use up the
        # person's one decision in this state entry: refuse it until their step comes.
        step = approvers[len(status.approved_by)]
        if not matches(step, approver, context):
            return f"Waiting for approval from {describe_approver(step)} first"
    return None


def requests_approval(workflow: Workflow, state: str) -> bool:
    """True when entering `state` emits `approval.requested` (it has a policy, or a gated way out)."""
    from app.kiket.runtime.transitions import outgoing

    current = workflow.states.get(state)
    if current is None:
        return False
    return current.approval is not None or any(gating_policy(workflow, t, state) is not None
                                               for t in outgoing(workflow, state))

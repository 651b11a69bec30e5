"""Approvals (spec §8.5): which transitions a policy gates, and whether the decisions so far satisfy it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from app.kiket.conditions import evaluate, normalize_path, resolve_path
from app.kiket.model import ApprovalLevel, ApprovalPolicy, Approver, Transition, Workflow
from app.kiket.runtime.snapshot import ApprovalRecord

# `approval_required: true` without a policy: one approval by anyone allowed to approve.
ANY_APPROVER_POLICY = ApprovalPolicy(mode="any", required=1, approvers=())


@dataclass(frozen=True)
class ApprovalStatus:
    """Whether a policy is satisfied, denied, and what is still missing, in words.

    For chains: `level` is the index of the level waiting for decisions, `reached_at` when the levels
    before it were complete (None: when the issue entered the state), `skipped` the levels whose
    conditions did not hold.
    """

    satisfied: bool
    denied: bool
    approved_by: tuple[str, ...]
    reasons: tuple[str, ...]
    level: int | None = None
    reached_at: datetime | None = None
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Overdue:
    """A chain level that has waited longer than its timeout (§16: `approval.overdue`, once per level)."""

    level: int
    name: str
    due_at: datetime


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
    """`role legal`, `user alice`, `field custom_fields.counsel`; a role nobody holds says who stands in."""
    if approver.undeclared:
        return f"role {approver.ref} (declared nowhere: an organization owner or admin decides in its place)"
    return f"{approver.kind} {approver.ref}"


def matches(approver: Approver, record: ApprovalRecord, context: Mapping) -> bool:
    """True when the person behind `record` is who `approver` names (org owners/admins for undeclared roles)."""
    if approver.undeclared:
        return record.org_admin
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


def applies(policy: ApprovalPolicy, context: Mapping) -> bool:
    """False while the policy's own conditions (§16 approval `conditions`) do not hold."""
    return policy.when is None or evaluate(policy.when, context)


def approval_status(policy: ApprovalPolicy, records: Sequence[ApprovalRecord], context: Mapping) -> ApprovalStatus:
    """Evaluate quorum / any / parallel / sequential / chain semantics over this state entry's decisions."""
    if not applies(policy, context):
        return ApprovalStatus(True, False, (), ())
    if policy.mode == "chain":
        return _chain_status(policy, records, context)
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


def _ordered(records: Sequence[ApprovalRecord]) -> list[ApprovalRecord]:
    return sorted(records, key=lambda r: r.at) if all(r.at is not None for r in records) else list(records)


def _seats(approvers: Sequence[Approver], need: int | None, records: Sequence[ApprovalRecord],
           context: Mapping) -> tuple[bool, list[ApprovalRecord], str]:
    """Whether distinct people among `records` fill `need` seats (None: one per approver entry), and who counted."""
    active = [a for a in approvers if a.when is None or evaluate(a.when, context)]
    if approvers and not active:
        return True, [], ""
    people: dict[str, ApprovalRecord] = {}
    for record in records:
        people.setdefault(record.approver.casefold(), record)
    if need is None and active:
        assignment = _match(active, list(people.values()), context)
        counted = [assignment[i] for i in sorted(assignment)]
        missing = [a for i, a in enumerate(active) if i not in assignment]
        return not missing, counted, "needs an approval from " + " and from ".join(describe_approver(a) for a in missing)
    wanted = need or 1
    eligible = [r for r in people.values() if _eligible(active, r, context)]
    noun = "approval" if wanted == 1 else "approvals"
    return len(eligible) >= wanted, eligible[:wanted], \
        f"needs {wanted} {noun} from {_who(active)} ({min(len(eligible), wanted)} so far)"


def _level_status(level: ApprovalLevel, records: Sequence[ApprovalRecord],
                  context: Mapping) -> tuple[bool, list[ApprovalRecord], str]:
    if not level.groups:
        return _seats(level.approvers, level.need, records, context)
    remaining = list(records)
    counted: list[ApprovalRecord] = []
    missing = []
    results = []
    for group in level.groups:
        ok, people, reason = _seats(group.approvers, group.need, remaining, context)
        results.append(ok)
        if ok:
            counted.extend(people)
            taken = {r.approver.casefold() for r in people}
            remaining = [r for r in remaining if r.approver.casefold() not in taken]
        else:
            missing.append(f"group {group.name} {reason}")
    ok = all(results) if level.logic == "and" else any(results)
    joiner = "; " if level.logic == "and" else "; or "
    return ok, counted, joiner.join(missing)


def _chain_approvers(policy: ApprovalPolicy) -> tuple[Approver, ...]:
    return tuple(a for level in policy.levels for a in (*level.approvers, *(x for g in level.groups
                                                                           for x in g.approvers)))


def _chain_status(policy: ApprovalPolicy, records: Sequence[ApprovalRecord], context: Mapping) -> ApprovalStatus:
    """Levels decided in order; a level whose conditions do not hold when reached is skipped (§16)."""
    records = _ordered(records)
    everyone = _chain_approvers(policy)
    anyone = any(not level.approvers and not any(g.approvers for g in level.groups) for level in policy.levels)
    denials = [r for r in records if r.decision == "denied" and (anyone or _eligible(everyone, r, context))]
    if denials:
        who = ", ".join(dict.fromkeys(r.approver for r in denials))
        return ApprovalStatus(False, True, (), (f"Denied by {who}; the issue must re-enter the state to ask again",))
    approvals = [r for r in records if r.decision == "approved"]
    used: set[str] = set()
    people: list[str] = []
    skipped: list[str] = []
    reached_at = None
    count = len(policy.levels)
    for index, level in enumerate(policy.levels):
        if level.when is not None and not evaluate(level.when, context):
            skipped.append(level.name)
            continue
        available = [r for r in approvals if r.approver.casefold() not in used]
        ok, counted, reason = _level_status(level, available, context)
        if not ok:
            return ApprovalStatus(False, False, tuple(people), (
                f"Waiting for level {index + 1} of {count} ({level.name}): {reason}",), index, reached_at,
                tuple(skipped))
        used.update(r.approver.casefold() for r in counted)
        people.extend(r.approver for r in counted)
        moments = [r.at for r in counted if r.at is not None]
        if moments:
            reached_at = max(moments)
    return ApprovalStatus(True, False, tuple(people), (), None, reached_at, tuple(skipped))


def overdue(policy: ApprovalPolicy, records: Sequence[ApprovalRecord], context: Mapping, entered_at: datetime,
            now: datetime) -> Overdue | None:
    """The waiting chain level when it has been waiting longer than its `timeout` (None otherwise)."""
    if policy.mode != "chain":
        return None
    status = approval_status(policy, records, context)
    if status.satisfied or status.denied or status.level is None:
        return None
    level = policy.levels[status.level]
    if level.timeout_s is None:
        return None
    since = status.reached_at or entered_at
    since = since if since.tzinfo is not None else since.replace(tzinfo=timezone.utc)
    due_at = since + timedelta(seconds=level.timeout_s)
    now = now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)
    return Overdue(status.level, level.name, due_at) if now >= due_at else None


def messages(policy: ApprovalPolicy, context: Mapping, records: Sequence[ApprovalRecord] = ()) -> tuple[str, ...]:
    """What the configuration tells the approvers now: the policy's, the waiting level's and its approvers'."""
    found = [policy.message] if policy.message else []
    if policy.mode == "chain":
        status = approval_status(policy, records, context)
        if status.level is not None:
            level = policy.levels[status.level]
            found.append(level.message or "")
            found.extend(a.message or "" for a in (*level.approvers, *(x for g in level.groups for x in g.approvers)))
    else:
        found.extend(a.message or "" for a in active_approvers(policy, context))
    return tuple(dict.fromkeys(m for m in found if m))


def deciders(policy: ApprovalPolicy, records: Sequence[ApprovalRecord], context: Mapping) -> tuple[Approver, ...]:
    """Who may decide now: the approvers of the waiting chain level, or the policy's active approvers."""
    if policy.mode == "chain":
        status = approval_status(policy, records, context)
        if status.level is None:
            return ()
        level = policy.levels[status.level]
        return tuple(a for a in (*level.approvers, *(x for g in level.groups for x in g.approvers))
                     if a.when is None or evaluate(a.when, context))
    return active_approvers(policy, context)


def can_decide(policy: ApprovalPolicy, approver: ApprovalRecord, records: Sequence[ApprovalRecord],
               context: Mapping, *, may_approve: bool) -> str | None:
    """None when this person may approve or deny now; otherwise why not (for the approve/deny buttons)."""
    if not may_approve:
        return "You lack the issue.approve permission"
    if not applies(policy, context):
        return "No approval is needed while the policy's conditions do not hold"
    approvers = deciders(policy, records, context)
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

"""Transition request evaluation (spec §8.8): every gate evaluated, every failure reported in words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from app.kiket.conditions import All, ChecklistComplete, evaluate, explain, normalize_path, resolve_path
from app.kiket.model import Transition, Workflow
from app.kiket.reader import humanize
from app.kiket.runtime.approvals import approval_status, gating_policy
from app.kiket.runtime.checklists import all_progress, guard_checklists
from app.kiket.runtime.snapshot import STANDARD_FIELDS, Actor, IssueSnapshot, to_context
from app.kiket.runtime.wip import WipInfo

if TYPE_CHECKING:
    from app.kiket.calendar import BusinessHours

__all__ = ["Actor", "GateResult", "Verdict", "WipInfo", "GATES", "leaves_from", "outgoing", "find_transition",
           "available_transitions", "evaluate_request", "evaluate_transition", "field_label", "force_refusal",
           "skipped_gates"]

# Gate names in the order §8.8 lists them.
GATES = ("permission", "conditions", "required_fields", "predicate", "checklists", "documents", "approval",
         "comment", "wip")
TRANSITION_PERMISSION = "issue.transition"


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict and, when it fails, why."""

    gate: str
    passed: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """The outcome of a transition request: allowed or not, the transition chosen, and every gate's result."""

    allowed: bool
    transition: Transition | None
    gates: tuple[GateResult, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """Every failure reason, gate by gate."""
        return tuple(r for g in self.gates if not g.passed for r in g.reasons)

    @property
    def failed(self) -> tuple[str, ...]:
        """Names of the gates that failed."""
        return tuple(g.gate for g in self.gates if not g.passed)

    def gate(self, name: str) -> GateResult | None:
        """The result of one gate by name."""
        return next((g for g in self.gates if g.gate == name), None)


def leaves_from(workflow: Workflow, transition: Transition, state: str) -> bool:
    """True when `transition` is declared out of `state` (`*` = every non-final state)."""
    if transition.sources == "*":
        current = workflow.states.get(state)
        return current is not None and not current.is_final
    return state in transition.sources


def outgoing(workflow: Workflow, state: str) -> tuple[Transition, ...]:
    """Declared transitions out of `state`, in declaration order."""
    return tuple(t for t in workflow.transitions if leaves_from(workflow, t, state))


def find_transition(workflow: Workflow, state: str, handle: str, target: str | None = None) -> Transition | None:
    """The transition out of `state` whose key, or else name (case-insensitive), is `handle`."""
    candidates = [t for t in outgoing(workflow, state) if target is None or t.target == target]
    for t in candidates:
        if t.id == handle:
            return t
    folded = handle.strip().casefold()
    return next((t for t in candidates if t.name.casefold() == folded or t.id.casefold() == folded), None)


def _state_label(workflow: Workflow, key: str) -> str:
    state = workflow.states.get(key)
    return state.label if state is not None else key


def _refused(reason: str) -> Verdict:
    return Verdict(False, None, (GateResult("transition", False, (reason,)),))


def evaluate_request(
    workflow: Workflow,
    snapshot: IssueSnapshot,
    *,
    actor: Actor,
    now: datetime,
    target: str | None = None,
    transition: str | None = None,
    comment: str | None = None,
    wip: WipInfo | None = None,
    documents_declared: Mapping[str, str] | None = None,
    field_labels: Mapping[str, str] | None = None,
    calendar: BusinessHours | None = None,
) -> Verdict:
    """Evaluate a request: the named transition, else the first declared one to `target` whose gates all pass."""
    state = snapshot.status
    if state not in workflow.states:
        return _refused(f"The issue is in state '{state}', which workflow '{workflow.name}' does not declare")
    if transition is not None:
        chosen = find_transition(workflow, state, transition, target)
        if chosen is None:
            where = f" to '{_state_label(workflow, target)}'" if target else ""
            return _refused(f"Transition '{transition}'{where} is not available from "
                            f"'{_state_label(workflow, state)}'")
        candidates: tuple[Transition, ...] = (chosen,)
    elif target is not None:
        candidates = tuple(t for t in outgoing(workflow, state) if t.target == target)
        if not candidates:
            if target not in workflow.states:
                return _refused(f"Workflow '{workflow.name}' has no state '{target}'")
            if workflow.states[state].is_final:
                return _refused(f"'{_state_label(workflow, state)}' is a final state; no declared transition "
                                f"leads to '{_state_label(workflow, target)}'")
            return _refused(f"No transition leads from '{_state_label(workflow, state)}' to "
                            f"'{_state_label(workflow, target)}'")
    else:
        raise ValueError("evaluate_request needs a target state or a transition name")
    # When no candidate passes, the first one's verdict carries every failure for the "simulate" view.
    context = to_context(snapshot, now, actor=actor, workflow=workflow, calendar=calendar)
    first: Verdict | None = None
    for candidate in candidates:
        verdict = evaluate_transition(workflow, snapshot, candidate, actor=actor, now=now, comment=comment, wip=wip,
                                      documents_declared=documents_declared, field_labels=field_labels,
                                      context=context)
        if verdict.allowed:
            return verdict
        first = first or verdict
    assert first is not None
    return first


def available_transitions(
    workflow: Workflow,
    snapshot: IssueSnapshot,
    *,
    actor: Actor,
    now: datetime,
    comment: str | None = None,
    wip_by_target: Mapping[str, WipInfo] | None = None,
    documents_declared: Mapping[str, str] | None = None,
    field_labels: Mapping[str, str] | None = None,
    calendar: BusinessHours | None = None,
) -> tuple[Verdict, ...]:
    """A verdict for every transition declared out of the current state (buttons, and why some are blocked)."""
    if snapshot.status not in workflow.states:
        return ()
    context = to_context(snapshot, now, actor=actor, workflow=workflow, calendar=calendar)
    wip_by_target = wip_by_target or {}
    return tuple(
        evaluate_transition(workflow, snapshot, t, actor=actor, now=now, comment=comment,
                            wip=wip_by_target.get(t.target), documents_declared=documents_declared,
                            field_labels=field_labels, context=context)
        for t in outgoing(workflow, snapshot.status)
    )


def evaluate_transition(
    workflow: Workflow,
    snapshot: IssueSnapshot,
    transition: Transition,
    *,
    actor: Actor,
    now: datetime,
    comment: str | None = None,
    wip: WipInfo | None = None,
    documents_declared: Mapping[str, str] | None = None,
    field_labels: Mapping[str, str] | None = None,
    context: Mapping | None = None,
) -> Verdict:
    """Run every gate of one declared transition; the request is allowed only if all pass."""
    if context is None:
        context = to_context(snapshot, now, actor=actor, workflow=workflow)
    progress = all_progress(workflow, snapshot.checklists, context)
    complete = {cid: p.complete for cid, p in progress.items()}
    checklist_guards = guard_checklists(transition.guard)
    gates = (
        _permission_gate(transition, actor),
        _conditions_gate(transition, context, complete, checklist_guards, _condition_labels(field_labels)),
        _fields_gate(transition, context, field_labels or {}),
        _predicate_gate(transition, context, complete, _condition_labels(field_labels)),
        _checklists_gate(workflow, transition, checklist_guards, progress),
        _documents_gate(workflow, snapshot, documents_declared or {}),
        _approval_gate(workflow, transition, snapshot, context),
        _comment_gate(transition, comment),
        _wip_gate(wip),
    )
    return Verdict(all(g.passed for g in gates), transition, gates)


def force_refusal(verdict: Verdict, actor: Actor) -> str | None:
    """None when `actor` may force this move past its failing gates (§16); otherwise why not."""
    if not actor.org_admin or actor.is_automation:
        return "Only organization owners and admins can force a transition"
    if verdict.transition is None:
        return "; ".join(verdict.reasons) or "The transition is not available"
    if verdict.allowed:
        return "Nothing blocks this transition; it needs no force"
    return None


def skipped_gates(verdict: Verdict) -> tuple[GateResult, ...]:
    """The gates a forced move skips: every failing one, with its reasons."""
    return tuple(g for g in verdict.gates if not g.passed)


def _permission_gate(transition: Transition, actor: Actor) -> GateResult:
    if actor.is_automation:
        return GateResult("permission", True, ("skipped for automations",))
    reasons = []
    if not actor.can(TRANSITION_PERMISSION):
        reasons.append(f"You lack the {TRANSITION_PERMISSION} permission")
    if transition.allowed_roles:
        allowed = {r.lstrip("@").casefold() for r in transition.allowed_roles}
        # A role nobody can hold (declared nowhere) is passed by organization owners and admins (§16).
        stand_in = bool(transition.undeclared_roles) and actor.org_admin
        if not stand_in and not any(r.casefold() in allowed for r in actor.roles):
            roles = ", ".join(transition.allowed_roles)
            reason = f"Only role{'s' if len(transition.allowed_roles) > 1 else ''} {roles} may use '{transition.name}'"
            if transition.undeclared_roles:
                reason += (f" ({', '.join(transition.undeclared_roles)} is declared nowhere: organization owners and "
                           "admins pass it)")
            reasons.append(reason)
    return GateResult("permission", not reasons, tuple(reasons))


def _conditions_gate(transition: Transition, context: Mapping, complete: Mapping[str, bool],
                     checklist_guards: tuple[ChecklistComplete, ...], labels: Mapping[str, str]) -> GateResult:
    guard = transition.guard
    if guard is None:
        return GateResult("conditions", True)
    if checklist_guards:
        # Top-level checklist guards are reported by their own gate, with progress counts.
        rest = guard.items if isinstance(guard, All) else ()
        guard = All(tuple(c for c in rest if not isinstance(c, ChecklistComplete)))
    if evaluate(guard, context, checklists=complete):
        return GateResult("conditions", True)
    reasons = explain(guard, context, checklists=complete, labels=labels) or ["The transition's conditions do not hold"]
    return GateResult("conditions", False, tuple(_sentence(r) for r in reasons))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _condition_labels(field_labels: Mapping[str, str] | None) -> dict[str, str]:
    """How condition reasons name paths: standard fields humanized ("Due date"), custom ones by their labels."""
    return {**{name: humanize(name) for name in STANDARD_FIELDS}, **(field_labels or {})}


def field_label(path: str, labels: Mapping[str, str]) -> str:
    """A human label for a field path: the issue type's label when known, else the humanized name."""
    last = path.rsplit(".", 1)[-1]
    return labels.get(path) or labels.get(last) or humanize(last)


def _fields_gate(transition: Transition, context: Mapping, labels: Mapping[str, str]) -> GateResult:
    reasons = []
    for raw in transition.required_fields:
        path = normalize_path(raw)
        value = resolve_path(context, path) if path else None
        if value is None or (isinstance(value, str) and not value.strip()) or \
                (isinstance(value, (list, tuple, dict)) and not value):
            reasons.append(f"Field '{field_label(path or raw, labels)}' is required")
    return GateResult("required_fields", not reasons, tuple(reasons))


def _predicate_gate(transition: Transition, context: Mapping, complete: Mapping[str, bool],
                    labels: Mapping[str, str]) -> GateResult:
    predicate = transition.required_predicate
    if predicate is None or evaluate(predicate, context, checklists=complete):
        return GateResult("predicate", True)
    reasons = explain(predicate, context, checklists=complete, labels=labels) or \
        ["The transition's requirement does not hold"]
    return GateResult("predicate", False, tuple(_sentence(r) for r in reasons))


def _checklists_gate(workflow: Workflow, transition: Transition, guards: tuple[ChecklistComplete, ...],
                     progress: Mapping) -> GateResult:
    reasons = []
    for guard in guards:
        state = progress.get(guard.id)
        if state is None:
            reasons.append(f"Checklist '{guard.id}' does not exist in workflow '{workflow.name}'")
            continue
        if state.complete == guard.expected:
            continue
        title = state.checklist.title or guard.id
        if guard.expected:
            reasons.append(f"Checklist '{title}' is not complete: {state.describe()}")
        else:
            reasons.append(f"Checklist '{title}' must not be complete")
    return GateResult("checklists", not reasons, tuple(reasons))


def _documents_gate(workflow: Workflow, snapshot: IssueSnapshot, labels: Mapping[str, str]) -> GateResult:
    state = workflow.states[snapshot.status]
    have = {d.casefold() for d in snapshot.documents}
    reasons = [f"Document '{labels.get(key) or humanize(key)}' is required before leaving '{state.label}'"
               for key in state.required_documents if key.casefold() not in have]
    return GateResult("documents", not reasons, tuple(reasons))


def _approval_gate(workflow: Workflow, transition: Transition, snapshot: IssueSnapshot, context: Mapping) -> GateResult:
    policy = gating_policy(workflow, transition, snapshot.status)
    if policy is None:
        return GateResult("approval", True)
    status = approval_status(policy, snapshot.approvals, context)
    return GateResult("approval", status.satisfied, () if status.satisfied else status.reasons)


def _comment_gate(transition: Transition, comment: str | None) -> GateResult:
    if not transition.comment_required or (comment is not None and comment.strip()):
        return GateResult("comment", True)
    return GateResult("comment", False, (f"A comment is required for '{transition.name}'",))


def _wip_gate(wip: WipInfo | None) -> GateResult:
    if wip is None or wip.limit is None or not wip.over_limit:
        return GateResult("wip", True)
    message = f"Column '{wip.column}' is at its WIP limit ({wip.count}/{wip.limit})"
    if wip.policy != "block":
        # `warn` columns flag the overflow but allow the move.
        return GateResult("wip", True, (message + "; allowed (warn policy)",))
    return GateResult("wip", False, (message,))

"""Checklist progress and completeness (spec §8.6): manual ticks plus auto items checked while their condition holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.kiket.conditions import ChecklistComplete, evaluate
from app.kiket.model import Checklist, Workflow


@dataclass(frozen=True)
class ChecklistProgress:
    """How far a checklist is: which items are checked and whether it counts as complete."""

    checklist: Checklist
    checked: frozenset[str]
    complete: bool
    counted: int
    counted_checked: int

    def describe(self) -> str:
        """`2 of 4 required items checked` (or `of 4 items` when none is required / mode any)."""
        if self.checklist.mode == "any":
            return f"{self.counted_checked} of {self.counted} items checked (any one is enough)"
        kind = "required items" if any(i.required for i in self.checklist.items) else "items"
        return f"{self.counted_checked} of {self.counted} {kind} checked"


def checklist_progress(checklist: Checklist, ticks: Mapping[str, bool] | None, context: Mapping) -> ChecklistProgress:
    """Progress of one checklist given the stored manual ticks and the issue context (for auto items)."""
    ticks = ticks or {}
    checked = set()
    for item in checklist.items:
        if item.check_type == "auto" and item.when is not None:
            if evaluate(item.when, context):
                checked.add(item.id)
        elif ticks.get(item.id):
            checked.add(item.id)
    if checklist.mode == "any":
        counted = list(checklist.items)
        complete = bool(checked)
    else:
        required = [i for i in checklist.items if i.required]
        counted = required or list(checklist.items)
        complete = all(i.id in checked for i in counted)
    counted_checked = sum(1 for i in counted if i.id in checked)
    return ChecklistProgress(checklist, frozenset(checked), complete, len(counted), counted_checked)


def all_progress(workflow: Workflow, ticks: Mapping[str, Mapping[str, bool]], context: Mapping) -> dict[str, ChecklistProgress]:
    """Progress of every checklist of the workflow, keyed by checklist id."""
    out = {}
    for state in workflow.states.values():
        for checklist_id, checklist in state.checklists.items():
            out[checklist_id] = checklist_progress(checklist, ticks.get(checklist_id), context)
    return out


def completion_map(workflow: Workflow, ticks: Mapping[str, Mapping[str, bool]], context: Mapping) -> dict[str, bool]:
    """{checklist id: complete} — the `checklists=` argument of `conditions.evaluate`."""
    return {cid: p.complete for cid, p in all_progress(workflow, ticks, context).items()}


def guard_checklists(cond: object) -> tuple[ChecklistComplete, ...]:
    """Checklist guards at the top level of a guard (a bare node or items of an `All`)."""
    from app.kiket.conditions import All

    if isinstance(cond, ChecklistComplete):
        return (cond,)
    if isinstance(cond, All):
        return tuple(c for c in cond.items if isinstance(c, ChecklistComplete))
    return ()


def tickable_checklists(workflow: Workflow, state: str) -> tuple[str, ...]:
    """Checklists that may be ticked in `state`: its own, and those guarding its outgoing transitions."""
    from app.kiket.runtime.transitions import leaves_from

    own = list(workflow.states[state].checklists) if state in workflow.states else []
    for transition in workflow.transitions:
        if leaves_from(workflow, transition, state):
            for guard in guard_checklists(transition.guard):
                if guard.id not in own:
                    own.append(guard.id)
            for checklist_id in transition.checklists:
                if checklist_id not in own:
                    own.append(checklist_id)
    return tuple(c for c in own if workflow.checklist(c) is not None)

"""What happens after a transition commits (spec §8.7) and checklist bookkeeping on state entry (§8.6)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from app.kiket.model import Action, Checklist, Transition, Workflow
from app.kiket.runtime.checklists import (
    ChecklistProgress, all_progress, checklist_progress, completion_map, guard_checklists, tickable_checklists,
)

__all__ = ["Phase", "ChecklistProgress", "plan_transition_effects", "plan_transition_phases", "plan_creation_effects",
           "checklists_to_reset", "checklist_completed", "checklist_complete_effects", "checklist_progress",
           "all_progress", "completion_map", "tickable_checklists"]

Phase = Literal["on_exit", "transition", "on_enter"]


def plan_transition_phases(workflow: Workflow, from_state: str, to_state: str,
                           transition: Transition | None) -> tuple[tuple[Phase, Action], ...]:
    """(phase, action) pairs in §8.7 order: old state's on_exit, the transition's actions, new state's on_enter."""
    out: list[tuple[Phase, Action]] = []
    old = workflow.states.get(from_state)
    new = workflow.states.get(to_state)
    if old is not None:
        out.extend(("on_exit", a) for a in old.hooks.get("on_exit", ()))
    if transition is not None:
        out.extend(("transition", a) for a in transition.actions)
    if new is not None:
        out.extend(("on_enter", a) for a in new.hooks.get("on_enter", ()))
    return tuple(out)


def plan_transition_effects(workflow: Workflow, from_state: str, to_state: str,
                            transition: Transition | None) -> tuple[Action, ...]:
    """The actions a transition runs after commit, in order."""
    return tuple(a for _, a in plan_transition_phases(workflow, from_state, to_state, transition))


def plan_creation_effects(workflow: Workflow) -> tuple[Action, ...]:
    """Creation runs the initial state's on_enter."""
    return tuple(workflow.states[workflow.initial].hooks.get("on_enter", ()))


def checklists_to_reset(workflow: Workflow, to_state: str, transition: Transition | None) -> tuple[str, ...]:
    """Checklists whose manual ticks reset on entering `to_state`: its own, minus those the transition guards.

    An issue arriving through a transition guarded by the checklist keeps its ticks (engineering's
    postmortem checklist is filled in `resolved`, then guards the move into `postmortem`).
    """
    state = workflow.states.get(to_state)
    if state is None:
        return ()
    kept: set[str] = set()
    if transition is not None:
        kept.update(g.id for g in guard_checklists(transition.guard))
        kept.update(transition.checklists)
    return tuple(cid for cid in state.checklists if cid not in kept)


def checklist_completed(workflow: Workflow, before: Mapping[str, Mapping[str, bool]], before_context: Mapping,
                        after: Mapping[str, Mapping[str, bool]], after_context: Mapping) -> tuple[Checklist, ...]:
    """Checklists that went from incomplete to complete between two moments (emit `checklist.completed`)."""
    was = completion_map(workflow, before, before_context)
    now = completion_map(workflow, after, after_context)
    out = []
    for cid, complete in now.items():
        if complete and not was.get(cid, False):
            checklist = workflow.checklist(cid)
            if checklist is not None:
                out.append(checklist)
    return tuple(out)


def checklist_complete_effects(workflow: Workflow, checklist_id: str) -> tuple[Action, ...]:
    """The owning state's `on_complete` actions, which run wherever the issue is."""
    checklist = workflow.checklist(checklist_id)
    if checklist is None:
        return ()
    owner = workflow.states.get(checklist.state)
    if owner is None:
        owner = next((s for s in workflow.states.values() if checklist_id in s.checklists), None)
    return tuple(owner.hooks.get("on_checklist_complete", ())) if owner is not None else ()

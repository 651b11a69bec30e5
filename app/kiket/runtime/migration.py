"""Workflow version pinning and migration (spec §3): preview where pinned issues go, then apply choices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from app.kiket.model import Workflow


@dataclass(frozen=True)
class StateMove:
    """Where the issues in one old state go; `target` None means someone must choose."""

    source: str
    target: str | None
    count: int
    reason: str

    @property
    def needs_choice(self) -> bool:
        """True when the source state no longer exists and no target has been chosen."""
        return self.target is None


@dataclass(frozen=True)
class MigrationPlan:
    """A previewed migration from one workflow version to another."""

    workflow: str
    old_version: str
    new_version: str
    moves: tuple[StateMove, ...]
    target_states: tuple[str, ...]
    free: bool = False

    @property
    def ready(self) -> bool:
        """True when every source state with issues has a target."""
        return all(m.target is not None for m in self.moves if m.count)

    @property
    def needs_choice(self) -> tuple[StateMove, ...]:
        """Moves still waiting for a chosen target."""
        return tuple(m for m in self.moves if m.target is None and m.count)

    def target_for(self, state: str) -> str | None:
        """The planned target of an old state key."""
        return next((m.target for m in self.moves if m.source == state), None)


def same_version(a: Workflow, b: Workflow) -> bool:
    """Equal normalized-form hashes: pinned issues move for free."""
    return a.id == b.id and a.version == b.version


def plan_migration(old: Workflow, new: Workflow, counts: Mapping[str, int]) -> MigrationPlan:
    """Per source state with issues: the same key if it still exists, else a unique case-insensitive match, else a choice."""
    folded: dict[str, list[str]] = {}
    for key in new.states:
        folded.setdefault(key.casefold(), []).append(key)
    sources = list(dict.fromkeys([*old.states, *counts]))
    moves = []
    for source in sources:
        count = int(counts.get(source, 0))
        if source in new.states:
            moves.append(StateMove(source, source, count, "state still exists"))
            continue
        matches = folded.get(source.casefold(), [])
        if len(matches) == 1:
            moves.append(StateMove(source, matches[0], count, f"renamed by case to '{matches[0]}'"))
            continue
        if count:
            moves.append(StateMove(source, None, count, f"state '{source}' was removed; choose a target"))
    return MigrationPlan(new.id, old.version, new.version, tuple(moves), tuple(new.states), same_version(old, new))


def apply_choice(plan: MigrationPlan, source: str, target: str) -> MigrationPlan:
    """The plan with `source`'s issues sent to `target` (which must be a state of the new version)."""
    if target not in plan.target_states:
        raise ValueError(f"'{target}' is not a state of the new version of workflow '{plan.workflow}'")
    if not any(m.source == source for m in plan.moves):
        raise ValueError(f"'{source}' has no issues to migrate")
    moves = tuple(replace(m, target=target, reason=f"chosen: '{target}'") if m.source == source else m
                  for m in plan.moves)
    return replace(plan, moves=moves)


def suggest_target(old: Workflow | None, source: str, new: Workflow) -> tuple[str, str]:
    """Where an issue in `source` (of `old`, when its definition is still known) goes in `new`, and why.

    The same state key (exactly, else ignoring case), else the first state of `new` with the same status
    category, else `new`'s initial state (§16: no stranded issues).
    """
    if source in new.states:
        return source, "same state"
    folded = [key for key in new.states if key.casefold() == source.casefold()]
    if len(folded) == 1:
        return folded[0], "same state, other letter case"
    state = old.states.get(source) if old is not None else None
    if state is not None:
        same_kind = [key for key, s in new.states.items() if s.category == state.category and s.kind == state.kind]
        same_category = same_kind or [key for key, s in new.states.items() if s.category == state.category]
        if same_category:
            return same_category[0], f"same category ({state.category})"
    return new.initial, "initial state"


def plan_stranded(old: Workflow | None, new: Workflow, counts: Mapping[str, int],
                  choices: Mapping[str, str] | None = None) -> MigrationPlan:
    """Issues of a workflow the new revision lacks (or of removed states), moved onto `new`: every state gets a
    suggested target, which `choices` (source state → target state of `new`) may override."""
    moves = []
    for source, count in counts.items():
        target, reason = suggest_target(old, source, new)
        moves.append(StateMove(source, target, int(count), reason))
    plan = MigrationPlan(new.id, old.version if old is not None else "", new.version, tuple(moves), tuple(new.states))
    for source, target in (choices or {}).items():
        if target and any(m.source == source for m in plan.moves):
            plan = apply_choice(plan, source, target)
    return plan

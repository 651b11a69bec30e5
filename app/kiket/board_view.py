"""Board materialization (spec §11): what a board shows, derived from the active configuration alone.

`materialize(config, board_id)` turns a `Board` into its layout: the columns with their states (per
workflow), WIP figures and policy, the automation hints of each column (what happens when a card
enters it), the "Unmapped" column, the swimlanes as §9 conditions, the quick filters as §9
conditions, and the card template. Nothing here reads issues: the service queries them with the
conditions built here, so a board is exactly what the YAML says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.kiket.conditions import All, Any as AnyOf, Compare, Condition, Not, evaluate, normalize_path
from app.kiket.diagnostics import Provenance
from app.kiket.model import Action, Automation, Board, CardTemplate, ConfigRevision, Workflow
from app.kiket.runtime.wip import wip_limit

UNMAPPED = "__unmapped__"
OTHER_LANE = "__other__"
PERSON_FIELDS = frozenset({"assignee", "reporter"})
# Events an automation reacts to when a card enters a column (§10.2); `issue.closed` only into final states.
ENTRY_EVENTS = frozenset({"issue.transitioned", "issue.closed"})
STATUS_PATHS = frozenset({"to_status", "status"})
ME = "@me"


@dataclass(frozen=True)
class Hint:
    """What happens when a card enters a column: one action, or one automation, and where it is written."""

    source: str  # "on_enter" | "transition" | "automation"
    title: str  # "On entering Fixing", "Transition 'Start fix'", "Automation 'Postmortem reminder'"
    actions: tuple[str, ...]
    prov: Provenance


@dataclass(frozen=True)
class ColumnLayout:
    """One column: its states per workflow, limit and policy, hints and provenance."""

    key: str
    name: str
    states: tuple[str, ...]
    state_labels: tuple[str, ...]
    wip_limit: int | None
    wip_policy: str
    color: str | None
    hints: tuple[Hint, ...]
    prov: Provenance
    unmapped: bool = False

    @property
    def dom_key(self) -> str:
        """The column key as it appears in element ids."""
        return dom_safe(self.key)


@dataclass(frozen=True)
class LaneLayout:
    """One swimlane: a declared value (matched per §9) or the trailing Other/Unassigned lane."""

    key: str
    label: str
    value: Any
    condition: Condition | None
    prov: Provenance


@dataclass(frozen=True)
class QuickFilterLayout:
    """A one-click filter, as a §9 condition (`@me` is replaced by the viewer's identity when applied)."""

    key: str
    label: str
    field: str
    values: tuple[Any, ...]
    prov: Provenance

    def condition(self, me: str | None) -> Condition:
        """The filter for a viewer: `field in values`, `@me` meaning the viewer."""
        values = tuple(me if value == ME else value for value in self.values)
        if len(values) == 1:
            return Compare(self.field, "eq", values[0])
        return Compare(self.field, "in", values)


@dataclass(frozen=True)
class BoardLayout:
    """A materialized board."""

    board: Board
    columns: tuple[ColumnLayout, ...]
    unmapped: ColumnLayout
    lane_field: str | None
    lanes: tuple[LaneLayout, ...]
    lanes_declared: bool
    quick_filters: tuple[QuickFilterLayout, ...]
    card: CardTemplate
    workflows: tuple[str, ...]
    base_filter: Condition | None

    @property
    def id(self) -> str:
        return self.board.id

    def column(self, key: str) -> ColumnLayout | None:
        """A column by key (the Unmapped column included)."""
        if key == UNMAPPED:
            return self.unmapped
        return next((c for c in self.columns if c.key == key), None)

    def column_of(self, state: str) -> ColumnLayout:
        """The column showing a state key; Unmapped when no column maps it."""
        return next((c for c in self.columns if state in c.states), self.unmapped)

    @property
    def mapped_states(self) -> tuple[str, ...]:
        return tuple(s for c in self.columns for s in c.states)

    def quick_filter(self, key: str) -> QuickFilterLayout | None:
        return next((q for q in self.quick_filters if q.key == key), None)

    def lane(self, key: str) -> LaneLayout | None:
        return next((lane for lane in self.lanes if lane.key == key), None)


def dom_safe(text: str) -> str:
    """A string usable inside an element id (letters, digits, `-`, `_`)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(text))


def board_list(config: ConfigRevision) -> list[Board]:
    """The boards of a configuration: declared boards first (file order), then the generated fallbacks."""
    return sorted(config.boards.values(), key=lambda b: (b.generated, b.prov.path or "", b.prov.line or 0, b.id))


def materialize(config: ConfigRevision, board_id: str) -> BoardLayout | None:
    """The layout of board `board_id` of the configuration, or None when there is no such board."""
    board = config.boards.get(board_id)
    if board is None:
        return None
    workflows = tuple(w for w in dict.fromkeys((board.workflow, *board.workflows)) if w in config.workflows)
    wfs = [config.workflows[w] for w in workflows]
    automations = [a for a in config.automations.values() if a.enabled]
    columns = tuple(_column(board, column, wfs, automations) for column in board.columns)
    unmapped = ColumnLayout(
        key=UNMAPPED, name="Unmapped", states=tuple(dict.fromkeys(s for _, s in board.unmapped_states)),
        state_labels=tuple(dict.fromkeys(_label(wfs, s) for _, s in board.unmapped_states)), wip_limit=None,
        wip_policy="warn", color=None, hints=(), prov=board.prov, unmapped=True)
    lanes, declared = _lanes(board)
    quick = tuple(QuickFilterLayout(key=f"q{index}", label=q.label, field=normalize_path(q.field) or q.field,
                                    values=tuple(q.values), prov=q.prov)
                  for index, q in enumerate(board.quick_filters))
    return BoardLayout(board=board, columns=columns, unmapped=unmapped,
                       lane_field=normalize_path(board.swimlanes.field) if board.swimlanes else None,
                       lanes=lanes, lanes_declared=declared, quick_filters=quick, card=board.card,
                       workflows=workflows, base_filter=board_filter(board))


def board_filter(board: Board) -> Condition | None:
    """The board's own filters (§11.1) as one §9 condition; None when it has none. Workflows are not included."""
    f = board.filters
    items: list[Condition] = []
    if f.issue_types:
        items.append(Compare("issue_type", "in", tuple(f.issue_types)))
    if f.labels:
        items.append(Compare("labels", "in", tuple(f.labels)))
    if f.priorities:
        items.append(Compare("priority", "in", tuple(f.priorities)))
    if f.states:
        items.append(Compare("status", "in", tuple(f.states)))
    if f.assignee:
        items.append(Compare("assignee", "eq", f.assignee))
    if not items:
        return None
    return items[0] if len(items) == 1 else All(tuple(items))


def _label(workflows: list[Workflow], state: str) -> str:
    for wf in workflows:
        if state in wf.states:
            return wf.states[state].label
    return state


def _column(board: Board, column, workflows: list[Workflow], automations: list[Automation]) -> ColumnLayout:
    return ColumnLayout(
        key=column.key, name=column.name, states=column.states,
        state_labels=tuple(_label(workflows, s) for s in column.states),
        wip_limit=wip_limit(column, workflows), wip_policy=column.wip_policy, color=column.color,
        hints=tuple(entry_hints(workflows, column.states, automations)), prov=column.prov)


def entry_hints(workflows: list[Workflow], states: tuple[str, ...], automations: list[Automation]) -> list[Hint]:
    """What happens when an issue enters one of `states`: on_enter actions, transition actions, automations."""
    hints: list[Hint] = []
    for wf in workflows:
        for key in states:
            state = wf.states.get(key)
            if state is None:
                continue
            on_enter = state.hooks.get("on_enter", ())
            if on_enter:
                hints.append(Hint("on_enter", f"On entering {state.label}", tuple(describe_action(a) for a in on_enter),
                                  on_enter[0].prov))
            for transition in wf.transitions:
                if transition.target == key and transition.actions:
                    hints.append(Hint("transition", f"Transition '{transition.name}'",
                                      tuple(describe_action(a) for a in transition.actions), transition.prov))
    seen: set[str] = set()
    for automation in automations:
        if automation.id in seen or not _reacts_to_entry(automation, workflows, states):
            continue
        seen.add(automation.id)
        hints.append(Hint("automation", f"Automation '{automation.name}'",
                          tuple(describe_action(a) for a in automation.actions), automation.prov))
    return hints


def _reacts_to_entry(automation: Automation, workflows: list[Workflow], states: tuple[str, ...]) -> bool:
    """True when the automation can fire because an issue entered one of `states`."""
    for wf in workflows:
        if automation.scope not in ("project", wf.id):
            continue
        for key in states:
            state = wf.states.get(key)
            if state is None:
                continue
            events = set(automation.events)
            if "issue.transitioned" not in events and not ("issue.closed" in events and state.is_final):
                continue
            if _may_hold_for(automation.condition, key):
                return True
    return False


def _may_hold_for(condition: Condition | None, state: str) -> bool:
    """Whether the status parts of a condition allow entering `state` (other fields are unknown, so allowed)."""
    if condition is None:
        return True
    if isinstance(condition, Compare):
        if condition.path in STATUS_PATHS:
            return evaluate(condition, {"to_status": state, "status": state})
        return True
    if isinstance(condition, All):
        return all(_may_hold_for(c, state) for c in condition.items)
    if isinstance(condition, AnyOf):
        return not condition.items or any(_may_hold_for(c, state) for c in condition.items)
    if isinstance(condition, Not):
        return True
    return True


def describe_action(action: Action) -> str:
    """A short phrase for an action: `notify assignee, roles qa`, `webhook POST https://…`."""
    p = action.params
    kind = action.type
    if kind == "notify":
        text = "notify " + _recipients(p.get("recipients"))
    elif kind == "webhook":
        text = f"webhook {str(p.get('method') or 'POST').upper()} {p.get('url', '')}"
    elif kind == "transition":
        text = f"move to {p.get('to', '?')}"
    elif kind == "assign":
        text = f"assign to {p.get('to', '?')}"
    elif kind == "set_field":
        field = p.get("field")
        if field is None and len(p) == 1:
            field, value = next(iter(p.items()))
        else:
            value = p.get("value")
        text = f"set {field} to {value}"
    elif kind in ("add_label", "remove_label"):
        labels = p.get("labels") or p.get("label")
        text = f"{'add' if kind == 'add_label' else 'remove'} label {_join(labels)}"
    elif kind == "add_comment":
        text = "add a comment"
    elif kind == "add_watcher":
        text = "add watchers " + _join([*(_list(p.get("users"))), *(_list(p.get("roles")))])
    elif kind == "escalate":
        text = f"escalate to {_join(p.get('to'))}"
    elif kind == "create_issue":
        text = f"create a {p.get('issue_type') or 'linked'} issue"
    elif kind == "schedule_reminder":
        text = f"remind after {p.get('delay', '?')}"
    elif kind == "request_approval":
        text = "request approval" + (f" from {_join(p.get('role') or p.get('approvers'))}"
                                     if p.get("role") or p.get("approvers") else "")
    else:
        agent = p.get("agent")
        text = kind + (f" ({agent})" if agent else "")
    if action.support != "core":
        text += " (not run: unsupported)"
    return text.strip()


def _list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _join(value: Any) -> str:
    return ", ".join(str(v) for v in _list(value)) or "?"


def _recipients(value: Any) -> str:
    if isinstance(value, dict):
        parts = []
        for key in ("user", "users", "fields", "roles"):
            items = _list(value.get(key))
            if items:
                parts.append(("roles " if key == "roles" else "") + ", ".join(str(i) for i in items))
        return "; ".join(parts) or "nobody"
    return _join(value)


def _lanes(board: Board) -> tuple[tuple[LaneLayout, ...], bool]:
    lanes = board.swimlanes
    if lanes is None:
        return (), False
    path = normalize_path(lanes.field) or lanes.field
    declared = tuple(LaneLayout(key=f"l{index}", label=lane.label, value=lane.value,
                                condition=Compare(path, "eq", lane.value), prov=lane.prov)
                     for index, lane in enumerate(lanes.values))
    other = LaneLayout(key=OTHER_LANE, label=lanes.other_label, value=None, condition=None, prov=lanes.prov)
    return declared + (other,), bool(declared)


def lane_of(layout: BoardLayout, context: dict) -> str:
    """The lane key of an issue (its plain §9 context): the first declared lane whose value matches, else Other."""
    for lane in layout.lanes:
        if lane.condition is not None and evaluate(lane.condition, context):
            return lane.key
    return OTHER_LANE

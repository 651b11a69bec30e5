"""Differences between two normalized configurations, per element (pure: no I/O, no framework)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from app.kiket.durations import format_duration
from app.kiket.model import ConfigRevision, to_plain

ChangeKind = Literal["added", "removed", "changed"]
ELEMENT_KINDS = ("workflow", "state", "transition", "board", "column", "issue_type", "role", "member", "automation")
# Fields of a parent compared through their own child elements, not as a change of the parent.
_CHILD_FIELDS = {"workflow": {"states", "transitions", "version"}, "board": {"columns"}}
# Nested values are compared key by key down to this depth; deeper differences show the whole value.
_NESTING = 4
_SHOWN = 160


@dataclass(frozen=True)
class ValueChange:
    """One changed key of an element (a dotted path into nested values), with its old and new value as text."""

    path: str
    old: str
    new: str


def show_value(value: Any) -> str:
    """A value as short text: `—` for none, lists of plain values joined, anything else as compact JSON."""
    if value is None or value == [] or value == {}:
        return "—"
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        text = ", ".join(map(str, value))
    elif isinstance(value, dict) and value.get("__type__"):
        text = json.dumps({k: v for k, v in value.items() if k != "__type__"}, sort_keys=True, ensure_ascii=False)
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 1] + "…"


def _value_changes(path: str, old: Any, new: Any, depth: int = 0) -> list[ValueChange]:
    if old == new:
        return []
    if depth < _NESTING and isinstance(old, dict) and isinstance(new, dict):
        return [change for key in sorted((set(old) | set(new)) - {"__type__"})
                for change in _value_changes(f"{path}.{key}", old.get(key), new.get(key), depth + 1)]
    if (depth < _NESTING and isinstance(old, list) and isinstance(new, list) and len(old) == len(new)
            and any(isinstance(v, (dict, list)) for v in old + new)):
        return [change for index, (a, b) in enumerate(zip(old, new))
                for change in _value_changes(f"{path}[{index}]", a, b, depth + 1)]
    if path.endswith("_s") and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (old, new)):
        return [ValueChange(path.removesuffix("_s"), format_duration(old), format_duration(new))]
    return [ValueChange(path, show_value(old), show_value(new))]


@dataclass(frozen=True)
class Change:
    """One element added, removed or changed; `parent` is the workflow or board of a state, transition or column."""

    kind: str
    key: str
    change: ChangeKind
    parent: str | None = None
    fields: tuple[str, ...] = ()
    values: tuple[ValueChange, ...] = ()

    @property
    def label(self) -> str:
        """`bug/fixing`-style name for display."""
        return f"{self.parent}/{self.key}" if self.parent else self.key


@dataclass(frozen=True)
class RevisionDiff:
    """All element changes from revision `a` (older) to `b` (newer)."""

    changes: tuple[Change, ...]

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def of_kind(self, kind: str) -> tuple[Change, ...]:
        """Changes of one element kind (`workflow`, `state`, `transition`, `board`, `column`, `issue_type`, `role`,
        `member`, `automation`)."""
        return tuple(c for c in self.changes if c.kind == kind)

    def find(self, kind: str, key: str, parent: str | None = None) -> Change | None:
        """The change of one element, or None when it did not change."""
        return next((c for c in self.changes if c.kind == kind and c.key == key and c.parent == parent), None)

    def counts(self) -> dict[str, dict[str, int]]:
        """`{kind: {added: n, removed: n, changed: n}}` for every element kind."""
        counts = {kind: {"added": 0, "removed": 0, "changed": 0} for kind in ELEMENT_KINDS}
        for change in self.changes:
            counts[change.kind][change.change] += 1
        return counts

    def removed_states(self) -> dict[str, tuple[str, ...]]:
        """`{workflow id: removed state keys}`, including every state of a removed workflow."""
        out: dict[str, list[str]] = {}
        for change in self.changes:
            if change.kind == "state" and change.change == "removed" and change.parent:
                out.setdefault(change.parent, []).append(change.key)
        return {wf: tuple(states) for wf, states in out.items()}


def _changed_fields(old: Any, new: Any, skip: set[str]) -> tuple[tuple[str, ...], tuple[ValueChange, ...]]:
    """The changed top-level keys of an element, and each changed (nested) key with its old and new value."""
    a, b = to_plain(old), to_plain(new)
    keys = sorted((set(a) | set(b)) - skip - {"__type__"})
    changed = tuple(k for k in keys if a.get(k) != b.get(k))
    return changed, tuple(v for k in changed for v in _value_changes(k, a.get(k), b.get(k)))


def _compare(kind: str, old: Mapping[str, Any], new: Mapping[str, Any], parent: str | None = None) -> list[Change]:
    changes: list[Change] = []
    skip = _CHILD_FIELDS.get(kind, set())
    for key in sorted(set(old) | set(new)):
        if key not in new:
            changes.append(Change(kind, key, "removed", parent))
        elif key not in old:
            changes.append(Change(kind, key, "added", parent))
        else:
            fields, values = _changed_fields(old[key], new[key], skip)
            if fields:
                changes.append(Change(kind, key, "changed", parent, fields, values))
    return changes


def diff_configs(a: ConfigRevision, b: ConfigRevision) -> RevisionDiff:
    """Element-by-element changes from configuration `a` to configuration `b` (provenance ignored)."""
    changes = _compare("workflow", a.workflows, b.workflows)
    for wf_id in sorted(set(a.workflows) | set(b.workflows)):
        old, new = a.workflows.get(wf_id), b.workflows.get(wf_id)
        old_states = dict(old.states) if old else {}
        new_states = dict(new.states) if new else {}
        changes += _compare("state", old_states, new_states, wf_id)
        if old and new:
            changes += _compare("transition", {t.id: t for t in old.transitions},
                                {t.id: t for t in new.transitions}, wf_id)
    changes += _compare("board", a.boards, b.boards)
    for board_id in sorted(set(a.boards) & set(b.boards)):
        changes += _compare("column", {c.key: c for c in a.boards[board_id].columns},
                            {c.key: c for c in b.boards[board_id].columns}, board_id)
    changes += _compare("issue_type", a.issue_types, b.issue_types)
    changes += _compare("role", a.team.roles, b.team.roles)
    changes += _compare("member", {m.identity: m for m in a.team.members}, {m.identity: m for m in b.team.members})
    changes += _compare("automation", a.automations, b.automations)
    return RevisionDiff(tuple(changes))

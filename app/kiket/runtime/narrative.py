"""An issue's history in words a person reads: "Ada moved it from Triaging to Fixing (Start fix)".

Pure: the caller passes what it read (audit event kinds and data, transition rows, automation run outcomes)
and `Names`, what the sentences call people, states, transitions, checklists, fields and automations by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from app.kiket.model import Workflow

STANDARD_FIELDS = {"title": "title", "description": "description", "priority": "priority", "assignee_id": "assignee",
                   "assignee": "assignee", "labels": "labels", "due_date": "due date", "custom_fields": "custom fields"}


@dataclass(frozen=True)
class Names:
    """What sentences call things by; anything unknown is called by its id."""

    workflow: Workflow | None = None
    people: Mapping[int, str] = field(default_factory=dict)
    automations: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=dict)

    def state(self, key: str | None) -> str:
        state = self.workflow.states.get(key) if self.workflow is not None and key else None
        return state.label if state is not None else (key or "?")

    def transition(self, transition_id: str | None) -> str | None:
        if self.workflow is None or not transition_id:
            return None
        return next((t.name for t in self.workflow.transitions if t.id == transition_id), None)

    def automation(self, automation_id: str | None) -> str:
        return f"Automation '{self.automations.get(automation_id or '', automation_id or '?')}'"

    def field(self, path: str) -> str:
        if path in self.fields:
            return self.fields[path]
        name = path.removeprefix("custom_fields.")
        return STANDARD_FIELDS.get(name, name.replace("_", " "))

    def checklist_item(self, checklist_id: str | None, item_id: str | None) -> str:
        checklist = self.workflow.checklist(checklist_id) if self.workflow is not None and checklist_id else None
        item = next((i for i in checklist.items if i.id == item_id), None) if checklist is not None else None
        label = item.label if item is not None else (item_id or "?")
        return f"'{label}'" + (f" ({checklist.title})" if checklist is not None and checklist.title else "")


def _and(parts: Iterable[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    parts = [p for p in parts if p]
    if len(parts) < 2:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def transition_sentence(actor: str, from_state: str | None, to_state: str, transition_id: str | None, names: Names,
                        *, forced: Mapping[str, Any] | None = None) -> str:
    """A transition row: created in a state, moved along a transition, or forced past its gates."""
    if from_state is None:
        return f"{actor} created it in {names.state(to_state)}"
    moved = f"from {names.state(from_state)} to {names.state(to_state)}"
    if forced:
        reason = forced.get("reason")
        skipped = [str(s) for s in forced.get("skipped") or ()]
        return (f"{actor} forced it {moved}" + (f": {reason}" if reason else "")
                + (f" (skipped: {'; '.join(skipped)})" if skipped else ""))
    name = names.transition(transition_id)
    return f"{actor} moved it {moved}" + (f" ({name})" if name else "")


def _person(names: Names, value: Any) -> str:
    if isinstance(value, int):
        return names.people.get(value, f"user {value}")
    return str(value) if value not in (None, "") else "nobody"


def _field_changes(data: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{field: (old, new)} from a person's edit ({f: {from, to}}) or an automation's ({changes: {f: [old, new]}})."""
    if isinstance(data.get("changes"), Mapping):
        return {k: tuple(v) if isinstance(v, (list, tuple)) and len(v) == 2 else (None, v)
                for k, v in data["changes"].items()}
    return {k: (v.get("from"), v.get("to")) for k, v in data.items() if isinstance(v, Mapping)}


def _changed(names: Names, changes: Mapping[str, tuple[Any, Any]]) -> str:
    parts = []
    for path, (old, new) in changes.items():
        label = names.field(path)
        if path in ("assignee_id", "assignee"):
            parts.append(f"assigned it to {_person(names, new)}" if new not in (None, "") else "unassigned it")
        elif path in ("description", "custom_fields") or isinstance(new, (dict, list)) and path != "labels":
            parts.append(f"changed the {label}")
        elif new in (None, "", []):
            parts.append(f"cleared the {label}")
        elif path == "labels":
            parts.append(f"set the labels to {', '.join(map(str, new))}")
        else:
            parts.append(f"set the {label} to {new}")
    return _and(parts) or "changed nothing"


_DONE = {"applied", "ok", "done"}


def _action_phrase(action: Mapping[str, Any], names: Names) -> str:
    """What one applied action did, as a verb phrase."""
    kind = action.get("type") or "action"
    detail = str(action.get("detail") or "")
    if kind == "notify":
        target = action.get("target")
        if not target:
            channel, _, count = detail.partition(": ")
            number = re.match(r"\d+", count)
            target = (_plural(int(number.group()), "person", "people") if channel == "in_app" and number
                      else channel or "someone")
        return f"notified {target}"
    if kind == "transition":
        return f"moved it to {names.state(detail.removeprefix('moved to '))}" if detail.startswith("moved to ") \
            else detail or "tried to move it"
    phrases = {"add_comment": "commented", "comment": "commented", "webhook": "called a webhook",
               "add_watcher": "added watchers", "create_issue": detail or "created an issue",
               "escalate": "escalated it", "request_approval": "asked for approval"}
    if kind in phrases:
        return phrases[kind]
    if kind in ("add_label", "remove_label"):  # detail: "added triaged" / "removed fresh, stale"
        verb, _, labels = detail.partition(" ")
        return f"{verb} the label{'s' if ',' in labels else ''} {labels}" if labels else kind.replace("_", " ")
    if kind in ("assign", "set_field"):
        return f"set {detail}" if detail else kind.replace("_", " ")
    return f"ran {kind.replace('_', ' ')}" + (f" ({detail})" if detail else "")


def automation_sentence(names: Names, automation_id: str | None, outcome: str,
                        actions: Iterable[Mapping[str, Any]] = ()) -> str:
    """An automation run: what its applied actions did, or why it did nothing."""
    who = names.automation(automation_id)
    if outcome == "awaiting_approval":
        return f"{who} waits for approval before it runs"
    if outcome.startswith("loop_stopped"):
        return f"{who} was stopped: {outcome.partition(': ')[2] or 'loop protection'}"
    actions = list(actions)
    done = [a for a in actions if a.get("status") in _DONE]
    skipped = [a for a in actions if a.get("status") == "skipped"]
    if outcome.startswith("failed"):
        return f"{who} failed: {outcome.partition(': ')[2] or outcome}"
    if done:
        sentence = f"{who} {_and(_action_phrase(a, names) for a in done)}"
        return sentence + (f" ({_plural(len(skipped), 'action')} skipped)" if skipped else "")
    if outcome not in _DONE:
        return f"{who}: {outcome}"
    return f"{who} ran" + (f"; {_plural(len(skipped), 'action')} skipped" if skipped else "")


def hooks_sentence(names: Names, data: Mapping[str, Any]) -> str:
    """A hooks run: "Hooks of Fixing ran: 2 actions, 1 skipped"."""
    actions = list(data.get("actions") or ())
    done = sum(a.get("status") in _DONE for a in actions)
    skipped = sum(a.get("status") == "skipped" for a in actions)
    failed = [a for a in actions if a.get("status") == "failed"]
    where = f"Hooks of {names.state(data['state'])}" if data.get("state") else "Hooks"
    counts = [_plural(done, "action")] + ([f"{skipped} skipped"] if skipped else [])
    counts += [f"{len(failed)} failed ({'; '.join(str(a.get('type')) + ': ' + str(a.get('detail')) for a in failed)})"] \
        if failed else []
    return f"{where} ran: {', '.join(counts)}"


def event_sentence(kind: str, actor: str, data: Mapping[str, Any], names: Names, *,
                   run_actions: Iterable[Mapping[str, Any]] = (), reason: str | None = None) -> str:
    """One audit event of an issue, as a sentence with `actor` ("Ada", "An automation", "Kiket") as its subject.

    `run_actions` are the outcomes of an automation run (its `automation.run` event names only the run);
    `reason` is what a person wrote with a decision.
    """
    data = data or {}
    if kind in ("issue.updated", "issue.assigned"):
        return f"{actor} {_changed(names, _field_changes(data))}"
    if kind == "approval.decided":
        verb = "approved" if data.get("decision") == "approved" else "denied"
        return f"{actor} {verb} it in {names.state(data.get('state'))}" + (f": {reason}" if reason else "")
    if kind == "checklist.ticked":
        verb = "checked" if data.get("checked") else "unchecked"
        return f"{actor} {verb} {names.checklist_item(data.get('checklist'), data.get('item'))}"
    if kind in ("issue.commented", "comment.added"):
        return f"{actor} commented"
    if kind == "attachment.added":
        return f"{actor} attached {data.get('filename') or 'a file'}"
    if kind == "watchers.added":
        return f"{actor} added {_plural(int(data.get('count') or 0), 'watcher')}"
    if kind == "hooks.run":
        return hooks_sentence(names, data)
    if kind == "automation.run":
        return automation_sentence(names, data.get("automation"), str(data.get("outcome") or ""), run_actions)
    if kind == "automation.approved":
        outcome = str(data.get("outcome") or "").split(" (approved by")[0]
        return f"{actor} approved the run of {names.automation(data.get('automation'))}" + (
            f": {outcome}" if outcome else "")
    if kind == "automation.denied":
        return f"{actor} denied the run of {names.automation(data.get('automation'))}" + (
            f": {data['reason']}" if data.get("reason") else "")
    if kind == "issue.migrated":
        moved = data.get("from_state") != data.get("to_state")
        return (f"{actor} moved it to the current version of its workflow"
                + (f", from {data.get('from_state')} to {names.state(data.get('to_state'))}" if moved else ""))
    if kind == "reminder.due":
        return f"A reminder in {names.state(data.get('state'))} was due: {data.get('outcome')}"
    if kind == "action.retried":
        return f"A {str(data.get('type') or 'action').replace('_', ' ')} action was retried: {data.get('detail')}"
    if kind == "issue.forced":
        return transition_sentence(actor, data.get("from"), data.get("to"), data.get("transition"), names, forced=data)
    return f"{actor}: {kind.replace('.', ' ').replace('_', ' ')}"

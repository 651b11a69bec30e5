"""Actions that change issues: fields, assignee, labels, comments, watchers, escalation, new issues, transitions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.kiket import model as km
from app.kiket.runtime.events import Event
from app.models.issues import Comment, Issue, Watcher
from app.queue import redis_connection
from app.services import audit
from app.services.runtime import events, issues, transitions
from app.services.runtime.effects import notify
from app.services.runtime.effects.scope import Scope, email_of, rotation_key, user_ids_of
from app.services.runtime.fields import (MAX_TEXT, MAX_TITLE, check_due_date, check_priority, clean_labels,
                                         validate_custom_fields)

# Fields an action edits on the row itself; anything else lands in custom_fields.
ROW_FIELDS = ("title", "description", "priority", "due_date", "labels", "assignee")


def transition(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    target = p["to"]
    if scope.workflow is not None and target not in scope.workflow.states:
        raise ValueError(f"'{target}' is not a state of workflow {scope.workflow.id}")
    if scope.issue.state == target:
        return f"already in {target}"
    transitions.apply_transition(scope.issue.id, None, target=target, as_automation=True, chain=chain)
    return f"moved to {target}"


def _save(scope: Scope, changes: dict[str, list[Any]], kind: str, chain: tuple[str, ...]) -> None:
    """Commit the issue's edited fields with an audit event and `issue.updated`."""
    if not changes:
        db.session.rollback()
        return
    audit.record(scope.project.id, kind, None, scope.issue.id,
                 {"changes": {k: [_json(v[0]), _json(v[1])] for k, v in changes.items()}, "by": "automation",
                  "chain": list(chain)})
    events.issue_updated(scope.issue.id, {k: (v[0], v[1]) for k, v in changes.items()}, None, chain=chain)
    db.session.commit()


def _json(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


class InvalidValue(ValueError):
    """A value an action would write fails the checks the issue pages apply: the action fails, nothing is stored,
    and it is not retried (the same value would fail again)."""


def checked_row_value(config: km.ConfigRevision, path: str, value: Any) -> Any:
    """A standard field's value as the issue page would store it; InvalidValue with the page's message."""
    problems: dict[str, Any] = {}
    if path == "title":
        value = str(value if value is not None else "").strip()
        if not value:
            problems[path] = "Give the issue a title."
        elif len(value) > MAX_TITLE:
            problems[path] = f"At most {MAX_TITLE} characters."
    elif path == "description":
        value = "" if value is None else str(value)
        if len(value) > MAX_TEXT:
            problems[path] = f"At most {MAX_TEXT} characters."
    elif path == "priority":
        value = check_priority(config, None if value is None else str(value), problems)
    elif path == "labels":
        items = value if isinstance(value, (list, tuple)) else [value]
        value = clean_labels([str(v) for v in items if v not in (None, "")], problems)
    elif path == "due_date":
        value = check_due_date(value, problems)
    if problems:
        raise InvalidValue(f"{path}: {problems[path]}")
    return value


def custom_field_def(config: km.ConfigRevision, issue: Issue, key: str) -> tuple[km.IssueType | None, km.FieldDef | None]:
    """The issue type and the declaration of custom field `key` in the active configuration (None when undeclared)."""
    itype = config.issue_types.get(issue.issue_type)
    return itype, next((f for f in itype.fields if f.key == key), None) if itype is not None else None


def checked_custom_value(itype: km.IssueType, fdef: km.FieldDef, value: Any, organization_id: int) -> Any:
    """A declared custom field's value typed and checked as the issue page does; InvalidValue with its message."""
    values, problems = validate_custom_fields(itype, {fdef.key: value}, organization_id=organization_id,
                                              partial=False, defaults=False)
    if fdef.key in problems:
        raise InvalidValue(f"custom_fields.{fdef.key}: {problems[fdef.key]}; nothing was stored")
    return values.get(fdef.key)


def set_issue_field(scope: Scope, path: str, value: Any) -> tuple[Any, Any] | None:
    """Set a standard or custom field of the row, checked as the issue page checks it; (old, new) when it
    changed, else None. A value the page would refuse raises InvalidValue."""
    issue = scope.issue
    if path.startswith("custom_fields."):
        path = path.split(".", 1)[1]
    elif path in ROW_FIELDS:
        if path == "assignee":
            old = email_of(issue.assignee)
            ids, _ = user_ids_of([value] if value else [])
            if value and not ids:
                raise InvalidValue(f"{value!r} is not an account")
            issue.assignee_id = ids[0] if ids else None
            return (old, value) if old != value else None
        value = checked_row_value(scope.active, path, value)
        old = getattr(issue, path)
        if old == value:
            return None
        setattr(issue, path, value)
        return (old, value)
    fields = dict(issue.custom_fields or {})
    parts = path.split(".")
    old = fields.get(parts[0])
    itype, fdef = custom_field_def(scope.active, issue, parts[0])
    if fdef is not None:
        if len(parts) > 1:
            raise InvalidValue(f"custom_fields.{parts[0]} is a {fdef.type} field; it has no part "
                               f"{'.'.join(parts[1:])!r}")
        value = checked_custom_value(itype, fdef, value, scope.project.organization_id)
    elif len(parts) > 1:
        nested = dict(old or {}) if isinstance(old, Mapping) else {}
        nested[".".join(parts[1:])] = value
        value = nested
    if old == value:
        return None
    fields[parts[0]] = value
    issue.custom_fields = fields
    return (old, value)


def assign(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    field_path = p.get("field") or "assignee"
    change = set_issue_field(scope, field_path, p["user"])
    if p.get("role") and p.get("rotation_index") is not None:
        redis_connection().hset(rotation_key(scope.project.id), p["role"], int(p["rotation_index"]))
    _save(scope, {field_path: list(change)} if change else {}, "issue.assigned", chain)
    return f"{field_path} = {p['user']}" + ("" if change else " (unchanged)")


def set_field(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    change = set_issue_field(scope, p["field"], p.get("value"))
    _save(scope, {p["field"]: list(change)} if change else {}, "issue.updated", chain)
    return f"{p['field']} = {p.get('value')!r}" + ("" if change else " (unchanged)")


def change_labels(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str,
                  remove: bool = False) -> str:
    old = list(scope.issue.labels or [])
    if remove:
        new = [label for label in old if label not in p["labels"]]
    else:
        new = old + [label for label in p["labels"] if label not in old]
    if new != old:
        scope.issue.labels = new
    _save(scope, {"labels": [old, new]} if new != old else {}, "issue.updated", chain)
    return ("removed " if remove else "added ") + ", ".join(p["labels"])


def add_label(scope, p, event, chain, tag):
    return change_labels(scope, p, event, chain, tag)


def remove_label(scope, p, event, chain, tag):
    return change_labels(scope, p, event, chain, tag, remove=True)


def comment(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    # author None is the system user, shown as "Kiket automation".
    comment = Comment(issue_id=scope.issue.id, author_id=None, body=p["body"])
    db.session.add(comment)
    db.session.flush()
    audit.record(scope.project.id, "comment.added", None, scope.issue.id,
                 {"comment_id": comment.id, "by": "automation", "chain": list(chain)})
    events.issue_commented(scope.issue.id, comment.id, None, chain=chain)
    db.session.commit()
    return f"comment {comment.id} added"


def add_watchers(issue_id: int, user_ids: Sequence[int]) -> int:
    """Add watchers that are not watching yet (the caller commits); returns how many were added."""
    existing = set(db.session.scalars(select(Watcher.user_id).where(Watcher.issue_id == issue_id)))
    fresh = [uid for uid in dict.fromkeys(user_ids) if uid not in existing]
    db.session.add_all(Watcher(issue_id=issue_id, user_id=uid) for uid in fresh)
    return len(fresh)


def watcher(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    ids, unknown = user_ids_of(p.get("users") or ())
    added = add_watchers(scope.issue.id, ids)
    if added:
        audit.record(scope.project.id, "watchers.added", None, scope.issue.id, {"count": added, "by": "automation"})
    db.session.commit()
    return f"{added} watcher(s) added" + (f"; not accounts: {', '.join(unknown)}" if unknown else "")


def escalate(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    notified = notify.notify(scope, {**p, "channel": "in_app"}, event, chain, tag)
    change_labels(scope, {"labels": (p.get("label") or "escalated",)}, event, chain, tag)
    return f"escalated; {notified}"


def create_issue(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    revision = scope.active
    issue_type = p.get("issue_type") or (scope.issue.issue_type if scope.issue is not None else None)
    if not issue_type:
        raise ValueError("create_issue needs an issue_type when the event has no issue")
    workflow = revision.workflows.get(p.get("workflow") or "") or revision.workflow_for(issue_type)
    if workflow is None:
        raise ValueError(f"no workflow for issue type {issue_type!r}")
    fields = dict(p.get("fields") or {})
    parent_id = scope.issue.id if scope.issue is not None and p.get("link") in ("child", "parent", "subtask") else None
    itype = revision.issue_types.get(issue_type)
    if itype is None:
        raise ValueError(f"unknown issue type {issue_type!r}")
    values, problems = validate_custom_fields(itype, fields, organization_id=scope.project.organization_id)
    if problems:
        raise ValueError(f"fields: {problems}")
    row = issues.insert_issue(
        scope.project, itype=itype, workflow=workflow, title=p["title"], description=p.get("description") or "",
        state=workflow.initial, priority=None, assignee_id=None, reporter_id=None, labels=[], due_date=None,
        custom_fields=values, parent_id=parent_id, actor_id=None, actor_kind="automation")
    events.issue_created(row.id, None, chain=chain)
    db.session.commit()
    return f"created {row.key}"

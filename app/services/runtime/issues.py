"""Issues: create and edit them, and who watches them, on the workflow version each one is pinned to (spec §3, §7).

Every rule comes from the pure runtime (`app.kiket.runtime`); this module loads rows, checks fields
(`fields`), persists, commits once, and records the change's events (`events`) in its transaction.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from app.extensions import db
from app.kiket import model as km
from app.models import Project, User
from app.models.base import utcnow
from app.models.issues import Issue, IssueTransition, Watcher
from app.services import audit
from app.services.errors import Conflict, Invalid
from app.services.projects import project_role
from app.services.runtime import events, issue_keys
from app.services.runtime.access import require, runtime_actor
from app.services.runtime.fields import (
    MAX_TEXT, MAX_TITLE, check_assignee, check_due_date, check_parent, check_priority, clean_labels,
    validate_custom_fields,
)
from app.services.runtime.issue_queries import load_issue
from app.services.sync import configuration

log = logging.getLogger(__name__)

EDITABLE = ("title", "description", "priority", "assignee_id", "labels", "due_date", "custom_fields")
CONFLICT_MESSAGE = "This issue was changed by someone else; reload it to see the latest version and try again."


def issue_type_for(config: km.ConfigRevision, key: str | None) -> km.IssueType | None:
    return config.issue_types.get(key) if key else None


def creatable_types(config: km.ConfigRevision) -> list[km.IssueType]:
    """Active issue types with a workflow, in position order (the type select of the form)."""
    return sorted((t for t in config.issue_types.values() if t.active and config.workflow_for(t.key) is not None),
                  key=lambda t: (t.position, t.key))


def pinning_revision_id(project_id: int) -> int | None:
    """The revision whose canonical copy holds the workflow versions new issues pin (None: bundled template)."""
    revision = configuration.active_revision(project_id)
    return revision.id if revision is not None and revision.repository_id is not None else None


def insert_issue(project: Project, *, itype: km.IssueType, workflow: km.Workflow, title: str, description: str,
                 state: str, priority: str | None, assignee_id: int | None, reporter_id: int | None,
                 labels: list[str], due_date: date | None, custom_fields: dict[str, Any], parent_id: int | None,
                 actor_id: int | None, actor_kind: str = "user") -> Issue:
    """Add an issue, its creation history row and its audit event to the current transaction (no commit)."""
    number = issue_keys.allocate_number(project.id)
    now = utcnow()
    issue = Issue(
        project_id=project.id, number=number, key=issue_keys.issue_key(project.key, number), issue_type=itype.key,
        title=title, description=description, state=state, priority=priority, assignee_id=assignee_id,
        reporter_id=reporter_id, labels=labels, due_date=due_date, custom_fields=custom_fields,
        parent_id=parent_id, workflow_id=workflow.id, workflow_version=workflow.version,
        config_revision_id=pinning_revision_id(project.id), state_entry=1, state_entered_at=now,
        resolved_at=now if state in workflow.finals or workflow.states[state].kind == "final" else None,
        created_at=now, updated_at=now,
    )
    db.session.add(issue)
    db.session.flush()
    db.session.add(IssueTransition(issue_id=issue.id, from_state=None, to_state=state, transition_id=None,
                                   actor_id=actor_id, actor_kind=actor_kind, at=now))
    audit.record(project.id, "issue.created", actor_id, issue.id, {
        "key": issue.key, "issue_type": itype.key, "title": title, "state": state, "workflow": workflow.id,
        "workflow_version": workflow.version,
    })
    return issue


def create_issue(project: Project, actor: User, *, issue_type: str, title: str, description: str = "",
                 priority: str | None = None, assignee_id: int | None = None, labels: Sequence[str] = (),
                 due_date: date | None = None, custom_fields: Mapping[str, Any] | None = None,
                 parent_id: int | None = None) -> Issue:
    """Create an issue of an active type on its workflow's current version, in the initial state."""
    config = configuration.project_config(project)
    runtime = runtime_actor(actor, project, config)
    require(runtime, "issue.create", "create issues")
    problems: dict[str, Any] = {}
    itype = issue_type_for(config, issue_type)
    workflow = config.workflow_for(issue_type) if itype else None
    if itype is None or workflow is None:
        raise Invalid({"issue_type": "Choose one of the issue types."})
    if not itype.active:
        raise Invalid({"issue_type": f"{itype.label} is no longer used for new issues."})
    title = (title or "").strip()
    if not title:
        problems["title"] = "Give the issue a title."
    elif len(title) > MAX_TITLE:
        problems["title"] = f"At most {MAX_TITLE} characters."
    if len(description or "") > MAX_TEXT:
        problems["description"] = f"At most {MAX_TEXT} characters."
    priority = check_priority(config, priority, problems)
    assignee = check_assignee(project, assignee_id, problems)
    if assignee is not None and assignee.id != actor.id:
        require(runtime, "issue.assign", "assign issues")
    label_list = clean_labels(labels, problems)
    parent = check_parent(project, itype, config, parent_id, problems)
    values, field_problems = validate_custom_fields(itype, custom_fields, organization_id=project.organization_id)
    problems.update({f"custom_fields.{k}": v for k, v in field_problems.items()})
    if problems:
        raise Invalid(problems)
    issue = insert_issue(
        project, itype=itype, workflow=workflow, title=title, description=description or "",
        state=workflow.initial, priority=priority, assignee_id=assignee.id if assignee else None,
        reporter_id=actor.id, labels=label_list, due_date=due_date, custom_fields=values,
        parent_id=parent.id if parent else None, actor_id=actor.id,
    )
    db.session.add(Watcher(issue_id=issue.id, user_id=actor.id))
    events.issue_created(issue.id, actor.id)
    db.session.commit()
    log.info("issue created key=%s type=%s workflow=%s@%s", issue.key, itype.key, workflow.id, workflow.version[:8])
    return issue


def update_issue(issue_id: int, actor: User, lock_version: int, **changes: Any) -> Issue:
    """Edit standard fields and custom fields inline; a stale `lock_version` is a Conflict."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise Invalid({k: "cannot be edited here" for k in sorted(unknown)})
    issue = load_issue(actor, issue_id)
    project = issue.project
    config = configuration.project_config(project)
    runtime = runtime_actor(actor, project, config)
    require(runtime, "issue.update", "edit issues")
    if lock_version is None or int(lock_version) != issue.lock_version:
        raise Conflict(CONFLICT_MESSAGE)
    problems: dict[str, Any] = {}
    diff: dict[str, tuple[Any, Any]] = {}

    def put(name: str, value: Any) -> None:
        old = getattr(issue, name)
        if old != value:
            diff[name] = (old, value)

    if "title" in changes:
        title = (changes["title"] or "").strip()
        if not title:
            problems["title"] = "Give the issue a title."
        elif len(title) > MAX_TITLE:
            problems["title"] = f"At most {MAX_TITLE} characters."
        put("title", title)
    if "description" in changes:
        description = changes["description"] or ""
        if len(description) > MAX_TEXT:
            problems["description"] = f"At most {MAX_TEXT} characters."
        put("description", description)
    if "priority" in changes:
        put("priority", check_priority(config, changes["priority"], problems))
    if "assignee_id" in changes:
        assignee = check_assignee(project, changes["assignee_id"], problems)
        new_id = assignee.id if assignee else None
        if new_id != issue.assignee_id:
            require(runtime, "issue.assign", "assign issues")
        put("assignee_id", new_id)
    if "labels" in changes:
        put("labels", clean_labels(changes["labels"], problems))
    if "due_date" in changes:
        put("due_date", check_due_date(changes["due_date"], problems))
    if "custom_fields" in changes:
        itype = config.issue_types.get(issue.issue_type)
        if itype is None:
            problems["custom_fields"] = f"The issue type {issue.issue_type!r} is no longer configured."
        else:
            values, field_problems = validate_custom_fields(itype, changes["custom_fields"],
                                                            organization_id=project.organization_id,
                                                            partial=False, defaults=False)
            # Inline edits send one field at a time: check required only for the fields sent.
            field_problems = {k: v for k, v in field_problems.items() if k in (changes["custom_fields"] or {})}
            problems.update({f"custom_fields.{k}": v for k, v in field_problems.items()})
            merged = {**(issue.custom_fields or {}), **values}
            put("custom_fields", {k: v for k, v in merged.items() if v is not None})
    if problems:
        raise Invalid(problems)
    if not diff:
        return issue
    for name, (_, new) in diff.items():
        setattr(issue, name, new)
    issue.updated_at = utcnow()
    try:
        # The mapper's version counter makes this `UPDATE … WHERE lock_version = :loaded`; flushing it before
        # the audit event takes the issue's row lock first, in the same order as the transition service.
        db.session.flush()
    except StaleDataError:
        db.session.rollback()
        raise Conflict(CONFLICT_MESSAGE) from None
    audit.record(project.id, "issue.updated", actor.id, issue.id,
                 {name: {"from": _plain(old), "to": _plain(new)} for name, (old, new) in diff.items()})
    events.issue_updated(issue.id, {k: (_plain(a), _plain(b)) for k, (a, b) in diff.items()}, actor.id)
    db.session.commit()
    return issue


def _plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def watch(issue_id: int, actor: User, *, user_id: int | None = None, watching: bool = True) -> Issue:
    """Start or stop watching an issue (yourself with issue.read; someone else with issue.update)."""
    issue = load_issue(actor, issue_id)
    config = configuration.project_config(issue.project)
    runtime = runtime_actor(actor, issue.project, config)
    require(runtime, "issue.read", "watch issues")
    target_id = user_id or actor.id
    if target_id != actor.id:
        require(runtime, "issue.update", "change who watches issues")
        target = db.session.get(User, target_id)
        if target is None or project_role(target, issue.project) is None:
            raise Invalid({"user_id": "Watchers must be members of the project."})
    row = db.session.scalar(select(Watcher).where(Watcher.issue_id == issue.id, Watcher.user_id == target_id))
    if watching and row is None:
        db.session.add(Watcher(issue_id=issue.id, user_id=target_id))
    elif not watching and row is not None:
        db.session.delete(row)
    else:
        return issue
    db.session.commit()
    return issue

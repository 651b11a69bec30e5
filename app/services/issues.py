"""Issues: create, edit, find and show them, on the workflow version each one is pinned to (spec §3, §7).

Every rule comes from the pure runtime (`app.kiket.runtime`); this module loads rows, builds
snapshots and actors, persists, commits once, and then calls `app.services.events`.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Mapping, NamedTuple, Sequence
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm.exc import StaleDataError

from app.extensions import db
from app.kiket import model as km
from app.kiket.calendar import BusinessHours
from app.kiket.runtime.approvals import approval_status, can_decide, gating_policy
from app.kiket.runtime.checklists import checklist_progress, tickable_checklists
from app.kiket.runtime.sla import SlaClock, state_clock
from app.kiket.runtime.snapshot import Actor, ApprovalRecord, IssueSnapshot, to_context
from app.kiket.runtime.transitions import Verdict, available_transitions, outgoing
from app.kiket.runtime.wip import WipInfo, column_for_state, wip_info, wip_limit
from app.models import ConfigRevision, Project, User
from app.models.audit import AuditEvent
from app.models.base import utcnow
from app.models.issues import (
    Approval, Attachment, ChecklistProgress, Comment, Issue, IssueTransition, Watcher,
)
from app.services import audit, events, issue_keys
from app.services.sync import configuration
from app.services.errors import Conflict, Forbidden, Invalid, NotFound
from app.services.prepared import Prepared
from app.services.projects import project_role

log = logging.getLogger(__name__)

# Built-in role grants (spec §6), used when a configuration does not spell them out.
BUILTIN_PERMISSIONS = {
    "owner": frozenset({"*"}),
    "admin": frozenset({"*"}),
    "member": frozenset({"project.read", "board.read", "issue.read", "issue.create", "issue.update",
                         "issue.transition", "issue.assign", "issue.comment", "issue.approve"}),
    "viewer": frozenset({"project.read", "issue.read", "board.read"}),
}
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,49}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TRUE_WORDS = {"true", "1", "yes", "on", "y"}
FALSE_WORDS = {"false", "0", "no", "off", "n", ""}
MAX_TITLE = 255
MAX_TEXT = 100_000
EDITABLE = ("title", "description", "priority", "assignee_id", "labels", "due_date", "custom_fields")
CONFLICT_MESSAGE = "This issue was changed by someone else; reload it to see the latest version and try again."


@dataclass(frozen=True)
class Page:
    """One page of a list."""

    items: list
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class ChecklistView:
    checklist: km.Checklist
    checked: frozenset[str]
    complete: bool
    summary: str
    tickable: bool


@dataclass(frozen=True)
class ApprovalView:
    """The approval asked for in the current state entry."""

    policy: km.ApprovalPolicy
    satisfied: bool
    denied: bool
    approved_by: tuple[str, ...]
    reasons: tuple[str, ...]
    decisions: list
    can_decide: bool
    why_not: str | None


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    kind: str
    actor: str
    text: str


@dataclass
class IssueView:
    """Everything the issue page shows, computed once."""

    issue: Issue
    project: Project
    config: km.ConfigRevision
    workflow: km.Workflow
    state: km.State | None
    issue_type: km.IssueType | None
    actor: Actor
    verdicts: tuple[Verdict, ...]
    checklists: list[ChecklistView]
    approval: ApprovalView | None
    sla: SlaClock | None
    comments: list[Comment]
    attachments: list[Attachment]
    watchers: list[User]
    watching: bool
    history: list[HistoryEntry]
    document_options: list[tuple[str, str]]
    members: list[User]
    can_update: bool
    can_comment: bool
    can_transition: bool
    pinned_outdated: bool = False
    fields: tuple[km.FieldDef, ...] = field(default_factory=tuple)


# Access, actors and configuration


def project_user_role(user: User, project: Project) -> str:
    """The user's project role; strangers get NotFound (not Forbidden), as `get_project` does."""
    role = project_role(user, project) if user is not None else None
    if role is None:
        raise NotFound("No such issue that you can see.")
    return role


def runtime_actor(user: User, project: Project, config: km.ConfigRevision, *, role: str | None = None) -> Actor:
    """The runtime's view of a user: membership role plus team.yaml roles, and their permissions.

    `role` is the project role when the caller has already looked it up (`project_user_role`).
    """
    roles = {role or project_user_role(user, project)}
    email = user.email.casefold()
    for member in config.team.members:
        if member.identity.lstrip("@").casefold() in (email, (user.name or "").casefold()):
            roles.update(member.roles)
    permissions: set[str] = set()
    for name in roles:
        role = config.team.roles.get(name)
        if role is not None:
            permissions |= role.permissions
        else:
            permissions |= BUILTIN_PERMISSIONS.get(name, frozenset())
    return Actor(identity=user.email, roles=frozenset(roles), permissions=frozenset(permissions))


AUTOMATION_ACTOR = Actor(identity="automation", roles=frozenset(), permissions=frozenset({"*"}), is_automation=True)


def require(actor: Actor, permission: str, what: str) -> None:
    """Raise Forbidden unless the actor holds `permission`."""
    if not actor.can(permission):
        raise Forbidden(f"You cannot {what} in this project (needs {permission}).")


def issue_workflow(issue: Issue, config: km.ConfigRevision | None = None) -> km.Workflow:
    """The workflow version the issue is pinned to: the active one if equal, else its pinning revision's copy."""
    config = config or configuration.project_config(issue.project)
    current = config.workflows.get(issue.workflow_id)
    if current is not None and current.version == issue.workflow_version:
        return current
    if issue.config_revision_id is not None:
        revision = db.session.get(ConfigRevision, issue.config_revision_id)
        if revision is not None and revision.repository_id is not None:
            try:
                pinned = configuration.revision_config(revision).workflows.get(issue.workflow_id)
            except configuration.ConfigUnavailable as exc:
                log.warning("pinned revision %s of issue %s unavailable: %s", revision.id, issue.key, exc)
                pinned = None
            if pinned is not None and pinned.version == issue.workflow_version:
                return pinned
    if current is not None:
        return current
    workflow = config.workflow_for(issue.issue_type)
    if workflow is None:
        raise NotFound(f"The workflow {issue.workflow_id!r} of {issue.key} is not available.")
    return workflow


def calendar_of(config: km.ConfigRevision) -> BusinessHours:
    return config.project.business_hours


def field_labels(config: km.ConfigRevision, issue_type: str) -> dict[str, str]:
    itype = config.issue_types.get(issue_type)
    labels = {f.key: f.label for f in itype.fields} if itype else {}
    labels.update({f"custom_fields.{k}": v for k, v in list(labels.items())})
    return labels


def documents_declared(config: km.ConfigRevision, issue_type: str) -> dict[str, str]:
    itype = config.issue_types.get(issue_type)
    return {d.key: d.label for d in itype.documents} if itype else {}


# Snapshots


def _roles_of(user: User | None, project: Project, config: km.ConfigRevision) -> frozenset[str]:
    if user is None:
        return frozenset()
    try:
        return runtime_actor(user, project, config).roles
    except NotFound:
        return frozenset()


class _IssueRow(NamedTuple):
    kind: str
    a: str | None
    b: str | None
    checked: bool | None
    user_id: int | None
    at: datetime | None
    reason: str | None


@functools.cache
def _issue_rows_statement() -> Prepared:
    """Watchers, checklist ticks, document tags and the current entry's approvals of an issue: one round trip."""
    issue_id = sa.bindparam("issue_id")
    text, flag, number = sa.cast(sa.null(), sa.String), sa.cast(sa.null(), sa.Boolean), sa.cast(sa.null(), sa.Integer)
    moment = sa.cast(sa.null(), Approval.at.type)

    def row(kind: str, a, b=text, checked=flag, user_id=number, at=moment, reason=text):
        return (sa.literal(kind), a, b, checked, user_id, at, reason)

    # The first select names the union's columns, as `_IssueRow` reads them.
    watchers = select(*(c.label(n) for c, n in zip(row("w", User.email), _IssueRow._fields))) \
        .join(Watcher, Watcher.user_id == User.id).where(Watcher.issue_id == issue_id)
    return Prepared(sa.union_all(
        watchers,
        select(*row("c", ChecklistProgress.checklist_id, ChecklistProgress.item_id, ChecklistProgress.checked))
        .where(ChecklistProgress.issue_id == issue_id),
        select(*row("d", Attachment.document_key)).where(Attachment.issue_id == issue_id,
                                                         Attachment.document_key.is_not(None)),
        select(*row("a", User.email, Approval.decision, flag, Approval.approver_id, Approval.at, Approval.reason))
        .select_from(Approval).outerjoin(User, User.id == Approval.approver_id)
        .where(Approval.issue_id == issue_id, Approval.state == sa.bindparam("state"),
               Approval.state_entry == sa.bindparam("state_entry")),
    ))


def snapshot_of(issue: Issue, config: km.ConfigRevision) -> IssueSnapshot:
    """The runtime's frozen picture of an issue and its rows (one query for the rows)."""
    db.session.flush()
    rows, _ = _issue_rows_statement().execute({"issue_id": issue.id, "state": issue.state,
                                               "state_entry": issue.state_entry})
    rows = [_IssueRow(*row) for row in rows]
    ticks: dict[str, dict[str, bool]] = {}
    for row in rows:
        if row.kind == "c":
            ticks.setdefault(row.a, {})[row.b] = bool(row.checked)
    return IssueSnapshot(
        id=issue.id, key=issue.key, title=issue.title, description=issue.description, status=issue.state,
        issue_type=issue.issue_type, workflow=issue.workflow_id, priority=issue.priority,
        assignee=issue.assignee.email if issue.assignee else None,
        reporter=issue.reporter.email if issue.reporter else None,
        labels=tuple(issue.labels or ()), due_date=issue.due_date,
        parent=issue.parent.key if issue.parent else None,
        created_at=issue.created_at, updated_at=issue.updated_at, resolved_at=issue.resolved_at,
        custom_fields=dict(issue.custom_fields or {}), state_entered_at=issue.state_entered_at,
        checklists=ticks, approvals=_approval_records([r for r in rows if r.kind == "a"], issue.project, config),
        documents=frozenset(r.a for r in rows if r.kind == "d"), watchers=tuple(r.a for r in rows if r.kind == "w"),
        project=issue.project.key,
    )


def _approval_records(rows, project: Project, config: km.ConfigRevision) -> tuple[ApprovalRecord, ...]:
    """Decisions of the issue's current state entry (earlier entries no longer count: approvals reset)."""
    rows = sorted(rows, key=lambda r: (r.at, r.user_id or 0))
    approvers = {u.id: u for u in db.session.scalars(select(User).where(
        User.id.in_({r.user_id for r in rows if r.user_id is not None})))} if rows else {}
    return tuple(
        ApprovalRecord(approver=row.a or f"user:{row.user_id}",
                       roles=_roles_of(approvers.get(row.user_id), project, config), decision=row.b,
                       at=row.at, reason=row.reason)
        for row in rows
    )


# WIP


def _matches_filters(issue: Issue, board: km.Board) -> bool:
    filters = board.filters
    if filters.issue_types and issue.issue_type not in filters.issue_types:
        return False
    if filters.labels and not set(filters.labels) & set(issue.labels or ()):
        return False
    if filters.priorities and (issue.priority or "") not in filters.priorities:
        return False
    if filters.states and issue.state not in filters.states:
        return False
    return True


def column_count(project_id: int, board: km.Board, column: km.Column) -> int:
    """Issues now in a board column: its states, on the board's workflows, matching the board's filters."""
    workflows = set(board.workflows) | {board.workflow}
    if board.filters.workflows:
        workflows &= set(board.filters.workflows)
    if not workflows or not column.states:
        return 0
    filters = board.filters
    by_fields = bool(filters.issue_types or filters.labels or filters.priorities or filters.states)
    db.session.flush()
    states, workflows = list(column.states), sorted(workflows)
    rows, _ = _column_statement(by_fields, len(states), len(workflows)).execute({
        "project_id": project_id, **{f"state_{n}": s for n, s in enumerate(states)},
        **{f"workflow_{n}": w for n, w in enumerate(workflows)}})
    if not by_fields:
        return rows[0][0]
    # Only the columns the filters read: no Issue objects to build for a count.
    return sum(1 for row in rows if _matches_filters(_ColumnRow(*row), board))


class _ColumnRow(NamedTuple):
    issue_type: str
    labels: list[str]
    priority: str | None
    state: str


@functools.cache
def _column_statement(by_fields: bool, states: int, workflows: int) -> Prepared:
    """A column's issues: counted by the database, or (with field filters) the fields the filters read."""
    columns = (Issue.issue_type, Issue.labels, Issue.priority, Issue.state) if by_fields else (func.count(),)
    return Prepared(select(*columns).select_from(Issue).where(
        Issue.project_id == sa.bindparam("project_id"),
        Issue.state.in_([sa.bindparam(f"state_{n}") for n in range(states)]),
        Issue.workflow_id.in_([sa.bindparam(f"workflow_{n}") for n in range(workflows)])))


def wip_for(issue: Issue, config: km.ConfigRevision, to_state: str) -> WipInfo | None:
    """WIP facts for moving `issue` to `to_state` on the active boards: a blocking overflow wins, else the first."""
    found: WipInfo | None = None
    for board in config.boards.values():
        if not _matches_filters(issue, board) or (board.filters.workflows and
                                                  issue.workflow_id not in board.filters.workflows):
            continue
        column = column_for_state(board, issue.workflow_id, to_state)
        if column is None:
            continue
        workflows = [config.workflows[w] for w in (set(board.workflows) | {board.workflow}) if w in config.workflows]
        if wip_limit(column, workflows) is None:
            continue
        info = wip_info(board, workflows, issue.workflow_id, issue.state, to_state,
                        column_count(issue.project_id, board, column))
        if info is None:
            continue
        if info.over_limit and info.policy == "block":
            return info
        found = found or info
    return found


# Custom fields


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or \
        (isinstance(value, (list, tuple)) and not value)


def _bound(fdef: km.FieldDef, number: float, unit: str = "") -> str | None:
    if fdef.min is not None and number < float(fdef.min):
        return f"must be at least {fdef.min}{unit}"
    if fdef.max is not None and number > float(fdef.max):
        return f"must be at most {fdef.max}{unit}"
    return None


def _option_values(fdef: km.FieldDef) -> dict[str, Any]:
    return {str(value).casefold(): value for value, _ in fdef.options}


def coerce_field(fdef: km.FieldDef, raw: Any, organization_id: int | None = None) -> Any:
    """One custom field value, typed per its FieldDef (spec §7); raises ValueError with a message."""
    kind = fdef.type
    if kind in ("string", "text", "markdown", "file"):
        text = str(raw).strip() if kind == "string" else str(raw)
        limit = 255 if kind == "string" else MAX_TEXT
        if len(text) > limit:
            raise ValueError(f"must be at most {limit} characters")
        problem = _bound(fdef, len(text), " characters") if (fdef.min is not None or fdef.max is not None) else None
        if problem:
            raise ValueError(problem)
        return text
    if kind in ("number", "integer"):
        if isinstance(raw, bool):
            raise ValueError("must be a number")
        try:
            number = float(str(raw).strip()) if not isinstance(raw, (int, float)) else float(raw)
        except ValueError:
            raise ValueError("must be a number" if kind == "number" else "must be a whole number") from None
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        if kind == "integer":
            if number != int(number):
                raise ValueError("must be a whole number")
            value: Any = int(number)
        else:
            value = int(number) if number == int(number) and abs(number) < 2**53 else number
        problem = _bound(fdef, number)
        if problem:
            raise ValueError(problem)
        return value
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().casefold()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError("must be true or false")
    if kind == "date":
        try:
            value = raw if isinstance(raw, date) and not isinstance(raw, datetime) else date.fromisoformat(str(raw).strip())
        except ValueError:
            raise ValueError("must be a date like 2026-01-31") from None
        problem = _date_bounds(fdef, value.isoformat())
        if problem:
            raise ValueError(problem)
        return value.isoformat()
    if kind == "datetime":
        try:
            moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw).strip())
        except ValueError:
            raise ValueError("must be a date and time like 2026-01-31T14:30") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        value_text = moment.astimezone(timezone.utc).isoformat()
        problem = _date_bounds(fdef, value_text)
        if problem:
            raise ValueError(problem)
        return value_text
    if kind == "enum":
        options = _option_values(fdef)
        key = str(raw).strip().casefold()
        if options and key not in options:
            raise ValueError("must be one of " + ", ".join(str(v) for v, _ in fdef.options))
        return options.get(key, str(raw).strip())
    if kind == "multi_enum":
        items = raw if isinstance(raw, (list, tuple)) else [p for p in str(raw).split(",")]
        options = _option_values(fdef)
        out = []
        for item in items:
            key = str(item).strip().casefold()
            if not key:
                continue
            if options and key not in options:
                raise ValueError(f"{item!s} is not one of " + ", ".join(str(v) for v, _ in fdef.options))
            value = options.get(key, str(item).strip())
            if value not in out:
                out.append(value)
        return out
    if kind == "email":
        text = str(raw).strip()
        if not EMAIL.match(text) or len(text) > 254:
            raise ValueError("must be an email address")
        return text
    if kind == "url":
        text = str(raw).strip()
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(text) > 2000:
            raise ValueError("must be an http(s) URL")
        return text
    if kind == "user":
        text = str(raw).strip()
        user = user_by_email(text, organization_id)
        if user is None:
            raise ValueError("must be the email of a user of this organization")
        return user.email
    return str(raw)


def _date_bounds(fdef: km.FieldDef, iso: str) -> str | None:
    if fdef.min is not None and iso < str(fdef.min):
        return f"must be on or after {fdef.min}"
    if fdef.max is not None and iso > str(fdef.max):
        return f"must be on or before {fdef.max}"
    return None


def user_by_email(email: str, organization_id: int | None) -> User | None:
    """The account with this email (case-insensitive), in the organization when one is given."""
    from app.models.accounts import OrganizationMembership

    query = select(User).where(func.lower(User.email) == email.casefold())
    if organization_id is not None:
        query = query.join(OrganizationMembership).where(OrganizationMembership.organization_id == organization_id)
    return db.session.scalar(query)


def validate_custom_fields(itype: km.IssueType, values: Mapping[str, Any] | None, *, organization_id: int | None,
                           partial: bool = False, defaults: bool = True) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed values per the issue type's fields, and problems keyed by field key (`partial`: no required check)."""
    values = dict(values or {})
    known = {f.key: f for f in itype.fields}
    out: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for key in values:
        if key not in known:
            problems[key] = f"is not a field of {itype.label}"
    for fdef in itype.fields:
        present = fdef.key in values
        raw = values.get(fdef.key)
        if not present and defaults and fdef.default is not None:
            raw, present = fdef.default, True
        if _blank(raw) and not (fdef.type == "boolean" and raw is not None and raw != ""):
            if fdef.required and not partial:
                problems[fdef.key] = f"{fdef.label} is required"
            elif present:
                out[fdef.key] = None
            continue
        try:
            value = coerce_field(fdef, raw, organization_id)
        except ValueError as exc:
            problems[fdef.key] = f"{fdef.label} {exc}"
            continue
        if fdef.required and not partial and _blank(value):
            problems[fdef.key] = f"{fdef.label} is required"
            continue
        out[fdef.key] = value
    return out, problems


def clean_labels(labels: Sequence[str] | str | None, problems: dict[str, Any]) -> list[str]:
    """Distinct valid labels from a list or a comma/space separated string; problems go into `problems`."""
    if isinstance(labels, str):
        labels = [p for p in re.split(r"[,\s]+", labels) if p]
    out: list[str] = []
    for label in labels or ():
        label = str(label).strip()
        if not label:
            continue
        if not LABEL.match(label):
            problems["labels"] = (f"'{label[:60]}' is not a valid label: use letters, digits and _ . : / + -, "
                                  "at most 50 characters")
            continue
        if label not in out:
            out.append(label)
    if len(out) > 20:
        problems["labels"] = "At most 20 labels."
    return out


def check_priority(config: km.ConfigRevision, priority: str | None, problems: dict[str, Any]) -> str | None:
    """The configured priority matching `priority` (any case), None when blank; else a problem."""
    if priority is None or not str(priority).strip():
        return None
    wanted = str(priority).strip().casefold()
    for known in config.project.priorities:
        if known.casefold() == wanted:
            return known
    problems["priority"] = "Choose one of " + ", ".join(config.project.priorities)
    return None


def _check_assignee(project: Project, assignee_id: int | None, problems: dict[str, Any]) -> User | None:
    if assignee_id in (None, "", 0):
        return None
    user = db.session.get(User, int(assignee_id))
    if user is None or project_role(user, project) is None:
        problems["assignee_id"] = "The assignee must be a member of the project."
        return None
    return user


# Create


def issue_type_for(config: km.ConfigRevision, key: str | None) -> km.IssueType | None:
    return config.issue_types.get(key) if key else None


def creatable_types(config: km.ConfigRevision) -> list[km.IssueType]:
    """Active issue types with a workflow, in position order (the type select of the form)."""
    return sorted((t for t in config.issue_types.values() if t.active and config.workflow_for(t.key) is not None),
                  key=lambda t: (t.position, t.key))


def _check_parent(project: Project, itype: km.IssueType, config: km.ConfigRevision, parent_id: int | None,
                  problems: dict[str, Any], *, issue_id: int | None = None) -> Issue | None:
    if parent_id in (None, "", 0):
        return None
    parent = db.session.get(Issue, int(parent_id))
    if parent is None or parent.project_id != project.id:
        problems["parent_id"] = "The parent must be an issue of this project."
        return None
    if issue_id is not None and parent.id == issue_id:
        problems["parent_id"] = "An issue cannot be its own parent."
        return None
    ptype = config.issue_types.get(parent.issue_type)
    if ptype is not None:
        if not ptype.allow_children:
            problems["parent_id"] = f"{ptype.label} issues cannot have children."
        elif ptype.child_types is not None and itype.key not in ptype.child_types:
            problems["parent_id"] = f"{ptype.label} issues accept only " + ", ".join(ptype.child_types) + " children."
    if itype.parent_types is not None and parent.issue_type not in itype.parent_types:
        problems["parent_id"] = f"{itype.label} issues can only sit under " + ", ".join(itype.parent_types) + "."
    return parent


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
    assignee = _check_assignee(project, assignee_id, problems)
    if assignee is not None and assignee.id != actor.id:
        require(runtime, "issue.assign", "assign issues")
    label_list = clean_labels(labels, problems)
    parent = _check_parent(project, itype, config, parent_id, problems)
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


# Read


def load_issue(actor: User | None, issue_id: int, *, as_automation: bool = False) -> Issue:
    """The issue by id if the actor may see it (strangers: NotFound)."""
    issue = db.session.get(Issue, issue_id)
    if issue is None:
        raise NotFound("No such issue that you can see.")
    if not as_automation:
        project_user_role(actor, issue.project)
    return issue


def get_issue(actor: User, project_key: str, number_or_key: int | str) -> Issue:
    """An issue by project key and number (`42`) or key (`ENG-42`), if the actor may read it."""
    from app.services.projects import get_project

    project = get_project(actor, project_key)
    text = str(number_or_key).strip()
    if "-" in text:
        prefix, _, text = text.rpartition("-")
    if not text.isdigit():
        raise NotFound("No such issue that you can see.")
    issue = db.session.scalar(select(Issue).where(Issue.project_id == project.id, Issue.number == int(text)))
    if issue is None:
        raise NotFound(f"No issue {project.key}-{text} that you can see.")
    config = configuration.project_config(project)
    require(runtime_actor(actor, project, config), "issue.read", "read issues")
    return issue


def list_issues(actor: User, project: Project, *, state: str | None = None, issue_type: str | None = None,
                assignee: str | int | None = None, label: str | None = None, text: str | None = None,
                page: int = 1, per_page: int = 50) -> Page:
    """The project's issues matching the filters, newest first, one page at a time."""
    config = configuration.project_config(project)
    require(runtime_actor(actor, project, config), "issue.read", "read issues")
    query = select(Issue).where(Issue.project_id == project.id)
    if state:
        query = query.where(Issue.state == state)
    if issue_type:
        query = query.where(Issue.issue_type == issue_type)
    if assignee not in (None, ""):
        if assignee == "@me":
            query = query.where(Issue.assignee_id == actor.id)
        elif assignee == "none":
            query = query.where(Issue.assignee_id.is_(None))
        elif str(assignee).isdigit():
            query = query.where(Issue.assignee_id == int(assignee))
        else:
            query = query.join(User, User.id == Issue.assignee_id).where(func.lower(User.email) == str(assignee).casefold())
    if label:
        query = query.where(cast(Issue.labels, String).contains(f'"{label.strip()}"', autoescape=True))
    if text and text.strip():
        needle = text.strip()
        query = query.where(or_(Issue.title.ilike(f"%{_like(needle)}%", escape="\\"),
                                Issue.key.ilike(f"%{_like(needle)}%", escape="\\"),
                                Issue.description.ilike(f"%{_like(needle)}%", escape="\\")))
    per_page = max(1, min(int(per_page or 50), 200))
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    pages = max(1, math.ceil(total / per_page))
    page = max(1, min(int(page or 1), pages))
    items = list(db.session.scalars(query.order_by(Issue.number.desc()).offset((page - 1) * per_page).limit(per_page)))
    return Page(items, total, page, pages)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def require_project_permission(actor: User, project: Project, permission: str, what: str) -> None:
    """Forbidden unless the actor holds `permission` in the project (strangers: NotFound)."""
    require(runtime_actor(actor, project, configuration.project_config(project)), permission, what)


def members(project: Project) -> list[User]:
    """People who can be assigned or picked for user fields: the project's members."""
    from app.models import ProjectMembership

    users = list(db.session.scalars(select(User).join(ProjectMembership).where(
        ProjectMembership.project_id == project.id).order_by(User.email)))
    return users


# Update


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
        assignee = _check_assignee(project, changes["assignee_id"], problems)
        new_id = assignee.id if assignee else None
        if new_id != issue.assignee_id:
            require(runtime, "issue.assign", "assign issues")
        put("assignee_id", new_id)
    if "labels" in changes:
        put("labels", clean_labels(changes["labels"], problems))
    if "due_date" in changes:
        put("due_date", changes["due_date"])
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


# Watchers


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


# The detail page


def _approval_view(issue: Issue, workflow: km.Workflow, snapshot: IssueSnapshot, runtime: Actor,
                   context: Mapping) -> ApprovalView | None:
    policy = active_policy(workflow, issue.state)
    if policy is None:
        return None
    status = approval_status(policy, snapshot.approvals, context)
    record = ApprovalRecord(approver=runtime.identity, roles=runtime.roles)
    why = can_decide(policy, record, snapshot.approvals, context, may_approve=runtime.can("issue.approve"))
    decisions = list(db.session.scalars(select(Approval).where(
        Approval.issue_id == issue.id, Approval.state == issue.state, Approval.state_entry == issue.state_entry,
    ).order_by(Approval.at)))
    return ApprovalView(policy, status.satisfied, status.denied, status.approved_by, status.reasons, decisions,
                        why is None, why)


def active_policy(workflow: km.Workflow, state: str) -> km.ApprovalPolicy | None:
    """The approval policy asked for in `state`: the first one gating a way out, else the state's own."""
    for transition in outgoing(workflow, state):
        policy = gating_policy(workflow, transition, state)
        if policy is not None:
            return policy
    current = workflow.states.get(state)
    return current.approval if current is not None else None


def history(issue: Issue) -> list[HistoryEntry]:
    """State changes and audited facts, oldest first."""
    users: dict[int, str] = {}

    def who(user_id: int | None, kind: str = "user") -> str:
        if user_id is None:
            return "system" if kind == "user" else kind
        if user_id not in users:
            user = db.session.get(User, user_id)
            users[user_id] = user.display_name if user else f"user {user_id}"
        return users[user_id]

    out = []
    for row in db.session.scalars(select(IssueTransition).where(IssueTransition.issue_id == issue.id)):
        text = f"created in {row.to_state}" if row.from_state is None else f"{row.from_state} → {row.to_state}"
        if row.transition_id:
            text += f" ({row.transition_id})"
        out.append(HistoryEntry(row.at, "transition", who(row.actor_id, row.actor_kind), text))
    for event in db.session.scalars(select(AuditEvent).where(AuditEvent.project_id == issue.project_id,
                                                             AuditEvent.issue_id == issue.id)):
        if event.kind in ("issue.created", "issue.transitioned"):
            continue
        out.append(HistoryEntry(event.created_at, event.kind, who(event.actor_id), _describe_event(event)))
    return sorted(out, key=lambda e: e.at)


def _describe_event(event: AuditEvent) -> str:
    data = event.data or {}
    if event.kind == "issue.updated":
        names = {"assignee_id": "assignee", "due_date": "due date", "custom_fields": "custom fields"}
        return "changed " + ", ".join(names.get(k, k) for k in sorted(data))
    if event.kind == "approval.decided":
        return f"{data.get('decision')} in {data.get('state')}"
    if event.kind == "checklist.ticked":
        return f"{'checked' if data.get('checked') else 'unchecked'} {data.get('checklist')}/{data.get('item')}"
    if event.kind == "issue.commented":
        return "commented"
    if event.kind == "attachment.added":
        return f"attached {data.get('filename')}"
    return event.kind


def issue_view(actor: User, issue: Issue, *, now: datetime | None = None) -> IssueView:
    """Everything the detail page needs, on the issue's pinned workflow version."""
    project = issue.project
    config = configuration.project_config(project)
    runtime = runtime_actor(actor, project, config)
    require(runtime, "issue.read", "read issues")
    now = now or utcnow()
    workflow = issue_workflow(issue, config)
    snapshot = snapshot_of(issue, config)
    calendar = calendar_of(config)
    context = to_context(snapshot, now, actor=runtime, workflow=workflow, calendar=calendar)
    wip_by_target = {}
    for transition in outgoing(workflow, issue.state):
        info = wip_for(issue, config, transition.target)
        if info is not None:
            wip_by_target[transition.target] = info
    verdicts = available_transitions(
        workflow, snapshot, actor=runtime, now=now, wip_by_target=wip_by_target,
        documents_declared=documents_declared(config, issue.issue_type),
        field_labels=field_labels(config, issue.issue_type), calendar=calendar,
    )
    tickable = set(tickable_checklists(workflow, issue.state))
    checklists = []
    # The state's own checklists and those guarding its ways out, in ticking order.
    for checklist_id in tickable_checklists(workflow, issue.state):
        checklist = workflow.checklist(checklist_id)
        progress = checklist_progress(checklist, snapshot.checklists.get(checklist_id), context)
        checklists.append(ChecklistView(checklist, progress.checked, progress.complete, progress.describe(),
                                        checklist_id in tickable and runtime.can("issue.update")))
    current = workflow.states.get(issue.state)
    sla = state_clock(workflow, issue.state, issue.state_entered_at, now, calendar, context) if current else None
    itype = config.issue_types.get(issue.issue_type)
    type_docs = [(d.key, d.label) for d in itype.documents] if itype else []
    required_docs = [(k, k.replace("_", " ").capitalize()) for k in (current.required_documents if current else ())
                     if k not in {d for d, _ in type_docs}]
    watchers = list(db.session.scalars(select(User).join(Watcher, Watcher.user_id == User.id)
                                       .where(Watcher.issue_id == issue.id).order_by(User.email)))
    active = config.workflows.get(issue.workflow_id)
    return IssueView(
        issue=issue, project=project, config=config, workflow=workflow, state=current, issue_type=itype,
        actor=runtime, verdicts=verdicts, checklists=checklists,
        approval=_approval_view(issue, workflow, snapshot, runtime, context), sla=sla,
        comments=list(db.session.scalars(select(Comment).where(Comment.issue_id == issue.id)
                                         .order_by(Comment.created_at, Comment.id))),
        attachments=list(db.session.scalars(select(Attachment).where(Attachment.issue_id == issue.id)
                                            .order_by(Attachment.created_at, Attachment.id))),
        watchers=watchers, watching=any(w.id == actor.id for w in watchers), history=history(issue),
        document_options=type_docs + required_docs, members=members(project),
        can_update=runtime.can("issue.update"), can_comment=runtime.can("issue.comment"),
        can_transition=runtime.can("issue.transition"),
        pinned_outdated=active is not None and active.version != issue.workflow_version,
        fields=itype.fields if itype else (),
    )


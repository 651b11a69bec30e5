"""The runtime's picture of an issue: its pinned workflow version, its snapshot, and what its type declares."""

from __future__ import annotations

import functools
import logging
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy import select

from app.extensions import db
from app.kiket import model as km
from app.kiket.calendar import BusinessHours
from app.kiket.runtime.approvals import gating_policy
from app.kiket.runtime.snapshot import ApprovalRecord, IssueSnapshot
from app.kiket.runtime.transitions import outgoing
from app.models import ConfigRevision, Project, User
from app.models.issues import Approval, Attachment, ChecklistProgress, Issue, Watcher
from app.services.errors import NotFound
from app.services.prepared import Prepared
from app.services.runtime.access import is_org_admin, runtime_actor
from app.services.sync import configuration

log = logging.getLogger(__name__)

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


def active_policy(workflow: km.Workflow, state: str) -> km.ApprovalPolicy | None:
    """The approval policy asked for in `state`: the first one gating a way out, else the state's own."""
    for transition in outgoing(workflow, state):
        policy = gating_policy(workflow, transition, state)
        if policy is not None:
            return policy
    current = workflow.states.get(state)
    return current.approval if current is not None else None


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
                       at=row.at, reason=row.reason, org_admin=is_org_admin(approvers.get(row.user_id), project))
        for row in rows
    )

"""What one event's effects work on: the issue, its pinned and active configurations, the clock, the people."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select

from app.extensions import db
from app.kiket import model as km
from app.kiket.runtime.directives import Directory
from app.kiket.runtime.events import Event
from app.kiket.runtime.snapshot import Actor, ApprovalRecord, IssueSnapshot, template_context
from app.models.accounts import User
from app.models.base import utcnow
from app.models.issues import Approval, Attachment, ChecklistProgress, Issue, Watcher
from app.models.projects import Project, ProjectMembership
from app.models.repositories import ConfigRevision
from app.queue import redis_connection
from app.services.runtime.access import is_org_admin
from app.services.sync import configuration
from app.services.webhooks.secrets import secrets_for

log = logging.getLogger(__name__)

@dataclass
class Outcome:
    """What one action did: `applied`, `skipped` or `failed`, with a reason in words."""

    phase: str
    action_type: str
    status: str
    detail: str = ""
    missing: tuple[str, ...] = ()
    # Whom a notify was for, as the configuration wrote it ("@oncall", "#oncall"): the history names it.
    target: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"phase": self.phase, "type": self.action_type, "status": self.status, "detail": self.detail}
        if self.missing:
            out["missing"] = list(self.missing)
        if self.target:
            out["target"] = self.target
        return out


@dataclass
class Scope:
    """Everything one event needs: the issue, its pinned workflow, the active configuration and the clock.

    Issue-free events (`workflow.updated`, `schedule.cron`) have no issue: `issue` and `workflow` are None and
    `pinned` is the active configuration.
    """

    issue: Issue | None
    project: Project
    pinned: km.ConfigRevision
    active: km.ConfigRevision
    workflow: km.Workflow | None
    now: datetime
    directory: Directory
    _secrets: dict[str, str] | None = field(default=None, repr=False)

    @property
    def calendar(self):
        return self.active.project.business_hours

    def secrets(self) -> dict[str, str]:
        if self._secrets is None:
            self._secrets = secrets_for(self.project.id)
        return self._secrets


def config_for(issue: Issue) -> km.ConfigRevision:
    """The configuration holding the issue's pinned workflow version (else the project's active one)."""
    if issue.config_revision_id:
        row = db.session.get(ConfigRevision, issue.config_revision_id)
        if row is not None and row.repository_id is not None:
            try:
                return configuration.revision_config(row)
            except configuration.ConfigUnavailable as error:
                log.warning("pinned revision %s of %s unavailable: %s", row.id, issue.key, error)
    return configuration.project_config(issue.project)


def load_scope(issue_id: int, now: datetime | None = None) -> Scope | None:
    """The scope of an event on one issue, or None when the issue is gone."""
    issue = db.session.get(Issue, issue_id)
    if issue is None:
        return None
    project = issue.project
    active = configuration.project_config(project)
    pinned = config_for(issue)
    workflow = pinned.workflows.get(issue.workflow_id) or active.workflows.get(issue.workflow_id)
    return Scope(issue, project, pinned, active, workflow, now or utcnow(), directory_for(project, active))


def load_project_scope(project_id: int, now: datetime | None = None) -> Scope | None:
    """The scope of an issue-free event of a project, or None when the project is gone."""
    project = db.session.get(Project, project_id)
    if project is None:
        return None
    active = configuration.project_config(project)
    return Scope(None, project, active, active, None, now or utcnow(), directory_for(project, active))


def email_of(user: User | None) -> str | None:
    return user.email if user is not None else None


def team_roles(revision: km.ConfigRevision, identity: str | None) -> frozenset[str]:
    """Roles a person holds in the configuration's team (identities are e-mail addresses)."""
    if not identity:
        return frozenset()
    folded = identity.casefold()
    return frozenset(r for m in revision.team.members if m.identity.casefold() == folded for r in m.roles)


def actor_for(user_id: int | None, chain: Sequence[str], revision: km.ConfigRevision) -> Actor | None:
    """The event's actor: the automation at the end of the chain, else the user (None: the system)."""
    if chain:
        return Actor(chain[-1], is_automation=True)
    if user_id is None:
        return None
    user = db.session.get(User, user_id)
    if user is None:
        return None
    return Actor(user.email, roles=team_roles(revision, user.email))


def snapshot_of(issue: Issue, revision: km.ConfigRevision) -> IssueSnapshot:
    """The runtime's frozen view of an issue row and its runtime rows."""
    ticks: dict[str, dict[str, bool]] = {}
    for row in db.session.scalars(select(ChecklistProgress).where(ChecklistProgress.issue_id == issue.id)):
        ticks.setdefault(row.checklist_id, {})[row.item_id] = bool(row.checked)
    approvals = tuple(
        ApprovalRecord(approver=email_of(row.approver) or "", roles=team_roles(revision, email_of(row.approver)),
                       decision=row.decision, at=row.at, reason=row.reason,
                       org_admin=is_org_admin(row.approver, issue.project))
        for row in db.session.scalars(select(Approval).where(
            Approval.issue_id == issue.id, Approval.state == issue.state, Approval.state_entry == issue.state_entry)
            .order_by(Approval.at, Approval.id)))
    documents = frozenset(d for d in db.session.scalars(
        select(Attachment.document_key).where(Attachment.issue_id == issue.id, Attachment.document_key.is_not(None))))
    watchers = tuple(db.session.scalars(
        select(User.email).join(Watcher, Watcher.user_id == User.id).where(Watcher.issue_id == issue.id)
        .order_by(Watcher.id)))
    parent = db.session.scalar(select(Issue.key).where(Issue.id == issue.parent_id)) if issue.parent_id else None
    return IssueSnapshot(
        id=issue.id, key=issue.key, title=issue.title, description=issue.description, status=issue.state,
        issue_type=issue.issue_type, workflow=issue.workflow_id, priority=issue.priority,
        assignee=email_of(issue.assignee), reporter=email_of(issue.reporter), labels=tuple(issue.labels or ()),
        due_date=issue.due_date, parent=parent, created_at=issue.created_at, updated_at=issue.updated_at,
        resolved_at=issue.resolved_at, custom_fields=dict(issue.custom_fields or {}),
        state_entered_at=issue.state_entered_at, checklists=ticks, approvals=approvals, documents=documents,
        watchers=watchers, project=issue.project.key,
    )


def directory_for(project: Project, revision: km.ConfigRevision) -> Directory:
    """Role members (team.yaml, plus project membership roles), known users, open-issue load, rotation cursors."""
    role_members: dict[str, list[str]] = {name: [] for name in revision.team.roles}
    for member in revision.team.members:
        for role in member.roles:
            role_members.setdefault(role, []).append(member.identity)
    memberships = db.session.execute(
        select(ProjectMembership.role, User.email).join(User, User.id == ProjectMembership.user_id)
        .where(ProjectMembership.project_id == project.id).order_by(ProjectMembership.id)).all()
    for role, email in memberships:
        role_members.setdefault(role, []).append(email)
    users = frozenset(db.session.scalars(select(User.email)))
    load = dict(db.session.execute(
        select(User.email, func.count(Issue.id)).join(Issue, Issue.assignee_id == User.id)
        .where(Issue.project_id == project.id, Issue.resolved_at.is_(None)).group_by(User.email)).all())
    rotation = {}
    try:
        raw = redis_connection().hgetall(rotation_key(project.id))
        rotation = {k.decode(): int(v) for k, v in raw.items()}
    except Exception as error:  # noqa: BLE001 - no rotation memory just means starting over
        log.warning("rotation cursors unavailable project=%s: %s", project.id, error)
    return Directory(role_members={k: tuple(v) for k, v in role_members.items()}, users=users, load=load,
                     rotation=rotation)


def rotation_key(project_id: int) -> str:
    return f"kiket:rotation:{project_id}"


def template_ctx(scope: Scope, event: Event | None, actor: Actor | None = None) -> dict[str, Any]:
    """The §12 template roots for the current state of the issue (none for issue-free events)."""
    snapshot = snapshot_of(scope.issue, scope.pinned) if scope.issue is not None else None
    return template_context(
        snapshot, scope.now, event, actor, workflow=scope.workflow, calendar=scope.calendar,
        project={"id": scope.project.id, "key": scope.project.key, "name": scope.project.name},
        issue_url=None,
    )


def user_ids_of(identities: Sequence[str]) -> tuple[list[int], list[str]]:
    """(user ids, identities that are not accounts)."""
    wanted = {i.casefold(): i for i in identities if i}
    if not wanted:
        return [], []
    rows = db.session.execute(select(User.id, User.email).where(func.lower(User.email).in_(list(wanted)))).all()
    found = {email.casefold(): uid for uid, email in rows}
    return [found[k] for k in wanted if k in found], [v for k, v in wanted.items() if k not in found]


def parse_now(raw: Any) -> datetime | None:
    if not raw:
        return None
    moment = datetime.fromisoformat(str(raw))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))

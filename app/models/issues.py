"""Issues and the runtime rows that hang off them: counters, comments, attachments, checklists,
approvals, watchers, transitions, SLA timers and automation runs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.accounts import User
from app.models.base import UTCDateTime, utcnow
from app.models.projects import Project

APPROVAL_DECISIONS = ("approved", "denied")


class ProjectCounter(db.Model):
    """Per-project sequences: the next issue number and the audit chain's last sequence number.

    Both are bumped with `UPDATE … RETURNING` inside the caller's transaction, so the row lock
    serializes concurrent writers on PostgreSQL and SQLite serializes writers anyway.
    """

    __tablename__ = "project_counters"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    next_issue_number: Mapped[int] = mapped_column(default=1)
    audit_seq: Mapped[int] = mapped_column(default=0)


class Issue(db.Model):
    __tablename__ = "issues"
    __table_args__ = (
        UniqueConstraint("project_id", "number"),
        Index("ix_issues_project_state", "project_id", "state"),
        # Boards: the first cards of a column per (workflow, state, priority), in number order.
        Index("ix_issues_board_order", "project_id", "workflow_id", "state", "priority", "number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    # "ENG-42": kept as written at creation, so links stay valid if the project key changes.
    key: Mapped[str] = mapped_column(String(32), index=True)
    issue_type: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(255))
    # Markdown source; rendered (and sanitized) only when displayed.
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str | None] = mapped_column(String(32))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    due_date: Mapped[date | None] = mapped_column(Date)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="SET NULL"), index=True)
    # Workflow key plus the hash of its normalized form (spec §3): the issue runs on that version.
    workflow_id: Mapped[str] = mapped_column(String(64))
    workflow_version: Mapped[str] = mapped_column(String(64))
    # The configuration revision whose canonical copy holds that version (plain id, as in repositories.py).
    config_revision_id: Mapped[int | None] = mapped_column(Integer)
    # Counts entries into a state; approvals, checklist resets and SLA timers key on it.
    state_entry: Mapped[int] = mapped_column(default=1)
    state_entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Optimistic locking: every ORM UPDATE adds `WHERE lock_version = <loaded>` and bumps it;
    # a concurrent change raises sqlalchemy.orm.exc.StaleDataError at flush.
    lock_version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": lock_version}

    project: Mapped[Project] = relationship()
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    reporter: Mapped[User | None] = relationship(foreign_keys=[reporter_id])
    parent: Mapped[Issue | None] = relationship(remote_side=[id])


class Comment(db.Model):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    # None = the system user (automations, extension directives).
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    author: Mapped[User | None] = relationship()


class Attachment(db.Model):
    """A file stored under STORAGE_DIR/attachments/<project_id>/<storage_name>."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    storage_name: Mapped[str] = mapped_column(String(36), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # Tag matched against a workflow state's required_documents (spec §8.4).
    document_key: Mapped[str | None] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChecklistProgress(db.Model):
    """One manual tick (or untick) of a checklist item, per issue; auto items are computed, not stored."""

    __tablename__ = "checklist_progress"
    __table_args__ = (UniqueConstraint("issue_id", "checklist_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    checklist_id: Mapped[str] = mapped_column(String(100))
    item_id: Mapped[str] = mapped_column(String(100))
    checked: Mapped[bool] = mapped_column(Boolean, default=False)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Approval(db.Model):
    """A decision on an issue's approval policy during one entry into a state (spec §8.5)."""

    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("issue_id", "state", "state_entry", "approver_id"),
        Index("ix_approvals_issue_entry", "issue_id", "state_entry"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(64))
    state_entry: Mapped[int] = mapped_column(Integer)
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # "approved" or "denied", the vocabulary of app.kiket.runtime.snapshot.ApprovalRecord.
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    approver: Mapped[User | None] = relationship()


class ApprovalTimeout(db.Model):
    """An approval chain level that waited past its `timeout`: `approval.overdue` fired once for it (§16)."""

    __tablename__ = "approval_timeouts"
    __table_args__ = (UniqueConstraint("issue_id", "state", "state_entry", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(64))
    state_entry: Mapped[int] = mapped_column(Integer)
    level: Mapped[int] = mapped_column(Integer)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Watcher(db.Model):
    __tablename__ = "watchers"
    __table_args__ = (UniqueConstraint("issue_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IssueTransition(db.Model):
    """History: one row per state change (creation has from_state None; migrations have transition_id None)."""

    __tablename__ = "issue_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(64))
    to_state: Mapped[str] = mapped_column(String(64))
    transition_id: Mapped[str | None] = mapped_column(String(100))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # "user", "automation", "extension", "migration", "system".
    actor_kind: Mapped[str] = mapped_column(String(16), default="user")
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A move an organization owner or admin forced past failing gates (§16): why, and what it skipped
    # ([{"gate": "approval", "reasons": ["Needs 1 approval from ..."]}, ...]).
    forced: Mapped[bool] = mapped_column(Boolean, server_default=false())
    force_reason: Mapped[str | None] = mapped_column(Text)
    skipped_gates: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    actor: Mapped[User | None] = relationship()


class SlaTimer(db.Model):
    """The SLA clock of one entry into a state; warning and breach fire at most once each."""

    __tablename__ = "sla_timers"
    __table_args__ = (UniqueConstraint("issue_id", "state", "state_entry"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(64))
    state_entry: Mapped[int] = mapped_column(Integer)
    # Which rule is selected right now (rules are re-selected as fields change); None = no SLA.
    rule_key: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Precomputed moments so the sweep selects due timers with an index instead of scanning issues.
    warning_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    breach_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    warning_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breach_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the issue leaves the state; a stopped timer never fires.
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AutomationRun(db.Model):
    """One evaluation of an automation against an event: input snapshot, outcome, timing, causal depth."""

    __tablename__ = "automation_runs"
    __table_args__ = (Index("ix_automation_runs_project_at", "project_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    automation_id: Mapped[str] = mapped_column(String(100))
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="SET NULL"), index=True)
    trigger_event: Mapped[str] = mapped_column(String(64))
    input: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # "applied", "skipped: <why>", "failed: <why>", "rate_limited", "loop_stopped".
    outcome: Mapped[str] = mapped_column(String(255))
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    depth: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IssueEvent(db.Model):
    """The outbox: an issue event written in the same transaction as the change that caused it.

    The worker turns each row into its `default`-queue job and deletes it (`app.services.runtime.events.drain`),
    so an event is never lost between a commit and an enqueue, and never seen before its change commits.
    """

    __tablename__ = "issue_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    # What the event is about (a history row, a comment, a checklist, …): with kind and issue, the job's id.
    record: Mapped[str] = mapped_column(String(100))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    # Automation chain that caused it (loop protection), and the event's own data.
    chain: Mapped[list[str]] = mapped_column(JSON, default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

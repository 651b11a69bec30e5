"""Workflow repositories, sync runs, configuration revisions, layers, events and GitHub deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.accounts import Organization, User
from app.models.base import UTCDateTime, utcnow
from app.models.projects import Project

SYNC_STATUSES = ("queued", "fetching", "validating", "writing", "loading", "active", "failed", "unchanged", "held",
                 "superseded")
SYNC_IN_FLIGHT = ("queued", "fetching", "validating", "writing", "loading")
# `held`: validated, but it would strand issues, so it waits for an owner or admin to confirm the activation.
SYNC_DONE = ("active", "failed", "unchanged", "held", "superseded")
SYNC_TRIGGERS = ("ui", "cli", "webhook", "api")
REVISION_STATUSES = ("pending", "active", "superseded", "rejected")
LAYER_KINDS = ("project_override", "organization_default")


class WorkflowRepository(db.Model):
    """The git repository a project's `.kiket/` configuration comes from (one per project)."""

    __tablename__ = "workflow_repositories"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), unique=True)
    remote_url: Mapped[str] = mapped_column(String(500))
    branch: Mapped[str] = mapped_column(String(255), default="main")
    config_path: Mapped[str] = mapped_column(String(255), default=".kiket")
    # Fernet ciphertext (app.services.sync.git.encrypt_token); only the git/GitHub code decrypts it.
    token_encrypted: Mapped[str | None] = mapped_column(Text)
    # Fernet ciphertext too: verifying a signature needs the secret itself, so it cannot be hashed.
    webhook_secret_encrypted: Mapped[str] = mapped_column(Text)
    github_owner: Mapped[str | None] = mapped_column(String(100))
    github_name: Mapped[str | None] = mapped_column(String(100))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Plain id, not a foreign key: config_revisions already points here, and a cycle of
    # foreign keys would make table creation and deletion order depend on ALTER TABLE.
    active_revision_id: Mapped[int | None] = mapped_column(Integer)

    project: Mapped[Project] = relationship()

    @property
    def has_token(self) -> bool:
        return bool(self.token_encrypted)

    @property
    def github_full_name(self) -> str | None:
        return f"{self.github_owner}/{self.github_name}" if self.github_owner and self.github_name else None


class ConfigRevision(db.Model):
    """One loaded configuration of a project: a commit of its repository plus the lower layers at that time."""

    __tablename__ = "config_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    repository_id: Mapped[int | None] = mapped_column(ForeignKey("workflow_repositories.id", ondelete="SET NULL"),
                                                      index=True)
    commit_sha: Mapped[str] = mapped_column(String(40))
    branch: Mapped[str] = mapped_column(String(255))
    # pending (validated, waiting for the load job) → active → superseded; or rejected.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    storage_path: Mapped[str] = mapped_column(String(500))
    # Versions of the project-override and organization-default layers this revision was loaded with.
    layers_version: Mapped[str] = mapped_column(String(64), default="")
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    diagnostics: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    workflow_versions: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    project: Mapped[Project] = relationship()
    repository: Mapped[WorkflowRepository | None] = relationship()

    @property
    def short_sha(self) -> str:
        return self.commit_sha[:10]


class SyncRun(db.Model):
    """One sync request of a repository and what happened to it, phase by phase."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("workflow_repositories.id", ondelete="CASCADE"), index=True)
    branch: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    trigger: Mapped[str] = mapped_column(String(16), default="ui")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    job_id: Mapped[str | None] = mapped_column(String(100))
    load_job_id: Mapped[str | None] = mapped_column(String(100))
    worker_name: Mapped[str | None] = mapped_column(String(200))
    # Host and pid of the process running the job, so a killed worker's run can be declared lost.
    worker_host: Mapped[str | None] = mapped_column(String(255))
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Milliseconds per phase: {"queue": 12, "fetch": 120, "resolve": 3, "read": 8, "validate": 90, "write": 4,
    # "load_queue": 15, "load": 110}; the *queue entries are time spent waiting for a worker.
    timings: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    commit_sha: Mapped[str | None] = mapped_column(String(40))
    commit_author: Mapped[str | None] = mapped_column(String(255))
    commit_message: Mapped[str | None] = mapped_column(Text)
    diagnostics: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    revision_id: Mapped[int | None] = mapped_column(ForeignKey("config_revisions.id", ondelete="SET NULL"))

    repository: Mapped[WorkflowRepository] = relationship()
    revision: Mapped[ConfigRevision | None] = relationship()
    requested_by: Mapped[User | None] = relationship()

    @property
    def in_flight(self) -> bool:
        return self.status in SYNC_IN_FLIGHT

    @property
    def duration_ms(self) -> int | None:
        if self.finished_at is None:
            return None
        return int((self.finished_at - self.enqueued_at).total_seconds() * 1000)


class ConfigEvent(db.Model):
    """Audit of configuration changes: activations, rollbacks, layer saves."""

    __tablename__ = "config_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    # activated, rolled_back, rejected, override_saved, override_deleted, default_saved, default_deleted,
    # activation_confirmed
    kind: Mapped[str] = mapped_column(String(32))
    revision_id: Mapped[int | None] = mapped_column(ForeignKey("config_revisions.id", ondelete="SET NULL"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    revision: Mapped[ConfigRevision | None] = relationship()
    actor: Mapped[User | None] = relationship()


class ConfigLayer(db.Model):
    """One file of a lower layer edited in the app: a project override or an organization default.

    `scope` is `project:<id>` or `organization:<id>`; `path` is relative to `.kiket/` (`workflows/bug.yaml`).
    """

    __tablename__ = "config_layers"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(40), index=True)
    layer: Mapped[str] = mapped_column(String(24))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(255))
    yaml_text: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (db.UniqueConstraint("scope", "path"),)

    organization: Mapped[Organization] = relationship()
    updated_by: Mapped[User | None] = relationship()


class ProjectSeedMarker(db.Model):
    """Present once seed issues of one source were created in a project, so they are never created again.

    `source` is "template" (a project created with its template's sample issues) or "repository:<id>"
    (the first activation of that repository for the project, §16).
    """

    __tablename__ = "project_seed_markers"
    __table_args__ = (UniqueConstraint("project_id", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(100))
    revision_id: Mapped[int | None] = mapped_column(ForeignKey("config_revisions.id", ondelete="SET NULL"))
    seeded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the seeding did: {"created": n, "skipped": [{"title": ..., "reason": ...}]}.
    outcome: Mapped[dict | None] = mapped_column(JSON)


class GithubDelivery(db.Model):
    """Every GitHub webhook delivery received, with what was done about it."""

    __tablename__ = "github_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Only verified deliveries claim their id: a forged request must not burn the id of a real one.
    delivery_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    event: Mapped[str] = mapped_column(String(50))
    repository_id: Mapped[int | None] = mapped_column(ForeignKey("workflow_repositories.id", ondelete="SET NULL"),
                                                      index=True)
    # synced, ignored_branch, ignored_deleted, ignored_path, ignored_event, already_active, already_syncing, pong
    # (bad_signature and unknown_repository: rows from before such requests were only logged)
    outcome: Mapped[str] = mapped_column(String(32))
    sync_run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id", ondelete="SET NULL"))
    detail: Mapped[str] = mapped_column(String(255), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

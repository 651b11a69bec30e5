"""The append-only audit trail (a hash chain per project) and project secrets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import UTCDateTime, utcnow

SECRET_NAME_PATTERN = r"^[A-Z][A-Z0-9_]{0,63}$"


class AuditEvent(db.Model):
    """One audited fact. `hash = sha256(prev_hash + canonical JSON)`; written by app.services.audit only."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("project_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(String(64))
    # Plain ids: the trail must survive the deletion of users and issues unchanged.
    actor_id: Mapped[int | None] = mapped_column()
    issue_id: Mapped[int | None] = mapped_column(index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ProjectSecret(db.Model):
    """A named value for `${env.NAME}` in webhooks (spec §12); Fernet ciphertext, never shown again."""

    __tablename__ = "project_secrets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    value_encrypted: Mapped[str] = mapped_column(Text)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

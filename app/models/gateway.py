"""The Extension Gateway's rows: API keys, extension installations and what hangs off them, webhook
subscriptions, runtime-token signing keys and stored Idempotency-Key responses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.accounts import User
from app.models.base import UTCDateTime, utcnow
from app.models.projects import Project

API_KEY_KINDS = ("personal", "extension")
SIGNING_KEY_STATUSES = ("current", "previous", "retired")


class ApiKey(db.Model):
    """A bearer key: an itsdangerous-signed id plus a secret, shown once and stored as a SHA-256 hash.

    `personal` keys act as their user with the scopes chosen at creation; `extension` keys act as their
    installation's extension user with the installation's scopes.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    installation_id: Mapped[int | None] = mapped_column(
        ForeignKey("extension_installations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_hash: Mapped[str] = mapped_column(String(64))
    # The first characters of the key, so a person can tell keys apart on the account page.
    hint: Mapped[str] = mapped_column(String(24), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ExtensionInstallation(db.Model):
    """An extension installed in a project from its manifest; it acts as its own user (`bot_user`)."""

    __tablename__ = "extension_installations"
    __table_args__ = (UniqueConstraint("project_id", "extension_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    # The manifest's reverse-DNS id (`com.example.marketing`).
    extension_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(120))
    version: Mapped[str] = mapped_column(String(40), default="")
    manifest_text: Mapped[str] = mapped_column(Text)
    base_url: Mapped[str] = mapped_column(String(500))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # {event: version} the installation receives; None = every event, in v1.
    events: Mapped[dict[str, str] | None] = mapped_column(JSON)
    webhook_secret_encrypted: Mapped[str] = mapped_column(Text)
    oauth_client_id: Mapped[str] = mapped_column(String(64), unique=True)
    oauth_secret_hash: Mapped[str] = mapped_column(String(64))
    bot_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Non-secret configuration values (manifest `configuration.properties` without `secret: true`).
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The last decision's `metadata.output_fields`, shown on the installation's page.
    output_fields: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    installed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    project: Mapped[Project] = relationship()
    bot_user: Mapped[User | None] = relationship(foreign_keys=[bot_user_id])


class ExtensionSecret(db.Model):
    """A secret of an installation (manifest properties with `secret: true`, or set by the extension)."""

    __tablename__ = "extension_secrets"
    __table_args__ = (UniqueConstraint("installation_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("extension_installations.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    value_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ExtensionLog(db.Model):
    """A line of an installation's log: what the extension sent (`POST /extensions/logs`) or what Kiket did."""

    __tablename__ = "extension_logs"
    __table_args__ = (Index("ix_extension_logs_installation_id_id", "installation_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("extension_installations.id", ondelete="CASCADE"))
    # "extension" (sent by it), "kiket" (replies, directives), "telemetry"
    source: Mapped[str] = mapped_column(String(16), default="extension")
    level: Mapped[str] = mapped_column(String(16), default="info")
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExtensionMetric(db.Model):
    __tablename__ = "extension_metrics"
    __table_args__ = (Index("ix_extension_metrics_installation_id_name", "installation_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("extension_installations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookSubscription(db.Model):
    """Events of a project sent to a URL as the signed envelope."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Event types, or ["*"] for every event.
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    project: Mapped[Project] = relationship()


class SigningKey(db.Model):
    """An ES256 (P-256) key signing runtime tokens; the current and the previous one are published as JWKS."""

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="current")
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyRecord(db.Model):
    """The first response to an `Idempotency-Key` of one credential, replayed for 24 hours.

    `status_code` is None while the first request is still running.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("credential", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    credential: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column()
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

"""Outbound webhook deliveries: one row per attempt, attempts of one delivery share `delivery_uuid`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import UTCDateTime, utcnow

# pending: queued, not tried yet; retrying: failed, another attempt is scheduled;
# delivered: 2xx; failed: given up (4xx, refused target, or attempts exhausted).
DELIVERY_STATUSES = ("pending", "retrying", "delivered", "failed")


class WebhookDelivery(db.Model):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_uuid_attempt", "delivery_uuid", "attempt", unique=True),
        Index("ix_webhook_deliveries_project_created", "project_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    delivery_uuid: Mapped[str] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    # Display copies with every secret value replaced by "[redacted]".
    url: Mapped[str] = mapped_column(Text)
    request_headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    request_body: Mapped[str] = mapped_column(Text, default="")
    # What the job sends: url, headers, body and signing secret, Fernet-encrypted.
    payload_encrypted: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Gateway events: the envelope's id (the same on every attempt and redelivery) and who it went to.
    event_id: Mapped[str | None] = mapped_column(String(40), index=True)
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="SET NULL"), index=True)
    installation_id: Mapped[int | None] = mapped_column(
        ForeignKey("extension_installations.id", ondelete="SET NULL"), index=True)
    # What an extension's reply asked for and what came of it (directives, decision, ignored parts).
    reply: Mapped[dict[str, Any] | None] = mapped_column(JSON)

"""Webhook subscriptions: a project's events, as signed envelopes, to a URL; and the deliveries they made."""

from __future__ import annotations

import logging
import secrets as random

from sqlalchemy import select

from app.extensions import db
from app.kiket.extensions import EVENT_ALIASES, EVENT_TYPES
from app.models import Project, User
from app.models.gateway import ExtensionInstallation, WebhookSubscription
from app.models.webhooks import WebhookDelivery
from app.services import audit, crypto
from app.services.webhooks import delivery as webhook_delivery
from app.services.errors import Forbidden, Invalid, NotFound
from app.services.gateway import targets
from app.services.gateway.outbound import SUBSCRIPTION_SECRET_PURPOSE
from app.services.projects import project_role, visible_projects

log = logging.getLogger(__name__)

MANAGER_ROLES = ("owner", "admin")
MAX_PER_PROJECT = 50
MIN_SECRET = 16


def _require_manage(actor: User, project: Project) -> None:
    if project_role(actor, project) not in MANAGER_ROLES:
        raise Forbidden("Only project owners and admins can manage its webhooks.")


def check_events(events: list[str]) -> list[str]:
    """Known event types (aliases resolved), or `*` for all of them."""
    wanted = [EVENT_ALIASES.get(e.strip(), e.strip()) for e in events if e and e.strip()]
    if not wanted:
        raise Invalid({"events": "Choose at least one event, or * for every event."})
    if "*" in wanted:
        return ["*"]
    unknown = sorted(set(wanted) - set(EVENT_TYPES))
    if unknown:
        raise Invalid({"events": f"Unknown event(s): {', '.join(unknown)}. Known: {', '.join(EVENT_TYPES)}."})
    return [e for e in EVENT_TYPES if e in wanted]


def create(actor: User, project: Project, url: str, events: list[str],
           secret: str | None = None) -> tuple[WebhookSubscription, str | None]:
    """Subscribe a URL to events; returns the generated secret (shown once) when none was given."""
    _require_manage(actor, project)
    url = (url or "").strip()
    targets.check(url, extension=False)
    if secret is not None and len(secret) < MIN_SECRET:
        raise Invalid({"secret": f"Use at least {MIN_SECRET} characters, or leave it out to get one."})
    count = len(list(db.session.scalars(select(WebhookSubscription.id)
                                         .where(WebhookSubscription.project_id == project.id))))
    if count >= MAX_PER_PROJECT:
        raise Invalid({"url": f"A project has at most {MAX_PER_PROJECT} webhook subscriptions."})
    generated = None if secret else "whsec_" + random.token_urlsafe(32)
    subscription = WebhookSubscription(
        project_id=project.id, url=url, events=check_events(events),
        secret_encrypted=crypto.encrypt(secret or generated, SUBSCRIPTION_SECRET_PURPOSE), created_by_id=actor.id)
    db.session.add(subscription)
    db.session.flush()
    audit.record(project.id, "webhook.subscribed", actor.id, None,
                 {"subscription": subscription.id, "url": url, "events": subscription.events})
    db.session.commit()
    log.info("webhook subscription created id=%s project=%s", subscription.id, project.key)
    return subscription, generated


def listed(actor: User, project: Project | None = None) -> list[WebhookSubscription]:
    """Subscriptions of the projects the actor manages (or of one project)."""
    projects = [project] if project is not None else visible_projects(actor)
    ids = [p.id for p in projects if project_role(actor, p) in MANAGER_ROLES]
    if project is not None and not ids:
        _require_manage(actor, project)
    return list(db.session.scalars(select(WebhookSubscription).where(WebhookSubscription.project_id.in_(ids))
                                   .order_by(WebhookSubscription.id))) if ids else []


def get(actor: User, subscription_id: int) -> WebhookSubscription:
    subscription = db.session.get(WebhookSubscription, subscription_id)
    if subscription is None or project_role(actor, subscription.project) is None:
        raise NotFound(f"No webhook subscription {subscription_id} that you can see.")
    _require_manage(actor, subscription.project)
    return subscription


def delete(actor: User, subscription_id: int) -> None:
    subscription = get(actor, subscription_id)
    audit.record(subscription.project_id, "webhook.unsubscribed", actor.id, None, {"subscription": subscription.id})
    db.session.delete(subscription)
    db.session.commit()


def delivery(actor: User, delivery_id: int) -> WebhookDelivery:
    """A gateway delivery (one attempt) of a subscription or installation the actor manages."""
    row = db.session.get(WebhookDelivery, delivery_id)
    if row is None or (row.subscription_id is None and row.installation_id is None):
        raise NotFound(f"No delivery {delivery_id} that you can see.")
    owner = db.session.get(Project, row.project_id) if row.project_id else None
    if owner is None or project_role(actor, owner) is None:
        raise NotFound(f"No delivery {delivery_id} that you can see.")
    _require_manage(actor, owner)
    return row


def recent_deliveries(*, installation_id: int | None = None, subscription_id: int | None = None,
                      limit: int = 30) -> list[WebhookDelivery]:
    """The newest attempts to one installation or subscription."""
    column = WebhookDelivery.installation_id if installation_id is not None else WebhookDelivery.subscription_id
    return list(db.session.scalars(select(WebhookDelivery).where(column == (installation_id or subscription_id))
                                   .order_by(WebhookDelivery.id.desc()).limit(limit)))


def redeliver(actor: User, delivery_id: int) -> WebhookDelivery:
    """Send a delivery's event again: a new delivery, the same event id."""
    source = delivery(actor, delivery_id)
    if source.subscription_id is not None and db.session.get(WebhookSubscription, source.subscription_id) is None:
        raise NotFound("The subscription of this delivery was deleted.")
    if source.installation_id is not None and db.session.get(ExtensionInstallation, source.installation_id) is None:
        raise NotFound("The extension of this delivery was removed.")
    row = webhook_delivery.redeliver(source.id)
    audit.record(row.project_id, "webhook.redelivered", actor.id, None,
                 {"delivery": source.id, "new_delivery": row.id, "event_id": row.event_id})
    db.session.commit()
    return row

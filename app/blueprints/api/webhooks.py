"""Webhook subscriptions and the deliveries of subscriptions and extensions."""

from __future__ import annotations

from sqlalchemy import select

from app.models.gateway import WebhookSubscription
from app.models.webhooks import WebhookDelivery
from app.services.errors import NotFound
from app.services.gateway import subscriptions
from app.services.gateway.credentials import Credential

from . import schemas as s
from .core import endpoint, page_of
from .paging import listing_page, query_page
from .projects import project_for

WEBHOOKS = "Webhooks"


def _subscription(subscription: WebhookSubscription, secret: str | None = None) -> dict:
    out = {"id": subscription.id, "project_key": subscription.project.key, "url": subscription.url,
           "events": list(subscription.events), "created_at": subscription.created_at}
    if secret is not None:
        out["secret"] = secret
    return out


def delivery_values(row: WebhookDelivery) -> dict:
    return {
        "id": row.id, "event_id": row.event_id, "event": row.event, "attempt": row.attempt, "status": row.status,
        "error": row.error, "duration_ms": row.duration_ms, "created_at": row.created_at,
        "delivered_at": row.delivered_at, "next_retry_at": row.next_retry_at,
        "request": {"method": row.method, "url": row.url, "headers": dict(row.request_headers or {}),
                    "body": row.request_body or ""},
        "response": {"status_code": row.status_code, "excerpt": row.response_excerpt}, "reply": row.reply,
    }


def _in_scope(cred: Credential, project_id: int) -> bool:
    return cred.project_id is None or cred.project_id == project_id


@endpoint("/api/v1/webhooks", "GET", summary="List webhook subscriptions", tags=WEBHOOKS, scope="webhooks:manage",
          query=s.ProjectFilterQuery, response=page_of(s.SubscriptionSchema), errors=(400,))
def list_webhooks(cred: Credential, query: dict):
    """Subscriptions of the projects the credential's user administers."""
    project = project_for(cred, query["project_key"]) if query["project_key"] else None
    rows = [row for row in subscriptions.listed(cred.user, project) if _in_scope(cred, row.project_id)]
    return listing_page("webhooks", query, sorted(rows, key=lambda r: -r.id), _subscription)


@endpoint("/api/v1/webhooks", "POST", summary="Subscribe a URL to events", tags=WEBHOOKS, scope="webhooks:manage",
          body=s.SubscriptionCreateSchema, response=s.SubscriptionSchema, status=201)
def create_webhook(cred: Credential, data: dict):
    """Events arrive as the signed envelope; without `secret` one is generated and returned once. URLs that
    resolve to loopback, private, link-local or metadata addresses are refused."""
    project = project_for(cred, data["project_key"])
    subscription, generated = subscriptions.create(cred.user, project, data["url"], data["events"], data["secret"])
    return _subscription(subscription, generated), 201, {"Location": f"/api/v1/webhooks/{subscription.id}"}


def _subscription_for(cred: Credential, subscription_id: int) -> WebhookSubscription:
    subscription = subscriptions.get(cred.user, subscription_id)
    if not _in_scope(cred, subscription.project_id):
        raise NotFound(f"No webhook subscription {subscription_id} that you can see.")
    return subscription


@endpoint("/api/v1/webhooks/<int:subscription_id>", "DELETE", summary="Delete a subscription", tags=WEBHOOKS,
          scope="webhooks:manage", status=204)
def delete_webhook(cred: Credential, subscription_id: int):
    _subscription_for(cred, subscription_id)
    subscriptions.delete(cred.user, subscription_id)
    return None, 204, {}


@endpoint("/api/v1/webhooks/<int:subscription_id>/deliveries", "GET", summary="Deliveries of a subscription",
          tags=WEBHOOKS, scope="webhooks:manage", query=s.ProjectFilterQuery, response=page_of(s.DeliverySchema),
          errors=(400,))
def list_deliveries(cred: Credential, query: dict, subscription_id: int):
    """Every attempt, newest first, with the request sent and the response received (secrets redacted)."""
    subscription = _subscription_for(cred, subscription_id)
    statement = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id)
    return query_page(f"deliveries:s{subscription.id}", query, statement, WebhookDelivery.id, delivery_values)


@endpoint("/api/v1/webhooks/deliveries/<int:delivery_id>/redeliver", "POST", summary="Send a delivery again",
          tags=WEBHOOKS, scope="webhooks:manage", response=s.DeliverySchema, status=202)
def redeliver(cred: Credential, delivery_id: int):
    """A new delivery of the same event (the envelope keeps its `id`), to a subscription or an extension."""
    source = subscriptions.delivery(cred.user, delivery_id)
    if not _in_scope(cred, source.project_id):
        raise NotFound(f"No delivery {delivery_id} that you can see.")
    return delivery_values(subscriptions.redeliver(cred.user, delivery_id))

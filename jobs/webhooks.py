"""Jobs on the `webhooks` queue: delivery attempts, and the gateway's fan-out of events to their targets."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from jobs import job_app_context


def deliver_webhook(delivery_id: int) -> str:
    """One attempt of an outbound webhook; the next one is scheduled when it must be retried."""
    with job_app_context():
        from app.services.webhooks import delivery

        return delivery.attempt(delivery_id).status


def publish_issue_events(events: Sequence[Mapping[str, Any]]) -> int:
    """Outbox events as envelopes to webhook subscriptions and extensions (`app.services.gateway.outbound`)."""
    with job_app_context():
        from app.services.gateway import outbound

        return outbound.publish_issue_events(events)


def publish_project_event(kind: str, project_id: int, extra: Mapping[str, Any]) -> int:
    """A project event (`workflow.updated`) as an envelope to its targets."""
    with job_app_context():
        from app.services.gateway import outbound

        return outbound.publish_project_event(kind, project_id, extra)

"""Jobs on the `webhooks` queue."""

from __future__ import annotations

from jobs import job_app_context


def deliver_webhook(delivery_id: int) -> str:
    """One attempt of an outbound webhook; raises (so RQ retries on its schedule) while another is due."""
    with job_app_context():
        from app.services.webhooks import delivery

        return delivery.attempt(delivery_id).status

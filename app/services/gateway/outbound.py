"""Outbound events: the issue outbox's events as signed envelopes to webhook subscriptions and extensions.

The outbox drain hands every batch of committed events to `publish_issue_events` (a `webhooks` job), and
activations to `publish_project_event`. Each event becomes one delivery per interested target, through the
one delivery service (signing, retries, SSRF guard). The envelope's `id` is derived from the event itself,
so a retried job, a retried attempt and a redelivery all carry the same id and receivers can deduplicate.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import Approval, Comment, Issue, IssueTransition, Project, User
from app.models.gateway import ExtensionInstallation, WebhookSubscription
from app.queue import redis_connection
from app.services import crypto
from app.services.runtime.snapshots import issue_workflow
from app.services.webhooks import delivery as webhook_delivery
from app.services.gateway import extensions, targets
from app.services.gateway.representations import issue_json, user_ref

log = logging.getLogger(__name__)

SUBSCRIPTION_SECRET_PURPOSE = "webhook subscription secrets"
EXTENSION_HANDLER = "extension"
# A (event, target) pair delivered once, even when the publishing job runs again after a crash.
SENT_TTL_S = 7 * 24 * 3600


def event_id(event_type: str, *parts: object) -> str:
    digest = hashlib.sha256(":".join([event_type, *map(str, parts)]).encode()).hexdigest()
    return f"evt_{digest[:32]}"


def _iso(moment: datetime | None) -> str:
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _actor(actor_id: int | None) -> dict[str, Any] | None:
    user = db.session.get(User, actor_id) if actor_id is not None else None
    ref = user_ref(user)
    return {"id": ref["id"], "email": ref["email"], "name": ref["display_name"], "kind": ref["kind"]} if ref else None


def issue_event_types(kind: str, issue: Issue, record: str, extra: Mapping[str, Any]) -> list[tuple[str, dict]]:
    """The catalogue events (and their `data` besides the issue) one outbox event stands for."""
    if kind == "issue.created":
        return [("issue.created", {})]
    if kind == "issue.transitioned":
        row = db.session.get(IssueTransition, int(record)) if str(record).isdigit() else None
        if row is None:
            return []
        data = {"from": row.from_state, "to": row.to_state, "transition": row.transition_id,
                "comment": row.comment}
        out = [("issue.transitioned", data)]
        try:
            workflow = issue_workflow(issue)
            state = workflow.states.get(row.to_state)
            if row.to_state in workflow.finals or (state is not None and state.is_final):
                out.append(("issue.closed", data))
        except Exception as error:  # noqa: BLE001 - a missing workflow only loses the `closed` alias
            log.warning("issue.closed not derived for %s: %s", issue.key, error)
        return out
    if kind == "issue.updated":
        changes = dict(extra.get("changes") or {})
        out = [("issue.updated", {"changes": changes})]
        if "assignee_id" in changes:
            people = [user_ref(db.session.get(User, uid)) if uid else None for uid in changes["assignee_id"]]
            out.append(("issue.assigned", {"changes": {"assignee": people}}))
        elif "assignee" in changes:
            out.append(("issue.assigned", {"changes": {"assignee": changes["assignee"]}}))
        return out
    if kind == "issue.commented":
        comment = db.session.get(Comment, int(record)) if str(record).isdigit() else None
        if comment is None:
            return []
        return [("issue.commented", {"comment": {"id": comment.id, "body": comment.body,
                                                 "author": user_ref(comment.author),
                                                 "createdAt": _iso(comment.created_at)}})]
    if kind == "approval.decided":
        approval = db.session.get(Approval, int(record)) if str(record).isdigit() else None
        if approval is None:
            return []
        name = "approval.granted" if approval.decision == "approved" else "approval.denied"
        return [(name, {"approval": {"state": approval.state, "decision": approval.decision, "reason": approval.reason,
                                     "approver": user_ref(approval.approver)}})]
    if kind == "checklist.completed":
        return [("checklist.completed", {"checklist": {"id": record}})]
    if kind in ("sla.warning", "sla.breach"):
        return [(kind, {"sla": dict(extra.get("sla") or {})})]
    return []


def _subscriptions(project_id: int, event_type: str) -> list[WebhookSubscription]:
    rows = db.session.scalars(select(WebhookSubscription).where(WebhookSubscription.project_id == project_id))
    return [s for s in rows if "*" in s.events or event_type in s.events]


def _installations(project_id: int) -> list[ExtensionInstallation]:
    return list(db.session.scalars(select(ExtensionInstallation).where(ExtensionInstallation.project_id == project_id)
                                   .order_by(ExtensionInstallation.id)))


def wants(installation: ExtensionInstallation, event_type: str) -> str | None:
    """The version the installation receives `event_type` in, or None."""
    if installation.events is None:
        return "v1"
    return installation.events.get(event_type)


def envelope(event_type: str, ident: str, created_at: datetime | None, project: Project,
             data: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": ident, "type": event_type, "createdAt": _iso(created_at),
            "organizationId": str(project.organization_id), "projectKey": project.key, "data": dict(data)}


def _once(ident: str, target: str) -> bool:
    """True the first time (event, target) is claimed."""
    return bool(redis_connection().set(f"kiket:gateway:sent:{ident}:{target}", "1", nx=True, ex=SENT_TTL_S))


def _send(project: Project, event_type: str, body: dict[str, Any], *, actor_id: int | None) -> int:
    sent = 0
    ident = body["id"]
    for subscription in _subscriptions(project.id, event_type):
        if not _once(ident, f"s{subscription.id}"):
            continue
        webhook_delivery.deliver(
            project.id, subscription.url, "POST", {}, body, event_type,
            crypto.decrypt(subscription.secret_encrypted, SUBSCRIPTION_SECRET_PURPOSE),
            event_id=ident, subscription_id=subscription.id)
        sent += 1
    for installation in _installations(project.id):
        version = wants(installation, event_type)
        # An extension is not told about what it did itself: its replies would feed on their own effects.
        if version is None or (actor_id is not None and actor_id == installation.bot_user_id):
            continue
        if not _once(ident, f"i{installation.id}"):
            continue
        runtime_body = {**body, "event": event_type, "event_version": version, "project_id": str(project.id),
                        "issue": (body["data"] or {}).get("issue"),
                        "api": {"base_url": current_app.config["KIKET_BASE_URL"]}}
        webhook_delivery.deliver(
            project.id, f"{installation.base_url}/v/{version}/webhooks/{event_type}", "POST", {}, runtime_body,
            event_type, extensions.webhook_secret(installation), event_id=ident, installation_id=installation.id,
            handler=EXTENSION_HANDLER, context={"installation_id": installation.id, "event_version": version})
        sent += 1
    return sent


def publish_issue_events(events: Iterable[Mapping[str, Any]]) -> int:
    """Deliver each outbox event (`kind, issue_id, record, actor_id, extra, created_at`) to its targets."""
    sent = 0
    for event in events:
        issue = db.session.get(Issue, int(event["issue_id"]))
        if issue is None:
            continue
        project = issue.project
        created_at = datetime.fromisoformat(event["created_at"]) if event.get("created_at") else None
        issue_data = issue_json(issue)
        for event_type, data in issue_event_types(event["kind"], issue, str(event["record"]),
                                                  event.get("extra") or {}):
            ident = event_id(event_type, issue.id, event["record"])
            body = envelope(event_type, ident, created_at, project,
                            {"issue": issue_data, **data, "actor": _actor(event.get("actor_id"))})
            sent += _send(project, event_type, body, actor_id=event.get("actor_id"))
    if sent:
        log.info("gateway events published deliveries=%d", sent)
    return sent


def publish_project_event(kind: str, project_id: int, extra: Mapping[str, Any]) -> int:
    """`workflow.updated`: a revision was activated."""
    project = db.session.get(Project, project_id)
    if project is None or kind != "workflow.updated":
        return 0
    from app.models import ConfigRevision

    revision = db.session.get(ConfigRevision, int(extra.get("revision_id") or 0))
    data = {"revision": {"id": revision.id, "commitSha": revision.commit_sha, "branch": revision.branch}
            if revision is not None else None}
    ident = event_id(kind, project_id, extra.get("activation") or extra.get("revision_id"))
    body = envelope(kind, ident, revision.activated_at if revision is not None else None, project,
                    {**data, "actor": None})
    return _send(project, kind, body, actor_id=None)


def prepare_extension_attempt(context: Mapping[str, Any], body: str) -> webhook_delivery.Attempt | None:
    """Each attempt to an extension carries a fresh runtime token and the installation's secrets (spec §3)."""
    from app.services.gateway import tokens

    installation = db.session.get(ExtensionInstallation, int(context["installation_id"]))
    if installation is None:
        return None
    token, expires_at = tokens.mint(installation)
    values = extensions.secret_values(installation)
    payload = json.loads(body)
    payload["authentication"] = {"runtime_token": token, "token_type": "runtime", "expires_at": _iso(expires_at),
                                 "scopes": list(installation.scopes)}
    payload["secrets"] = values
    return webhook_delivery.Attempt(
        body=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
        headers={"X-Kiket-Event-Version": str(context.get("event_version") or "v1")},
        hidden=(token, *values.values()), allow_loopback=targets.allow_loopback(extension=True))

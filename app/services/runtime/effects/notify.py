"""Actions that tell someone: in-app and email notifications, outbound webhooks, and what events notify by themselves."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.kiket.runtime.events import Event
from app.kiket.secret_usage import SIGNING_SECRETS
from app.models.issues import Approval, Comment, Watcher
from app.services.runtime import notifications
from app.services.runtime.effects.scope import Scope, email_of, user_ids_of
from app.services.webhooks import delivery

def default_message(scope: Scope, event: Event | None) -> str:
    what = event.name if event else "update"
    if scope.issue is None:
        return f"{scope.project.key}: {what}"
    return f"{scope.issue.key} {scope.issue.title}: {what}"


def notify(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    ids, unknown = user_ids_of(p.get("users") or ())
    emails = list(p.get("emails") or ())
    channel = p.get("channel") or "in_app"
    if channel == "in_app" and not ids:
        return f"nobody to notify in-app (not accounts: {', '.join(unknown)})" if unknown else "nobody to notify"
    message = p.get("message") or p.get("title") or default_message(scope, event)
    rows = notifications.notify(ids, scope.project.id, scope.issue.id if scope.issue else None, message, p.get("level") or "info", channel,
                                emails if channel == "email" else ())
    return f"{channel}: {len(rows)} notified" + (f", {len(emails)} emailed" if channel == "email" and emails else "")


def webhook(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    secrets = scope.secrets()
    # The signing key is a project secret (spec §12: secrets live in the app, never in the environment).
    signing = next((secrets[name] for name in SIGNING_SECRETS if secrets.get(name)), None)
    row = delivery.deliver(scope.project.id, p["url"], p.get("method") or "POST", p.get("headers") or {},
                           p.get("body"), event.name if event else "issue.event", signing,
                           timeout=p.get("timeout_s"))
    return f"delivery {row.id} queued"


def notify_watchers(scope: Scope, comment: Comment) -> None:
    watchers = set(db.session.scalars(select(Watcher.user_id).where(Watcher.issue_id == scope.issue.id)))
    for uid in (scope.issue.assignee_id, scope.issue.reporter_id):
        if uid is not None:
            watchers.add(uid)
    watchers.discard(comment.author_id)
    if watchers:
        author = email_of(comment.author) or "Kiket automation"
        notifications.notify(watchers, scope.project.id, scope.issue.id,
                             f"{author} commented on {scope.issue.key} {scope.issue.title}")


def notify_decision(scope: Scope, approval: Approval) -> None:
    people = {uid for uid in (scope.issue.assignee_id, scope.issue.reporter_id) if uid is not None}
    people.discard(approval.approver_id)
    if people:
        who = email_of(approval.approver) or "someone"
        level = "success" if approval.decision == "approved" else "warning"
        notifications.notify(people, scope.project.id, scope.issue.id,
                             f"{who} {approval.decision} {scope.issue.key} {scope.issue.title}", level)

"""What an extension's reply asks for (protocol spec §5), done through the services a person uses.

Directives run as the installation's user, within its scopes and its project role: a comment goes through
the comment service, a field through the issue service (with the issue's current lock version), a transition
through the transition service with every gate. Each outcome is recorded on the delivery, in the
installation's log and in the project's audit trail; nothing here raises into the delivery job.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import func, select

from app.extensions import db
from app.kiket.extensions import Reply, ReplyDirective, parse_reply
from app.models import Issue, User
from app.models.gateway import ExtensionInstallation
from app.models.webhooks import WebhookDelivery
from app.queue import redis_connection
from app.services import audit
from app.services.runtime import issues, transitions
from app.services import ratelimits
from app.services.errors import Invalid, NotFound, ServiceError
from app.services.gateway import extensions

log = logging.getLogger(__name__)

MAX_DIRECTIVES = 20
# Directives per installation and issue a minute: two extensions answering each other's comments stop here.
DIRECTIVES_PER_ISSUE = 30
ROW_FIELDS = {"title": "title", "description": "description", "priority": "priority", "labels": "labels",
              "due_date": "due_date", "dueDate": "due_date"}


def handle_reply(delivery: WebhookDelivery, body: bytes) -> dict[str, Any]:
    """Perform a 2xx reply's directives or record its decision; the outcome is stored on the delivery."""
    installation = db.session.get(ExtensionInstallation, delivery.installation_id) if delivery.installation_id else None
    if installation is None:
        return {}
    try:
        parsed = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, ValueError):
        parsed = body[:200].decode("utf-8", "replace")
    reply = parse_reply(parsed)
    issue_id = _issue_id(delivery)
    outcomes = [_perform(installation, issue_id, directive) for directive in reply.directives[:MAX_DIRECTIVES]]
    ignored = list(reply.ignored)
    if len(reply.directives) > MAX_DIRECTIVES:
        ignored.append(f"{len(reply.directives) - MAX_DIRECTIVES} directive(s) past the first {MAX_DIRECTIVES}")
    summary: dict[str, Any] = {"directives": outcomes, "ignored": ignored}
    if reply.decision is not None:
        summary["decision"] = {"status": reply.decision.status, "message": reply.decision.message,
                               "outputFields": dict(reply.decision.output_fields)}
        if reply.decision.output_fields:
            installation.output_fields = dict(reply.decision.output_fields)
    row = db.session.get(WebhookDelivery, delivery.id)
    row.reply = summary
    if outcomes or ignored or reply.decision is not None:
        extensions.add_log(installation, _describe(reply, outcomes, ignored), {"delivery": delivery.id, **summary},
                           source="kiket", level="warning" if any(o["status"] != "applied" for o in outcomes)
                           else "info", commit=False)
        audit.record(installation.project_id, "extension.replied", installation.bot_user_id, issue_id, {
            "installation": installation.id, "delivery": delivery.id, "event": delivery.event,
            "directives": [{k: o[k] for k in ("kind", "status", "detail")} for o in outcomes]})
    db.session.commit()
    return summary


def _describe(reply: Reply, outcomes: list[dict], ignored: list[str]) -> str:
    parts = [f"{o['kind']}: {o['status']}" for o in outcomes]
    if reply.decision is not None:
        parts.append(f"decision {reply.decision.status}")
    if ignored:
        parts.append(f"{len(ignored)} part(s) ignored")
    return "Reply: " + ", ".join(parts)


def _issue_id(delivery: WebhookDelivery) -> int | None:
    try:
        body = json.loads(delivery.request_body or "{}")
        issue = (body.get("data") or {}).get("issue") or {}
        return int(issue["id"]) if issue.get("id") is not None else None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _perform(installation: ExtensionInstallation, issue_id: int | None, directive: ReplyDirective) -> dict[str, Any]:
    outcome = {"kind": directive.kind, "params": dict(directive.params)}
    if directive.scope not in installation.scopes:
        return {**outcome, "status": "refused", "detail": f"needs scope {directive.scope}, which was not granted"}
    bot = db.session.get(User, installation.bot_user_id) if installation.bot_user_id else None
    if bot is None:
        return {**outcome, "status": "refused", "detail": "the installation has no user"}
    if issue_id is None and directive.kind != "notify":
        return {**outcome, "status": "refused", "detail": "this event has no issue"}
    if issue_id is not None and not ratelimits.hit(redis_connection(), f"directives:{installation.id}:{issue_id}",
                                                   DIRECTIVES_PER_ISSUE, 60).allowed:
        return {**outcome, "status": "refused", "detail": "too many directives on this issue; try again in a minute"}
    try:
        detail = _DO[directive.kind](installation, bot, issue_id, directive.params)
    except ServiceError as error:
        db.session.rollback()
        return {**outcome, "status": "failed", "detail": error.detail}
    except Exception as error:  # noqa: BLE001 - one failing directive never stops the others or the delivery
        db.session.rollback()
        log.exception("directive failed installation=%s kind=%s", installation.id, directive.kind)
        return {**outcome, "status": "failed", "detail": f"{type(error).__name__}: {error}"[:300]}
    return {**outcome, "status": "applied", "detail": detail}


def _add_comment(installation, bot, issue_id, params) -> str:
    comment = transitions.add_comment(issue_id, bot, params["body"])
    return f"comment {comment.id} added"


def _update(bot: User, issue_id: int, **changes: Any) -> Issue:
    issue = db.session.get(Issue, issue_id)
    if issue is None:
        raise NotFound("The issue is gone.")
    return issues.update_issue(issue_id, bot, issue.lock_version, **changes)


def _set_field(installation, bot, issue_id, params) -> str:
    field, value = params["field"], params["value"]
    if field in ("assignee", "assignee_id"):
        return _assign(installation, bot, issue_id, {"assignee": value})
    name = ROW_FIELDS.get(field)
    if name is not None:
        _update(bot, issue_id, **{name: value})
    else:
        key = field.split(".", 1)[1] if field.startswith(("custom_fields.", "fields.")) else field
        _update(bot, issue_id, custom_fields={key: value})
    return f"{field} = {value!r}"[:200]


def _assign(installation, bot, issue_id, params) -> str:
    email = params["assignee"]
    user_id = None
    if email:
        user_id = db.session.scalar(select(User.id).where(func.lower(User.email) == str(email).casefold()))
        if user_id is None:
            raise Invalid({"assignee": f"{email} is not an account"})
    _update(bot, issue_id, assignee_id=user_id)
    return f"assigned to {email}" if email else "unassigned"


def _transition(installation, bot, issue_id, params) -> str:
    moved = transitions.apply_transition(issue_id, bot, target=params.get("to"), transition=params.get("transition"))
    return f"{moved.from_state} → {moved.state}"


def _notify(installation, bot, issue_id, params) -> str:
    count = extensions.notify_admins(installation, params["title"], params["body"], params["level"], issue_id)
    return f"{count} notified"


_DO = {"add_comment": _add_comment, "set_field": _set_field, "assign": _assign, "transition": _transition,
       "notify": _notify}

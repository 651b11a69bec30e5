"""Approval requests (by an action, or on entering a state with an approval policy) and scheduled reminders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from app.extensions import db
from app.kiket.conditions import evaluate
from app.kiket.runtime.directives import resolve_recipients
from app.kiket.runtime.events import Event
from app.kiket.runtime.snapshot import Actor, to_context
from app.queue import get_queue, redis_connection
from app.services import audit
from app.services.runtime import events, notifications
from app.services.runtime.effects.scope import Scope, load_scope, snapshot_of, template_ctx, user_ids_of

def request_approval(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    ids, unknown = user_ids_of(p.get("users") or ())
    reason = p.get("reason") or "Approval requested"
    if ids:
        notifications.notify(ids, scope.project.id, scope.issue.id,
                             f"Approval requested on {scope.issue.key} {scope.issue.title}: {reason}", "warning")
    return f"{len(ids)} approver(s) asked" + (f"; unresolved: {', '.join(unknown + list(p.get('unresolved') or ()))}"
                                              if unknown or p.get("unresolved") else "")


def request_state_approval(scope: Scope, state: str, actor: Actor | None, chain: tuple[str, ...]) -> Event:
    """Entering a state with an approval policy: ask its approvers and return `approval.requested`."""
    workflow = scope.workflow
    policy = workflow.states[state].approval
    approvers: list[str] = []
    for approver in (policy.approvers if policy is not None else ()):
        approvers.append(("@" + approver.ref) if approver.kind == "role" else
                         approver.ref if approver.kind == "user" else f"issue.{approver.ref}")
    found = resolve_recipients(approvers, template_ctx(scope, None), scope.directory)
    ids, _ = user_ids_of(found.users)
    label = workflow.states[state].label
    if ids:
        notifications.notify(ids, scope.project.id, scope.issue.id,
                             f"Approval requested: {scope.issue.key} {scope.issue.title} is in {label}", "warning")
    return Event("approval.requested", actor, {"approval": {"state": state, "approver": list(found.users),
                                                           "decision": None, "reason": None}}, chain)


def reminder(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    delay = int(p["delay_s"])
    job_id = events.job_id("reminder", scope.issue.id, scope.issue.state_entry, tag)
    redis_connection()  # fail here, recorded, when Redis is away
    get_queue("default").enqueue_in(
        timedelta(seconds=delay), "jobs.default.send_reminder", scope.issue.id, scope.issue.state,
        scope.issue.state_entry, p.get("message"), p.get("recipients"), p.get("condition"), list(chain),
        job_id=job_id, job_timeout=120, result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600)
    return f"reminder in {delay}s ({job_id})"


def send_reminder(issue_id: int, state: str, state_entry: int, message: str | None, recipients: Any,
                  condition: Any, chain: Sequence[str], now: datetime | None = None) -> str:
    """A scheduled reminder is due: re-check its conditions against the issue now, then notify."""
    scope = load_scope(issue_id, now)
    if scope is None:
        return "issue gone"
    context = to_context(snapshot_of(scope.issue, scope.pinned), scope.now, workflow=scope.workflow,
                         calendar=scope.calendar)
    if condition is not None and not evaluate(condition, context):
        outcome = "skipped: conditions no longer hold"
    else:
        found = resolve_recipients(recipients, template_ctx(scope, None), scope.directory)
        ids, _ = user_ids_of(found.users)
        text = message or f"Reminder: {scope.issue.key} {scope.issue.title}"
        notifications.notify(ids, scope.project.id, issue_id, text, "warning")
        outcome = f"sent to {len(ids)}"
    audit.record(scope.project.id, "reminder.due", None, issue_id, {"outcome": outcome, "state": state,
                                                                   "state_entry": state_entry})
    db.session.commit()
    return outcome

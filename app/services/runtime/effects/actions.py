"""Performing actions: each one's directive built and carried out in order, by the handler of its kind."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from rq import Retry

from app.extensions import db
from app.kiket import model as km
from app.kiket.runtime.directives import Directive, build_directive
from app.kiket.runtime.events import Event
from app.kiket.runtime.snapshot import Actor
from app.models.issues import Issue
from app.queue import enqueue
from app.services import audit
from app.services.runtime import events
from app.services.runtime.effects import changes, notify, reminders
from app.services.runtime.effects.scope import Outcome, Scope, load_scope, template_ctx

log = logging.getLogger(__name__)

# Actions that change the issue: the snapshot is rebuilt after them so later actions see the change.
MUTATING = frozenset({"assign", "set_field", "add_label", "remove_label", "add_watcher", "escalate", "transition"})
ACTION_RETRY = (30, 300, 1800)
# What an issue-free event (`workflow.updated`, `schedule.cron`) can do; other actions are skipped.
ISSUE_FREE_KINDS = frozenset({"notify", "webhook", "create_issue"})

HANDLERS = {
    "notify": notify.notify,
    "webhook": notify.webhook,
    "transition": changes.transition,
    "assign": changes.assign,
    "set_field": changes.set_field,
    "add_label": changes.add_label,
    "remove_label": changes.remove_label,
    "add_comment": changes.comment,
    "add_watcher": changes.watcher,
    "escalate": changes.escalate,
    "create_issue": changes.create_issue,
    "schedule_reminder": reminders.reminder,
    "request_approval": reminders.request_approval,
}


def perform_actions(scope: Scope, actions: Sequence[tuple[str, km.Action]], event: Event | None,
                    actor: Actor | None, chain: tuple[str, ...], *, automation_id: str | None) -> list[Outcome]:
    """Build and perform each action's directive in order; a failure is recorded and the next action still runs."""
    outcomes = []
    context = template_ctx(scope, event, actor)
    for index, (phase, action) in enumerate(actions):
        secrets = scope.secrets() if action.type == "webhook" else None
        directive = build_directive(action, context, directory=scope.directory, secrets=secrets, now=scope.now)
        if directive.kind == "skipped":
            outcomes.append(Outcome(phase, action.type, "skipped", directive.reason or "", directive.missing))
            continue
        if directive.kind == "failed":
            log.warning("action failed issue=%s type=%s: %s", _issue_key(scope), action.type, directive.reason)
            outcomes.append(Outcome(phase, action.type, "failed", directive.reason or "", directive.missing))
            continue
        if scope.issue is None and directive.kind not in ISSUE_FREE_KINDS:
            outcomes.append(Outcome(phase, action.type, "skipped", "needs an issue; this event has none"))
            continue
        emitted_chain = (*chain, automation_id) if automation_id else chain
        tag = f"{automation_id or 'hook'}:{phase}:{index}"
        try:
            detail = perform(scope, directive, event, emitted_chain, tag)
        except changes.InvalidValue as error:
            # The value fails the issue page's checks: nothing stored, and a retry would fail the same way.
            db.session.rollback()
            log.warning("action refused issue=%s type=%s: %s", _issue_key(scope), action.type, error)
            outcomes.append(Outcome(phase, action.type, "failed", f"refused: {error}"[:500]))
            scope.issue = db.session.get(Issue, scope.issue.id) if scope.issue is not None else None
            continue
        except Exception as error:  # noqa: BLE001 - one failed action never stops the others
            db.session.rollback()
            log.exception("action failed issue=%s type=%s", _issue_key(scope), action.type)
            if scope.issue is None:
                # Retries re-load their issue; an issue-free action's failure is recorded only.
                outcomes.append(Outcome(phase, action.type, "failed", f"{type(error).__name__}: {error}"[:500]))
                continue
            retry_later(scope, directive, event, emitted_chain, tag)
            outcomes.append(Outcome(phase, action.type, "failed", f"{type(error).__name__}: {error} (retrying)"[:500]))
            scope.issue = db.session.get(Issue, scope.issue.id)
            continue
        outcomes.append(Outcome(phase, action.type, "applied", detail, directive.missing,
                                notify_target(action.params) if action.type == "notify" else None))
        if directive.kind in MUTATING and scope.issue is not None:
            db.session.expire_all()
            scope.issue = db.session.get(Issue, scope.issue.id)
            context = template_ctx(scope, event, actor)
    return outcomes


def notify_target(params: Mapping[str, Any]) -> str | None:
    """Whom a notify action names, as written: a channel other than in-app or email, else its recipients."""
    channel = params.get("channel")
    if isinstance(channel, str) and channel not in ("in_app", "email"):
        return channel
    spec = params.get("recipients")
    if isinstance(spec, Mapping):
        refs = [("@" + str(r).lstrip("@")) for r in _listed(spec.get("roles"))]
        refs += [str(r) for key in ("user", "users", "fields", "emails", "email") for r in _listed(spec.get(key))]
    else:
        refs = [str(r) for r in _listed(spec)]
    return ", ".join(refs)[:200] or None


def _listed(value: Any) -> list:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


def _issue_key(scope: Scope) -> str | None:
    return scope.issue.key if scope.issue is not None else None


def retry_later(scope: Scope, directive: Directive, event: Event | None, chain: tuple[str, ...], tag: str) -> None:
    """Queue the failed directive on its own job, which RQ retries until it works or gives up."""
    try:
        enqueue("default", "jobs.default.retry_directive", scope.issue.id, directive.kind, directive.action_type,
                dict(directive.params), event.name if event else None, list(chain), tag,
                job_id=events.job_id("directive", scope.issue.id, scope.issue.lock_version, tag), job_timeout=300,
                retry=Retry(max=len(ACTION_RETRY), interval=list(ACTION_RETRY)), failure_ttl=7 * 24 * 3600)
    except Exception as error:  # noqa: BLE001 - the failure is already recorded
        log.error("could not queue a retry issue=%s tag=%s: %s", scope.issue.id, tag, error)


def retry_directive(issue_id: int, kind: str, action_type: str, params: Mapping[str, Any], event_name: str | None,
                    chain: Sequence[str], tag: str) -> str:
    """Perform one previously failed directive again; raises on failure so RQ retries it."""
    scope = load_scope(issue_id)
    if scope is None:
        return "issue gone"
    event = Event(event_name, None, {}, tuple(chain)) if event_name else None
    detail = perform(scope, Directive(kind, action_type, params), event, tuple(chain), tag)
    audit.record(scope.project.id, "action.retried", None, issue_id, {"type": action_type, "tag": tag, "detail": detail})
    db.session.commit()
    return detail


def perform(scope: Scope, directive: Directive, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    """Carry out one runnable directive; returns what it did, in words. Raises on failure."""
    handler = HANDLERS[directive.kind]
    return handler(scope, dict(directive.params), event, chain, tag)

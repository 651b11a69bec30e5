"""Running one event: an issue's (SLA bookkeeping, hooks in order, approvals requested, automations) or a project's."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from app.extensions import db
from app.kiket import model as km
from app.kiket.runtime.approvals import requests_approval
from app.kiket.runtime.effects import checklist_complete_effects, plan_creation_effects, plan_transition_phases
from app.kiket.runtime.events import Event, transition_event
from app.kiket.runtime.sla import sla_hook_actions
from app.models.issues import Approval, Comment, IssueTransition
from app.models.repositories import ConfigRevision
from app.queue import redis_connection
from app.services import audit
from app.services.runtime import sla
from app.services.runtime.effects.actions import perform_actions
from app.services.runtime.effects.automations import run_automations
from app.services.runtime.effects.notify import notify_decision, notify_watchers
from app.services.runtime.effects.reminders import request_state_approval
from app.services.runtime.effects.scope import (
    Outcome, Scope, actor_for, email_of, load_project_scope, load_scope, parse_now,
)

log = logging.getLogger(__name__)

DONE_TTL = 7 * 24 * 3600


def run_issue_event(kind: str, issue_id: int, record: str, actor_id: int | None, chain: Sequence[str],
                    extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Handle one event of an issue: SLA bookkeeping, hooks in order, approvals requested, automations."""
    extra = dict(extra or {})
    now = parse_now(extra.get("now"))
    scope = load_scope(issue_id, now)
    if scope is None:
        log.info("event %s for missing issue %s ignored", kind, issue_id)
        return {"skipped": "issue not found"}
    chain = tuple(chain or ())
    actor = actor_for(actor_id, chain, scope.active)
    issue, workflow = scope.issue, scope.workflow
    hooks: list[tuple[str, km.Action]] = []
    emitted: list[Event] = []
    entered: str | None = None
    hooks_state: str | None = None

    if kind == "issue.created":
        emitted.append(Event("issue.created", actor, {}, chain))
        if workflow is not None and workflow.initial in workflow.states:
            hooks = [("on_enter", a) for a in plan_creation_effects(workflow)]
        entered = issue.state
    elif kind == "issue.transitioned":
        row = db.session.get(IssueTransition, int(record))
        if row is None:
            return {"skipped": "transition record not found"}
        transition = None
        if workflow is not None:
            transition = next((t for t in workflow.transitions if t.id == row.transition_id), None)
            hooks = list(plan_transition_phases(workflow, row.from_state or "", row.to_state, transition))
        name = transition.name if transition is not None else (row.transition_id or "")
        final = workflow is not None and row.to_state in workflow.finals
        emitted.extend(transition_event(row.from_state or "", row.to_state, name, actor, final=final, chain=chain))
        entered = row.to_state
    elif kind == "issue.updated":
        changes = extra.get("changes") or {}
        emitted.append(Event("issue.updated", actor, {"changes": changes}, chain))
        if "assignee" in changes or "assignee_id" in changes:
            assignee = changes.get("assignee", changes.get("assignee_id"))
            emitted.append(Event("issue.assigned", actor, {"changes": {"assignee": assignee}}, chain))
    elif kind == "issue.commented":
        comment = db.session.get(Comment, int(record))
        if comment is None:
            return {"skipped": "comment not found"}
        payload = {"id": comment.id, "body": comment.body, "author": email_of(comment.author) or "Kiket automation"}
        emitted.append(Event("issue.commented", actor, {"comment": payload}, chain))
        notify_watchers(scope, comment)
    elif kind == "checklist.completed":
        if workflow is not None:
            hooks = [("on_complete", a) for a in checklist_complete_effects(workflow, record)]
        checklist = workflow.checklist(record) if workflow is not None else None
        hooks_state = checklist.state if checklist is not None else None
        emitted.append(Event("checklist.completed", actor,
                             {"checklist": {"id": record, "state": checklist.state if checklist else None}}, chain))
    elif kind == "approval.decided":
        approval = db.session.get(Approval, int(record))
        if approval is None:
            return {"skipped": "approval not found"}
        name = "approval.granted" if approval.decision == "approved" else "approval.denied"
        payload = {"state": approval.state, "approver": email_of(approval.approver), "decision": approval.decision,
                   "reason": approval.reason}
        emitted.append(Event(name, actor, {"approval": payload}, chain))
        notify_decision(scope, approval)
    elif kind in ("sla.warning", "sla.breach"):
        state = workflow.states.get(extra.get("state", "")) if workflow is not None else None
        if state is not None:
            hooks = [(kind, a) for a in sla_hook_actions(state, kind)]
        emitted.append(Event(kind, None, {"sla": extra.get("sla") or {}}, chain))
    elif kind == "approval.overdue":
        emitted.append(Event(kind, None, {"approval": extra.get("approval") or {}}, chain))
    else:
        raise ValueError(f"unknown issue event kind {kind!r}")

    if kind not in ("sla.warning", "sla.breach", "approval.overdue"):
        sla.sync_timer(scope)
    # The state whose hooks these are, named in the history ("Hooks of Fixing ran").
    hooks_state = entered or hooks_state or extra.get("state") or issue.state
    outcomes = run_hooks(scope, hooks, emitted[0] if emitted else None, chain, state=hooks_state) if hooks else []
    if entered is not None and workflow is not None and entered == issue.state and requests_approval(workflow, entered):
        emitted.append(request_state_approval(scope, entered, actor, chain))
    runs = []
    for event in emitted:
        runs.extend(run_automations(scope, event))
    return {"hooks": [o.as_dict() for o in outcomes], "automations": runs}


def run_hooks(scope: Scope, hooks: Sequence[tuple[str, km.Action]], event: Event | None,
              chain: Sequence[str], *, state: str | None = None) -> list[Outcome]:
    """Perform hook actions in order; one audit event records the whole run with each outcome."""
    started = time.perf_counter()
    outcomes = perform_actions(scope, hooks, event, None, tuple(chain), automation_id=None)
    duration = int((time.perf_counter() - started) * 1000)
    audit.record(scope.project.id, "hooks.run", None, scope.issue.id, {
        "event": event.name if event else None, "actions": [o.as_dict() for o in outcomes], "duration_ms": duration,
        **({"state": state} if state else {}),
    })
    db.session.commit()
    log.info("hooks ran issue=%s event=%s actions=%d failed=%d ms=%d", scope.issue.key, event.name if event else None,
             len(outcomes), sum(o.status == "failed" for o in outcomes), duration)
    return outcomes


def run_project_event(kind: str, project_id: int, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Handle one issue-free event of a project (`workflow.updated`): the automations it triggers."""
    extra = dict(extra or {})
    scope = load_project_scope(project_id, parse_now(extra.get("now")))
    if scope is None:
        return {"skipped": "project not found"}
    if kind != "workflow.updated":
        raise ValueError(f"unknown project event kind {kind!r}")
    # An activation is handled once, even when its job is enqueued twice.
    done = f"kiket:done:{extra['activation']}" if extra.get("activation") else None
    if done is not None and redis_connection().exists(done):
        return {"skipped": "already handled"}
    row = db.session.get(ConfigRevision, extra["revision_id"]) if extra.get("revision_id") else None
    revision = {"id": row.id, "commit_sha": row.commit_sha, "status": row.status} if row is not None else {}
    event = Event("workflow.updated", None, {"revision": revision})
    out = {"automations": run_automations(scope, event)}
    if done is not None:
        redis_connection().set(done, "1", ex=DONE_TTL)
    return out

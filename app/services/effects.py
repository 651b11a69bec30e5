"""The effects engine: what an issue event does once its change has committed (spec §8.7, §10, §8.3).

`run_issue_event` is what the `default` queue runs for every event the issue services emit
(`app.services.events`). It rebuilds the issue snapshot from the database, keeps the SLA timer
of the current state entry in step, runs the hook actions in spec order (creation: the initial
`on_enter`; transition: old `on_exit`, the transition's actions, new `on_enter`; checklist: the
owning state's `on_complete`), then the automations the event triggers. Every action becomes a
`Directive` (app.kiket.runtime.directives) and is performed here; each outcome is recorded (one
audit event per hook run, one AutomationRun per automation run). A failing action is logged,
recorded, retried on its own job, and never undoes the change that caused it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from flask import current_app
from rq import Retry
from sqlalchemy import func, select

from app.extensions import db
from app.kiket import model as km
from app.kiket.conditions import evaluate
from app.kiket.runtime.approvals import requests_approval
from app.kiket.runtime.automations import RATE_LIMIT, RATE_WINDOW_S, RateWindow, evaluate_automations
from app.kiket.runtime.directives import Directive, Directory, build_directive, resolve_recipients
from app.kiket.runtime.effects import checklist_complete_effects, plan_creation_effects, plan_transition_phases
from app.kiket.runtime.events import Event, transition_event
from app.kiket.runtime.sla import sla_hook_actions
from app.kiket.runtime.snapshot import Actor, ApprovalRecord, IssueSnapshot, template_context, to_context
from app.kiket.secret_usage import SIGNING_SECRETS
from app.models.accounts import User
from app.models.base import utcnow
from app.models.issues import (
    Approval, Attachment, AutomationRun, ChecklistProgress, Comment, Issue, IssueTransition, Watcher,
)
from app.models.projects import Project, ProjectMembership
from app.models.repositories import ConfigRevision
from app.queue import enqueue, redis_connection
from app.services import audit, automation_runs, events, notifications
from app.services.sync import configuration
from app.services.errors import Conflict, Forbidden, NotFound

log = logging.getLogger(__name__)

# Fields an action edits on the row itself; anything else lands in custom_fields.
ROW_FIELDS = ("title", "description", "priority", "due_date", "labels", "assignee")
# Actions that change the issue: the snapshot is rebuilt after them so later actions see the change.
MUTATING = frozenset({"assign", "set_field", "add_label", "remove_label", "add_watcher", "escalate", "transition"})
ACTION_RETRY = (30, 300, 1800)
# What an issue-free event (`workflow.updated`, `schedule.cron`) can do; other actions are skipped.
ISSUE_FREE_KINDS = frozenset({"notify", "webhook", "create_issue"})
# AutomationRun.outcome of a `requires_approval` run until someone decides it.
AWAITING_APPROVAL = "awaiting_approval"
DONE_TTL = 7 * 24 * 3600


@dataclass
class Outcome:
    """What one action did: `applied`, `skipped` or `failed`, with a reason in words."""

    phase: str
    action_type: str
    status: str
    detail: str = ""
    missing: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = {"phase": self.phase, "type": self.action_type, "status": self.status, "detail": self.detail}
        if self.missing:
            out["missing"] = list(self.missing)
        return out


@dataclass
class Scope:
    """Everything one event needs: the issue, its pinned workflow, the active configuration and the clock.

    Issue-free events (`workflow.updated`, `schedule.cron`) have no issue: `issue` and `workflow` are None and
    `pinned` is the active configuration.
    """

    issue: Issue | None
    project: Project
    pinned: km.ConfigRevision
    active: km.ConfigRevision
    workflow: km.Workflow | None
    now: datetime
    directory: Directory
    _secrets: dict[str, str] | None = field(default=None, repr=False)

    @property
    def calendar(self):
        return self.active.project.business_hours

    def secrets(self) -> dict[str, str]:
        if self._secrets is None:
            from app.services.webhooks.secrets import secrets_for

            self._secrets = secrets_for(self.project.id)
        return self._secrets


# Loading what the runtime needs


def config_for(issue: Issue) -> km.ConfigRevision:
    """The configuration holding the issue's pinned workflow version (else the project's active one)."""
    if issue.config_revision_id:
        row = db.session.get(ConfigRevision, issue.config_revision_id)
        if row is not None and row.repository_id is not None:
            try:
                return configuration.revision_config(row)
            except configuration.ConfigUnavailable as error:
                log.warning("pinned revision %s of %s unavailable: %s", row.id, issue.key, error)
    return configuration.project_config(issue.project)


def load_scope(issue_id: int, now: datetime | None = None) -> Scope | None:
    """The scope of an event on one issue, or None when the issue is gone."""
    issue = db.session.get(Issue, issue_id)
    if issue is None:
        return None
    project = issue.project
    active = configuration.project_config(project)
    pinned = config_for(issue)
    workflow = pinned.workflows.get(issue.workflow_id) or active.workflows.get(issue.workflow_id)
    return Scope(issue, project, pinned, active, workflow, now or utcnow(), directory_for(project, active))


def load_project_scope(project_id: int, now: datetime | None = None) -> Scope | None:
    """The scope of an issue-free event of a project, or None when the project is gone."""
    project = db.session.get(Project, project_id)
    if project is None:
        return None
    active = configuration.project_config(project)
    return Scope(None, project, active, active, None, now or utcnow(), directory_for(project, active))


def _email(user: User | None) -> str | None:
    return user.email if user is not None else None


def team_roles(revision: km.ConfigRevision, identity: str | None) -> frozenset[str]:
    """Roles a person holds in the configuration's team (identities are e-mail addresses)."""
    if not identity:
        return frozenset()
    folded = identity.casefold()
    return frozenset(r for m in revision.team.members if m.identity.casefold() == folded for r in m.roles)


def actor_for(user_id: int | None, chain: Sequence[str], revision: km.ConfigRevision) -> Actor | None:
    """The event's actor: the automation at the end of the chain, else the user (None: the system)."""
    if chain:
        return Actor(chain[-1], is_automation=True)
    if user_id is None:
        return None
    user = db.session.get(User, user_id)
    if user is None:
        return None
    return Actor(user.email, roles=team_roles(revision, user.email))


def snapshot_of(issue: Issue, revision: km.ConfigRevision) -> IssueSnapshot:
    """The runtime's frozen view of an issue row and its runtime rows."""
    ticks: dict[str, dict[str, bool]] = {}
    for row in db.session.scalars(select(ChecklistProgress).where(ChecklistProgress.issue_id == issue.id)):
        ticks.setdefault(row.checklist_id, {})[row.item_id] = bool(row.checked)
    approvals = tuple(
        ApprovalRecord(approver=_email(row.approver) or "", roles=team_roles(revision, _email(row.approver)),
                       decision=row.decision, at=row.at, reason=row.reason)
        for row in db.session.scalars(select(Approval).where(
            Approval.issue_id == issue.id, Approval.state == issue.state, Approval.state_entry == issue.state_entry)
            .order_by(Approval.at, Approval.id)))
    documents = frozenset(d for d in db.session.scalars(
        select(Attachment.document_key).where(Attachment.issue_id == issue.id, Attachment.document_key.is_not(None))))
    watchers = tuple(db.session.scalars(
        select(User.email).join(Watcher, Watcher.user_id == User.id).where(Watcher.issue_id == issue.id)
        .order_by(Watcher.id)))
    parent = db.session.scalar(select(Issue.key).where(Issue.id == issue.parent_id)) if issue.parent_id else None
    return IssueSnapshot(
        id=issue.id, key=issue.key, title=issue.title, description=issue.description, status=issue.state,
        issue_type=issue.issue_type, workflow=issue.workflow_id, priority=issue.priority,
        assignee=_email(issue.assignee), reporter=_email(issue.reporter), labels=tuple(issue.labels or ()),
        due_date=issue.due_date, parent=parent, created_at=issue.created_at, updated_at=issue.updated_at,
        resolved_at=issue.resolved_at, custom_fields=dict(issue.custom_fields or {}),
        state_entered_at=issue.state_entered_at, checklists=ticks, approvals=approvals, documents=documents,
        watchers=watchers, project=issue.project.key,
    )


def directory_for(project: Project, revision: km.ConfigRevision) -> Directory:
    """Role members (team.yaml, plus project membership roles), known users, open-issue load, rotation cursors."""
    role_members: dict[str, list[str]] = {name: [] for name in revision.team.roles}
    for member in revision.team.members:
        for role in member.roles:
            role_members.setdefault(role, []).append(member.identity)
    memberships = db.session.execute(
        select(ProjectMembership.role, User.email).join(User, User.id == ProjectMembership.user_id)
        .where(ProjectMembership.project_id == project.id).order_by(ProjectMembership.id)).all()
    for role, email in memberships:
        role_members.setdefault(role, []).append(email)
    users = frozenset(db.session.scalars(select(User.email)))
    load = dict(db.session.execute(
        select(User.email, func.count(Issue.id)).join(Issue, Issue.assignee_id == User.id)
        .where(Issue.project_id == project.id, Issue.resolved_at.is_(None)).group_by(User.email)).all())
    rotation = {}
    try:
        raw = redis_connection().hgetall(_rotation_key(project.id))
        rotation = {k.decode(): int(v) for k, v in raw.items()}
    except Exception as error:  # noqa: BLE001 - no rotation memory just means starting over
        log.warning("rotation cursors unavailable project=%s: %s", project.id, error)
    return Directory(role_members={k: tuple(v) for k, v in role_members.items()}, users=users, load=load,
                     rotation=rotation)


def _rotation_key(project_id: int) -> str:
    return f"kiket:rotation:{project_id}"


def template_ctx(scope: Scope, event: Event | None, actor: Actor | None = None) -> dict[str, Any]:
    """The §12 template roots for the current state of the issue (none for issue-free events)."""
    snapshot = snapshot_of(scope.issue, scope.pinned) if scope.issue is not None else None
    return template_context(
        snapshot, scope.now, event, actor, workflow=scope.workflow, calendar=scope.calendar,
        project={"id": scope.project.id, "key": scope.project.key, "name": scope.project.name},
        issue_url=None,
    )


# The event job


def run_issue_event(kind: str, issue_id: int, record: str, actor_id: int | None, chain: Sequence[str],
                    extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Handle one event of an issue: SLA bookkeeping, hooks in order, approvals requested, automations."""
    from app.services import sla

    extra = dict(extra or {})
    now = _parse_now(extra.get("now"))
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
        payload = {"id": comment.id, "body": comment.body, "author": _email(comment.author) or "Kiket automation"}
        emitted.append(Event("issue.commented", actor, {"comment": payload}, chain))
        _notify_watchers(scope, comment)
    elif kind == "checklist.completed":
        if workflow is not None:
            hooks = [("on_complete", a) for a in checklist_complete_effects(workflow, record)]
        checklist = workflow.checklist(record) if workflow is not None else None
        emitted.append(Event("checklist.completed", actor,
                             {"checklist": {"id": record, "state": checklist.state if checklist else None}}, chain))
    elif kind == "approval.decided":
        approval = db.session.get(Approval, int(record))
        if approval is None:
            return {"skipped": "approval not found"}
        name = "approval.granted" if approval.decision == "approved" else "approval.denied"
        payload = {"state": approval.state, "approver": _email(approval.approver), "decision": approval.decision,
                   "reason": approval.reason}
        emitted.append(Event(name, actor, {"approval": payload}, chain))
        _notify_decision(scope, approval)
    elif kind in ("sla.warning", "sla.breach"):
        state = workflow.states.get(extra.get("state", "")) if workflow is not None else None
        if state is not None:
            hooks = [(kind, a) for a in sla_hook_actions(state, kind)]
        emitted.append(Event(kind, None, {"sla": extra.get("sla") or {}}, chain))
    else:
        raise ValueError(f"unknown issue event kind {kind!r}")

    if kind != "sla.warning" and kind != "sla.breach":
        sla.sync_timer(scope)
    outcomes = run_hooks(scope, hooks, emitted[0] if emitted else None, chain) if hooks else []
    if entered is not None and workflow is not None and entered == issue.state and requests_approval(workflow, entered):
        emitted.append(request_state_approval(scope, entered, actor, chain))
    runs = []
    for event in emitted:
        runs.extend(run_automations(scope, event))
    return {"hooks": [o.as_dict() for o in outcomes], "automations": runs}


def _parse_now(raw: Any) -> datetime | None:
    if not raw:
        return None
    moment = datetime.fromisoformat(str(raw))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# Hooks


def run_hooks(scope: Scope, hooks: Sequence[tuple[str, km.Action]], event: Event | None,
              chain: Sequence[str]) -> list[Outcome]:
    """Perform hook actions in order; one audit event records the whole run with each outcome."""
    started = time.perf_counter()
    outcomes = perform_actions(scope, hooks, event, None, tuple(chain), automation_id=None)
    duration = int((time.perf_counter() - started) * 1000)
    audit.record(scope.project.id, "hooks.run", None, scope.issue.id, {
        "event": event.name if event else None, "actions": [o.as_dict() for o in outcomes], "duration_ms": duration,
    })
    db.session.commit()
    log.info("hooks ran issue=%s event=%s actions=%d failed=%d ms=%d", scope.issue.key, event.name if event else None,
             len(outcomes), sum(o.status == "failed" for o in outcomes), duration)
    return outcomes


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
        outcomes.append(Outcome(phase, action.type, "applied", detail, directive.missing))
        if directive.kind in MUTATING and scope.issue is not None:
            db.session.expire_all()
            scope.issue = db.session.get(Issue, scope.issue.id)
            context = template_ctx(scope, event, actor)
    return outcomes


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


# Performing directives


def perform(scope: Scope, directive: Directive, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    """Carry out one runnable directive; returns what it did, in words. Raises on failure."""
    handler = _HANDLERS[directive.kind]
    return handler(scope, dict(directive.params), event, chain, tag)


def _user_ids(identities: Sequence[str]) -> tuple[list[int], list[str]]:
    """(user ids, identities that are not accounts)."""
    wanted = {i.casefold(): i for i in identities if i}
    if not wanted:
        return [], []
    rows = db.session.execute(select(User.id, User.email).where(func.lower(User.email).in_(list(wanted)))).all()
    found = {email.casefold(): uid for uid, email in rows}
    return [found[k] for k in wanted if k in found], [v for k, v in wanted.items() if k not in found]


def _default_message(scope: Scope, event: Event | None) -> str:
    what = event.name if event else "update"
    if scope.issue is None:
        return f"{scope.project.key}: {what}"
    return f"{scope.issue.key} {scope.issue.title}: {what}"


def _notify(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    ids, unknown = _user_ids(p.get("users") or ())
    emails = list(p.get("emails") or ())
    channel = p.get("channel") or "in_app"
    if channel == "in_app" and not ids:
        return f"nobody to notify in-app (not accounts: {', '.join(unknown)})" if unknown else "nobody to notify"
    message = p.get("message") or p.get("title") or _default_message(scope, event)
    rows = notifications.notify(ids, scope.project.id, scope.issue.id if scope.issue else None, message, p.get("level") or "info", channel,
                                emails if channel == "email" else ())
    return f"{channel}: {len(rows)} notified" + (f", {len(emails)} emailed" if channel == "email" and emails else "")


def _webhook(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    from app.services.webhooks import delivery

    secrets = scope.secrets()
    # The signing key is a project secret (spec §12: secrets live in the app, never in the environment).
    signing = next((secrets[name] for name in SIGNING_SECRETS if secrets.get(name)), None)
    row = delivery.deliver(scope.project.id, p["url"], p.get("method") or "POST", p.get("headers") or {},
                           p.get("body"), event.name if event else "issue.event", signing,
                           timeout=p.get("timeout_s"))
    return f"delivery {row.id} queued"


def _transition(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    from app.services import transitions

    target = p["to"]
    if scope.workflow is not None and target not in scope.workflow.states:
        raise ValueError(f"'{target}' is not a state of workflow {scope.workflow.id}")
    if scope.issue.state == target:
        return f"already in {target}"
    transitions.apply_transition(scope.issue.id, None, target=target, as_automation=True, chain=chain)
    return f"moved to {target}"


def _save(scope: Scope, changes: dict[str, list[Any]], kind: str, chain: tuple[str, ...]) -> None:
    """Commit the issue's edited fields with an audit event and `issue.updated`."""
    if not changes:
        db.session.rollback()
        return
    audit.record(scope.project.id, kind, None, scope.issue.id,
                 {"changes": {k: [_json(v[0]), _json(v[1])] for k, v in changes.items()}, "by": "automation",
                  "chain": list(chain)})
    events.issue_updated(scope.issue.id, {k: (v[0], v[1]) for k, v in changes.items()}, None, chain=chain)
    db.session.commit()


def _json(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def set_issue_field(issue: Issue, path: str, value: Any) -> tuple[Any, Any] | None:
    """Set a standard or custom field of the row; (old, new) when it changed, else None."""
    if path.startswith("custom_fields."):
        path = path.split(".", 1)[1]
    elif path in ROW_FIELDS:
        if path == "assignee":
            old = _email(issue.assignee)
            ids, _ = _user_ids([value] if value else [])
            if value and not ids:
                raise ValueError(f"{value!r} is not an account")
            issue.assignee_id = ids[0] if ids else None
            return (old, value) if old != value else None
        if path == "labels":
            value = [str(v) for v in (value if isinstance(value, (list, tuple)) else [value]) if v not in (None, "")]
        if path == "due_date" and isinstance(value, str):
            value = date.fromisoformat(value[:10]) if value else None
        old = getattr(issue, path)
        if old == value:
            return None
        setattr(issue, path, value)
        return (old, value)
    fields = dict(issue.custom_fields or {})
    parts = path.split(".")
    old = fields.get(parts[0])
    if len(parts) > 1:
        nested = dict(old or {}) if isinstance(old, Mapping) else {}
        nested[".".join(parts[1:])] = value
        value = nested
    if old == value:
        return None
    fields[parts[0]] = value
    issue.custom_fields = fields
    return (old, value)


def _assign(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    field_path = p.get("field") or "assignee"
    change = set_issue_field(scope.issue, field_path, p["user"])
    if p.get("role") and p.get("rotation_index") is not None:
        redis_connection().hset(_rotation_key(scope.project.id), p["role"], int(p["rotation_index"]))
    _save(scope, {field_path: list(change)} if change else {}, "issue.assigned", chain)
    return f"{field_path} = {p['user']}" + ("" if change else " (unchanged)")


def _set_field(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    change = set_issue_field(scope.issue, p["field"], p.get("value"))
    _save(scope, {p["field"]: list(change)} if change else {}, "issue.updated", chain)
    return f"{p['field']} = {p.get('value')!r}" + ("" if change else " (unchanged)")


def _labels(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str,
            remove: bool = False) -> str:
    old = list(scope.issue.labels or [])
    if remove:
        new = [label for label in old if label not in p["labels"]]
    else:
        new = old + [label for label in p["labels"] if label not in old]
    if new != old:
        scope.issue.labels = new
    _save(scope, {"labels": [old, new]} if new != old else {}, "issue.updated", chain)
    return ("removed " if remove else "added ") + ", ".join(p["labels"])


def _add_label(scope, p, event, chain, tag):
    return _labels(scope, p, event, chain, tag)


def _remove_label(scope, p, event, chain, tag):
    return _labels(scope, p, event, chain, tag, remove=True)


def _comment(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    # author None is the system user, shown as "Kiket automation".
    comment = Comment(issue_id=scope.issue.id, author_id=None, body=p["body"])
    db.session.add(comment)
    db.session.flush()
    audit.record(scope.project.id, "comment.added", None, scope.issue.id,
                 {"comment_id": comment.id, "by": "automation", "chain": list(chain)})
    events.issue_commented(scope.issue.id, comment.id, None, chain=chain)
    db.session.commit()
    return f"comment {comment.id} added"


def add_watchers(issue_id: int, user_ids: Sequence[int]) -> int:
    """Add watchers that are not watching yet (the caller commits); returns how many were added."""
    existing = set(db.session.scalars(select(Watcher.user_id).where(Watcher.issue_id == issue_id)))
    fresh = [uid for uid in dict.fromkeys(user_ids) if uid not in existing]
    db.session.add_all(Watcher(issue_id=issue_id, user_id=uid) for uid in fresh)
    return len(fresh)


def _watcher(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    ids, unknown = _user_ids(p.get("users") or ())
    added = add_watchers(scope.issue.id, ids)
    if added:
        audit.record(scope.project.id, "watchers.added", None, scope.issue.id, {"count": added, "by": "automation"})
    db.session.commit()
    return f"{added} watcher(s) added" + (f"; not accounts: {', '.join(unknown)}" if unknown else "")


def _escalate(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    notified = _notify(scope, {**p, "channel": "in_app"}, event, chain, tag)
    _labels(scope, {"labels": (p.get("label") or "escalated",)}, event, chain, tag)
    return f"escalated; {notified}"


def _create_issue(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    revision = scope.active
    issue_type = p.get("issue_type") or (scope.issue.issue_type if scope.issue is not None else None)
    if not issue_type:
        raise ValueError("create_issue needs an issue_type when the event has no issue")
    workflow = revision.workflows.get(p.get("workflow") or "") or revision.workflow_for(issue_type)
    if workflow is None:
        raise ValueError(f"no workflow for issue type {issue_type!r}")
    fields = dict(p.get("fields") or {})
    parent_id = scope.issue.id if scope.issue is not None and p.get("link") in ("child", "parent", "subtask") else None
    from app.services import issues as issue_service

    itype = revision.issue_types.get(issue_type)
    if itype is None:
        raise ValueError(f"unknown issue type {issue_type!r}")
    values, problems = issue_service.validate_custom_fields(itype, fields, organization_id=scope.project.organization_id)
    if problems:
        raise ValueError(f"fields: {problems}")
    row = issue_service.insert_issue(
        scope.project, itype=itype, workflow=workflow, title=p["title"], description=p.get("description") or "",
        state=workflow.initial, priority=None, assignee_id=None, reporter_id=None, labels=[], due_date=None,
        custom_fields=values, parent_id=parent_id, actor_id=None, actor_kind="automation")
    events.issue_created(row.id, None, chain=chain)
    db.session.commit()
    return f"created {row.key}"


def _reminder(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    delay = int(p["delay_s"])
    job_id = events.job_id("reminder", scope.issue.id, scope.issue.state_entry, tag)
    redis_connection()  # fail here, recorded, when Redis is away
    from app.queue import get_queue

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
        ids, _ = _user_ids(found.users)
        text = message or f"Reminder: {scope.issue.key} {scope.issue.title}"
        notifications.notify(ids, scope.project.id, issue_id, text, "warning")
        outcome = f"sent to {len(ids)}"
    audit.record(scope.project.id, "reminder.due", None, issue_id, {"outcome": outcome, "state": state,
                                                                   "state_entry": state_entry})
    db.session.commit()
    return outcome


def _request_approval(scope: Scope, p: dict, event: Event | None, chain: tuple[str, ...], tag: str) -> str:
    ids, unknown = _user_ids(p.get("users") or ())
    reason = p.get("reason") or "Approval requested"
    if ids:
        notifications.notify(ids, scope.project.id, scope.issue.id,
                             f"Approval requested on {scope.issue.key} {scope.issue.title}: {reason}", "warning")
    return f"{len(ids)} approver(s) asked" + (f"; unresolved: {', '.join(unknown + list(p.get('unresolved') or ()))}"
                                              if unknown or p.get("unresolved") else "")


_HANDLERS = {
    "notify": _notify,
    "webhook": _webhook,
    "transition": _transition,
    "assign": _assign,
    "set_field": _set_field,
    "add_label": _add_label,
    "remove_label": _remove_label,
    "add_comment": _comment,
    "add_watcher": _watcher,
    "escalate": _escalate,
    "create_issue": _create_issue,
    "schedule_reminder": _reminder,
    "request_approval": _request_approval,
}


# Notifications the events themselves send


def _notify_watchers(scope: Scope, comment: Comment) -> None:
    watchers = set(db.session.scalars(select(Watcher.user_id).where(Watcher.issue_id == scope.issue.id)))
    for uid in (scope.issue.assignee_id, scope.issue.reporter_id):
        if uid is not None:
            watchers.add(uid)
    watchers.discard(comment.author_id)
    if watchers:
        author = _email(comment.author) or "Kiket automation"
        notifications.notify(watchers, scope.project.id, scope.issue.id,
                             f"{author} commented on {scope.issue.key} {scope.issue.title}")


def _notify_decision(scope: Scope, approval: Approval) -> None:
    people = {uid for uid in (scope.issue.assignee_id, scope.issue.reporter_id) if uid is not None}
    people.discard(approval.approver_id)
    if people:
        who = _email(approval.approver) or "someone"
        level = "success" if approval.decision == "approved" else "warning"
        notifications.notify(people, scope.project.id, scope.issue.id,
                             f"{who} {approval.decision} {scope.issue.key} {scope.issue.title}", level)


def request_state_approval(scope: Scope, state: str, actor: Actor | None, chain: tuple[str, ...]) -> Event:
    """Entering a state with an approval policy: ask its approvers and return `approval.requested`."""
    workflow = scope.workflow
    policy = workflow.states[state].approval
    approvers: list[str] = []
    for approver in (policy.approvers if policy is not None else ()):
        approvers.append(("@" + approver.ref) if approver.kind == "role" else
                         approver.ref if approver.kind == "user" else f"issue.{approver.ref}")
    found = resolve_recipients(approvers, template_ctx(scope, None), scope.directory)
    ids, _ = _user_ids(found.users)
    label = workflow.states[state].label
    if ids:
        notifications.notify(ids, scope.project.id, scope.issue.id,
                             f"Approval requested: {scope.issue.key} {scope.issue.title} is in {label}", "warning")
    return Event("approval.requested", actor, {"approval": {"state": state, "approver": list(found.users),
                                                           "decision": None, "reason": None}}, chain)


# Automations


def rate_admit(project_id: int, action_types: Sequence[str], now: datetime) -> bool:
    """Admit one run of each action type against the per-project window kept in Redis (60 per minute)."""
    limit = int(current_app.config.get("KIKET_AUTOMATION_RATE_LIMIT", RATE_LIMIT))
    redis = redis_connection()
    project = str(project_id)
    types = list(dict.fromkeys(action_types))
    keys = {t: f"kiket:rate:{project_id}:{t}" for t in types}
    cutoff = now.timestamp() - RATE_WINDOW_S
    hits = {}
    for action_type, key in keys.items():
        redis.zremrangebyscore(key, "-inf", cutoff)
        hits[(project, action_type)] = tuple(float(s) for _, s in redis.zrange(key, 0, -1, withscores=True))
    window = RateWindow(limit=limit, hits=hits)
    for action_type in types:
        allowed, window = window.admit(project, action_type, now)
        if not allowed:
            return False
    pipe = redis.pipeline()
    for action_type, key in keys.items():
        pipe.zadd(key, {f"{now.timestamp():.6f}:{time.monotonic_ns()}": now.timestamp()})
        pipe.expire(key, RATE_WINDOW_S * 2)
    pipe.execute()
    return True


def run_automations(scope: Scope, event: Event, *, via_sweep: str | None = None,
                    only: Sequence[km.Automation] | None = None) -> list[dict[str, Any]]:
    """Run the automations an event triggers (or `only` those, from the sweep); every run is recorded."""
    snapshot = snapshot_of(scope.issue, scope.pinned) if scope.issue is not None else None
    if only is None:
        run, held = evaluate_automations(scope.active, event, snapshot, scope.now)
    else:
        run, held = tuple(only), ()
    issue_id = scope.issue.id if scope.issue is not None else None
    base_input = {"event": event.fields(), "issue": {"key": scope.issue.key, "status": scope.issue.state}
                  if scope.issue is not None else None, "chain": list(event.chain),
                  "replay": {"payload": _plain(dict(event.payload)),
                             "actor": event.actor.identity if event.actor is not None else None,
                             "actor_is_automation": bool(event.actor is not None and event.actor.is_automation)}}
    if via_sweep is not None:
        base_input.update({"via": "sweep", "sweep_key": via_sweep})
    out = []
    for suppressed in held:
        automation_runs.record(scope.project.id, suppressed.automation.id, issue_id, event.name, base_input,
                               "loop_stopped: " + suppressed.reason, 0, event.depth)
        out.append({"automation": suppressed.automation.id, "outcome": "loop_stopped"})
    for automation in run:
        started = time.perf_counter()
        outcomes: list[Outcome] = []
        if automation.requires_approval:
            run_row = automation_runs.record(
                scope.project.id, automation.id, issue_id, event.name,
                {**base_input, "planned": plan_actions(scope, automation, event),
                 "approval": {"state": "pending"}}, AWAITING_APPROVAL, 0, event.depth)
            _ask_for_approval(scope, automation, run_row.id)
            out.append({"automation": automation.id, "outcome": AWAITING_APPROVAL, "run": run_row.id})
            continue
        if not rate_admit(scope.project.id, [a.type for a in automation.actions], scope.now):
            outcome = "rate_limited"
        else:
            actor = Actor(automation.id, is_automation=True)
            outcomes = perform_actions(scope, [("automation", a) for a in automation.actions], event, actor,
                                       tuple(event.chain), automation_id=automation.id)
            failed = [o for o in outcomes if o.status == "failed"]
            outcome = ("failed: " + "; ".join(f"{o.action_type}: {o.detail}" for o in failed))[:255] if failed \
                else "applied"
        duration = int((time.perf_counter() - started) * 1000)
        automation_runs.record(scope.project.id, automation.id, issue_id, event.name,
                               {**base_input, "actions": [o.as_dict() for o in outcomes]}, outcome, duration,
                               event.depth)
        out.append({"automation": automation.id, "outcome": outcome})
    return out



def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def run_project_event(kind: str, project_id: int, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Handle one issue-free event of a project (`workflow.updated`): the automations it triggers."""
    extra = dict(extra or {})
    scope = load_project_scope(project_id, _parse_now(extra.get("now")))
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


# Scheduled automations (`schedule.cron`)

CRON_LAST_SWEEP_KEY = "kiket:cron:last-sweep"
CRON_FIRED_TTL_S = 3 * 24 * 3600


def cron_automations(revision: km.ConfigRevision) -> list[km.Automation]:
    """Enabled project automations on `schedule.cron` with a valid expression."""
    from app.kiket.runtime import cron
    from app.kiket.runtime.events import canonical_event

    return [a for a in revision.automations.values()
            if a.enabled and a.cron and cron.is_valid(a.cron) and a.scope == "project"
            and any(canonical_event(e) == "schedule.cron" for e in a.events)]


def sweep_cron(now: datetime, since: datetime | None = None) -> list[tuple[str, str, str]]:
    """Run each `schedule.cron` automation once per wall-clock minute (project timezone) in (since, now].

    `since` defaults to the previous sweep's moment, kept in Redis (first sweep: five minutes back). A
    Redis key per (project, automation, minute) makes two racing sweeps fire a minute once.
    Returns (project key, automation id, local minute) per run."""
    from app.kiket.runtime import cron
    from app.kiket.runtime.automations import event_context

    redis = redis_connection()
    if since is None:
        stored = redis.get(CRON_LAST_SWEEP_KEY)
        since = _parse_now(stored.decode()) if stored else now - timedelta(minutes=5)
    if since >= now:
        return []
    fired: list[tuple[str, str, str]] = []
    for project, active in configuration.all_project_configs():
        scheduled = cron_automations(active)
        if not scheduled:
            continue
        scope = load_project_scope(project.id, now)
        for automation in scheduled:
            for minute in cron.due_minutes(automation.cron, since, now, active.project.business_hours.tz):
                wall = minute.strftime("%Y-%m-%dT%H:%M")
                if not redis.set(f"kiket:cron:{project.id}:{automation.id}:{wall}", "1", nx=True,
                                 ex=CRON_FIRED_TTL_S):
                    continue
                event = Event("schedule.cron", None, {"schedule": {"cron": automation.cron,
                                                                   "at": minute.isoformat()}})
                if automation.condition is not None and not evaluate(
                        automation.condition, event_context(active, event, None, now)):
                    continue
                run_automations(scope, event, only=[automation])
                fired.append((project.key, automation.id, minute.isoformat()))
    redis.set(CRON_LAST_SWEEP_KEY, now.isoformat())
    return fired


# Approval-gated automation runs (spec §10.1 `requires_approval`)


class RunNotPending(Conflict):
    """The run is not awaiting approval (already decided, or not gated)."""


def plan_actions(scope: Scope, automation: km.Automation, event: Event) -> list[dict[str, Any]]:
    """What the run would do, for the approvers to read: each action's directive, rendered now.

    Webhooks are shown by their unrendered method and URL only: headers and body may carry secrets, which
    are rendered when the approved run is performed and never stored."""
    context = template_ctx(scope, event, Actor(automation.id, is_automation=True))
    out = []
    for action in automation.actions:
        if action.type == "webhook":
            # Unrendered: a secret in the URL stays a `${secrets.…}` reference.
            params = {k: str(action.params[k]) for k in ("method", "url") if action.params.get(k) is not None}
            out.append({"type": action.type, "kind": "webhook", "params": params})
            continue
        directive = build_directive(action, context, directory=scope.directory, now=scope.now)
        entry = {"type": action.type, "kind": directive.kind, "params": _plain(dict(directive.params))}
        if directive.reason:
            entry["reason"] = directive.reason
        out.append(entry)
    return out


def approvers_of(project: Project) -> list[int]:
    """Who is asked to approve gated runs: the project's owners and admins, and the organization's."""
    from app.models.accounts import OrganizationMembership

    ids = set(db.session.scalars(select(ProjectMembership.user_id).where(
        ProjectMembership.project_id == project.id, ProjectMembership.role.in_(("owner", "admin")))))
    ids |= set(db.session.scalars(select(OrganizationMembership.user_id).where(
        OrganizationMembership.organization_id == project.organization_id,
        OrganizationMembership.role.in_(("owner", "admin")))))
    return sorted(ids)


def _ask_for_approval(scope: Scope, automation: km.Automation, run_id: int) -> None:
    where = f"{scope.issue.key} {scope.issue.title}" if scope.issue is not None else scope.project.key
    notifications.notify(approvers_of(scope.project), scope.project.id,
                         scope.issue.id if scope.issue is not None else None,
                         f"Automation '{automation.name or automation.id}' awaits approval on {where}", "warning")


def can_decide_runs(user: User, project: Project) -> bool:
    """Project owners and admins, and anyone whose project role grants `automation.manage`."""
    from app.services import issues as issue_service
    from app.services.projects import project_role

    if project_role(user, project) in ("owner", "admin"):
        return True
    try:
        issue_service.require_project_permission(user, project, "automation.manage", "approve automation runs")
    except (Forbidden, NotFound):
        return False
    return True


def decide_run(run_id: int, user: User, approve: bool, reason: str | None = None,
               now: datetime | None = None) -> AutomationRun:
    """Approve (perform the automation's actions now, through the same executor) or deny a gated run.

    Exactly one decision wins: the run leaves `awaiting_approval` in one conditional UPDATE."""
    from sqlalchemy import update

    run = db.session.get(AutomationRun, run_id)
    if run is None:
        raise NotFound("No such automation run.")
    project = db.session.get(Project, run.project_id)
    if not can_decide_runs(user, project):
        raise Forbidden("Only project owners and admins, or people with automation.manage, decide automation runs.")
    deciding = "approving" if approve else "denied"
    claimed = db.session.execute(update(AutomationRun).where(
        AutomationRun.id == run_id, AutomationRun.outcome == AWAITING_APPROVAL).values(outcome=deciding)).rowcount
    db.session.commit()
    if not claimed:
        raise RunNotPending("This run was already decided.")
    run = db.session.get(AutomationRun, run_id)
    decided_at = now or utcnow()
    decision = {"state": "approved" if approve else "denied", "by": user.email, "at": decided_at.isoformat(),
                "reason": reason or None}
    data = dict(run.input or {})
    data["approval"] = decision
    if not approve:
        run.input = data
        run.outcome = f"denied by {user.email}"[:255]
        audit.record(project.id, "automation.denied", user.id, run.issue_id,
                     {"run": run.id, "automation": run.automation_id, "reason": reason or None})
        db.session.commit()
        log.info("automation run denied run=%s automation=%s by=%s", run.id, run.automation_id, user.email)
        return run
    started = time.perf_counter()
    scope = load_scope(run.issue_id, decided_at) if run.issue_id is not None else \
        load_project_scope(project.id, decided_at)
    automation = scope.active.automations.get(run.automation_id) if scope is not None else None
    outcomes: list[Outcome] = []
    if scope is None:
        outcome = "skipped: its issue is gone"
    elif automation is None or not automation.enabled:
        outcome = "skipped: the automation is no longer configured"
    else:
        replay = data.get("replay") or {}
        cause = None
        if replay.get("actor"):
            cause = Actor(replay["actor"], is_automation=bool(replay.get("actor_is_automation")))
        event = Event(run.trigger_event, cause, replay.get("payload") or {}, tuple(data.get("chain") or ()))
        outcomes = perform_actions(scope, [("automation", a) for a in automation.actions], event,
                                   Actor(automation.id, is_automation=True), tuple(event.chain),
                                   automation_id=automation.id)
        failed = [o for o in outcomes if o.status == "failed"]
        outcome = ("failed: " + "; ".join(f"{o.action_type}: {o.detail}" for o in failed)) if failed else "applied"
    run = db.session.get(AutomationRun, run_id)
    data["actions"] = [o.as_dict() for o in outcomes]
    run.input = data
    run.outcome = f"{outcome} (approved by {user.email})"[:255]
    run.duration_ms = int((time.perf_counter() - started) * 1000)
    audit.record(project.id, "automation.approved", user.id, run.issue_id,
                 {"run": run.id, "automation": run.automation_id, "outcome": run.outcome})
    db.session.commit()
    log.info("automation run approved run=%s automation=%s by=%s outcome=%s", run.id, run.automation_id,
             user.email, outcome[:80])
    return run

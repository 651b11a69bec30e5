"""Approval-gated automation runs (spec §10.1 `requires_approval`): what they would do, who decides, the decision."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from app.extensions import db
from app.kiket import model as km
from app.kiket.runtime.directives import build_directive
from app.kiket.runtime.events import Event
from app.kiket.runtime.snapshot import Actor
from app.models.accounts import OrganizationMembership, User
from app.models.base import utcnow
from app.models.issues import AutomationRun
from app.models.projects import Project, ProjectMembership
from app.services import audit
from app.services.errors import Conflict, Forbidden, NotFound
from app.services.projects import project_role
from app.services.runtime import notifications
from app.services.runtime.access import require_project_permission
from app.services.runtime.effects.actions import perform_actions
from app.services.runtime.effects.scope import Outcome, Scope, load_project_scope, load_scope, plain, template_ctx

log = logging.getLogger(__name__)

# AutomationRun.outcome of a `requires_approval` run until someone decides it.
AWAITING_APPROVAL = "awaiting_approval"


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
        entry = {"type": action.type, "kind": directive.kind, "params": plain(dict(directive.params))}
        if directive.reason:
            entry["reason"] = directive.reason
        out.append(entry)
    return out


def approvers_of(project: Project) -> list[int]:
    """Who is asked to approve gated runs: the project's owners and admins, and the organization's."""
    ids = set(db.session.scalars(select(ProjectMembership.user_id).where(
        ProjectMembership.project_id == project.id, ProjectMembership.role.in_(("owner", "admin")))))
    ids |= set(db.session.scalars(select(OrganizationMembership.user_id).where(
        OrganizationMembership.organization_id == project.organization_id,
        OrganizationMembership.role.in_(("owner", "admin")))))
    return sorted(ids)


def ask_for_approval(scope: Scope, automation: km.Automation, run_id: int) -> None:
    where = f"{scope.issue.key} {scope.issue.title}" if scope.issue is not None else scope.project.key
    notifications.notify(approvers_of(scope.project), scope.project.id,
                         scope.issue.id if scope.issue is not None else None,
                         f"Automation '{automation.name or automation.id}' awaits approval on {where}", "warning")


def can_decide_runs(user: User, project: Project) -> bool:
    """Project owners and admins, and anyone whose project role grants `automation.manage`."""
    if project_role(user, project) in ("owner", "admin"):
        return True
    try:
        require_project_permission(user, project, "automation.manage", "approve automation runs")
    except (Forbidden, NotFound):
        return False
    return True


def decide_run(run_id: int, user: User, approve: bool, reason: str | None = None,
               now: datetime | None = None) -> AutomationRun:
    """Approve (perform the automation's actions now, through the same executor) or deny a gated run.

    Exactly one decision wins: the run leaves `awaiting_approval` in one conditional UPDATE."""
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

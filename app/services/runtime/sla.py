"""SLA timers per state entry (spec §8.3) and the 5-minute sweep that fires them, overdue approval levels (§16)
and time-based automations (§10.2).

A timer row exists for each entry into a state with an SLA; its warning and breach moments are
recomputed whenever the issue changes (rules are re-selected as fields change) and it stops when
the issue leaves the entry. `sweep(now)` takes the clock as an argument so tests control time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.kiket.runtime.automations import needs_sweep, sweep_automations, sweep_key
from app.kiket.runtime.events import Event
from app.kiket.runtime.approvals import overdue
from app.kiket.runtime.sla import SlaClock, due_events, sla_payload, state_clock
from app.kiket.runtime.snapshot import to_context
from app.models.base import utcnow
from app.models.issues import ApprovalTimeout, Issue, SlaTimer
from app.services.runtime import automation_runs
from app.services.runtime.effects.automations import run_automations, sweep_cron
from app.services.runtime.effects.scope import Scope, load_scope, snapshot_of
from app.services.runtime.snapshots import active_policy
from app.services.sync import configuration

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 300
SWEEP_JOB = "jobs.default.sweep"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _context(scope: Scope) -> dict:
    return to_context(snapshot_of(scope.issue, scope.pinned), scope.now, workflow=scope.workflow,
                      calendar=scope.calendar)


def current_clock(scope: Scope) -> SlaClock | None:
    """The SLA clock of the issue's current state entry, rule selected from its fields now."""
    if scope.workflow is None or scope.issue.state not in scope.workflow.states:
        return None
    return state_clock(scope.workflow, scope.issue.state, scope.issue.state_entered_at, scope.now, scope.calendar,
                       _context(scope))


def _rule_key(scope: Scope, clock: SlaClock) -> str | None:
    policy = scope.workflow.states[scope.issue.state].sla
    if clock.rule is None or policy is None:
        return None
    index = next((i for i, r in enumerate(policy.rules) if r is clock.rule), None)
    return ("default" if clock.rule.when is None else f"rule-{index}") if index is not None else None


def sync_timer(scope: Scope) -> SlaTimer | None:
    """Stop timers of past entries, and create or re-time the current entry's timer (rules re-selected). Commits."""
    issue = scope.issue
    now = scope.now
    db.session.execute(
        update(SlaTimer).where(SlaTimer.issue_id == issue.id, SlaTimer.stopped_at.is_(None),
                               or_(SlaTimer.state != issue.state, SlaTimer.state_entry != issue.state_entry))
        .values(stopped_at=now))
    clock = current_clock(scope)
    timer = db.session.scalar(select(SlaTimer).where(
        SlaTimer.issue_id == issue.id, SlaTimer.state == issue.state, SlaTimer.state_entry == issue.state_entry))
    if clock is None:
        db.session.commit()
        return timer
    if timer is None:
        timer = SlaTimer(issue_id=issue.id, state=issue.state, state_entry=issue.state_entry,
                         started_at=issue.state_entered_at)
        db.session.add(timer)
    if timer.stopped_at is None:
        timer.rule_key = _rule_key(scope, clock)
        timer.warning_at = clock.warning_at
        timer.breach_at = clock.breach_at
    db.session.commit()
    return timer


def sla_status(issue_id: int, now: datetime | None = None) -> str:
    """`none|ok|warning|breached` for the issue's current state entry."""
    scope = load_scope(issue_id, now)
    clock = current_clock(scope) if scope is not None else None
    return clock.status if clock is not None else "none"


@dataclass
class SweepResult:
    """What one sweep did."""

    sla_events: list[tuple[str, str]] = field(default_factory=list)
    # (issue key, approval level name) of each `approval.overdue`.
    approval_events: list[tuple[str, str]] = field(default_factory=list)
    automation_runs: list[tuple[str, str]] = field(default_factory=list)
    # (project key, automation id, local minute) of each `schedule.cron` run.
    cron_runs: list[tuple[str, str, str]] = field(default_factory=list)


def sweep(now: datetime | None = None) -> SweepResult:
    """Fire due SLA warnings and breaches (once per entry), the time-based automations (once per entry), then
    the `schedule.cron` automations due since the previous sweep (once per minute)."""
    now = _aware(now or utcnow())
    result = SweepResult()
    _sweep_sla(now, result)
    _sweep_approvals(now, result)
    _sweep_automations(now, result)
    result.cron_runs = sweep_cron(now)
    log.info("sweep done sla_events=%d approval_events=%d automation_runs=%d cron_runs=%d", len(result.sla_events),
             len(result.approval_events), len(result.automation_runs), len(result.cron_runs))
    return result


def _sweep_sla(now: datetime, result: SweepResult) -> None:
    from app.services.runtime.events import _emit

    due = list(db.session.scalars(select(SlaTimer).where(
        SlaTimer.stopped_at.is_(None),
        or_((SlaTimer.warning_at <= now) & SlaTimer.warning_fired_at.is_(None),
            (SlaTimer.breach_at <= now) & SlaTimer.breach_fired_at.is_(None))).order_by(SlaTimer.id)))
    for timer in due:
        scope = load_scope(timer.issue_id, now)
        if scope is None:
            continue
        issue = scope.issue
        if (timer.state, timer.state_entry) != (issue.state, issue.state_entry):
            timer.stopped_at = now
            db.session.commit()
            continue
        clock = current_clock(scope)
        if clock is None:
            continue
        fired = {name for name, at in (("sla.warning", timer.warning_fired_at), ("sla.breach", timer.breach_fired_at))
                 if at is not None}
        # Rules may have been re-selected since the timer was last timed.
        timer.warning_at, timer.breach_at = clock.warning_at, clock.breach_at
        db.session.commit()
        for kind in due_events(clock, fired):
            column = SlaTimer.warning_fired_at if kind == "sla.warning" else SlaTimer.breach_fired_at
            # At most once, even with two sweeps racing: only the one that sets the moment fires.
            claimed = db.session.execute(update(SlaTimer).where(SlaTimer.id == timer.id, column.is_(None))
                                         .values({column.key: now})).rowcount
            if claimed == 1:
                _emit(kind, issue.id, f"{timer.id}", None, (),
                      {"now": now.isoformat(), "state": issue.state, "sla": sla_payload(issue.state, clock, kind)})
            db.session.commit()
            if claimed == 1:
                result.sla_events.append((issue.key, kind))


def _timed_states(config) -> set[tuple[str, str]]:
    """(workflow, state) pairs whose approval chain has a level with a timeout."""
    found = set()
    for workflow in config.workflows.values():
        for state in workflow.states:
            policy = active_policy(workflow, state)
            if policy is not None and any(level.timeout_s for level in policy.levels):
                found.add((workflow.id, state))
    return found


def _sweep_approvals(now: datetime, result: SweepResult) -> None:
    """`approval.overdue` once per chain level that waited past its timeout (§16)."""
    from app.services.runtime.events import _emit

    for project, active in configuration.all_project_configs():
        timed = _timed_states(active)
        if not timed:
            continue
        issue_ids = list(db.session.scalars(select(Issue.id).where(
            Issue.project_id == project.id, Issue.resolved_at.is_(None),
            tuple_(Issue.workflow_id, Issue.state).in_(sorted(timed))).order_by(Issue.id)))
        for issue_id in issue_ids:
            scope = load_scope(issue_id, now)
            if scope is None or scope.workflow is None:
                continue
            issue = scope.issue
            policy = active_policy(scope.workflow, issue.state)
            if policy is None:
                continue
            late = overdue(policy, snapshot_of(issue, scope.pinned).approvals, _context(scope),
                           _aware(issue.state_entered_at), now)
            if late is None:
                continue
            try:
                db.session.add(ApprovalTimeout(issue_id=issue.id, state=issue.state, state_entry=issue.state_entry,
                                               level=late.level, fired_at=now))
                db.session.flush()
            except IntegrityError:
                db.session.rollback()  # fired already, by this sweep's predecessor or a concurrent one
                continue
            _emit("approval.overdue", issue.id, f"{issue.state_entry}-{late.level}", None, (),
                  {"now": now.isoformat(), "approval": {"state": issue.state, "level": late.level + 1,
                                                        "name": late.name, "due_at": late.due_at.isoformat()}})
            db.session.commit()
            result.approval_events.append((issue.key, late.name))


def _sweep_automations(now: datetime, result: SweepResult) -> None:
    for project, active in configuration.all_project_configs():
        if not any(a.enabled and needs_sweep(a) for a in active.automations.values()):
            continue
        issue_ids = list(db.session.scalars(select(Issue.id).where(
            Issue.project_id == project.id, Issue.resolved_at.is_(None)).order_by(Issue.id)))
        for issue_id in issue_ids:
            scope = load_scope(issue_id, now)
            if scope is None or (scope.workflow is not None and scope.issue.state in scope.workflow.finals):
                continue
            snapshot = snapshot_of(scope.issue, scope.pinned)
            fired = automation_runs.sweep_keys(project.id, issue_id)
            for automation in sweep_automations(scope.active, snapshot, now, fired):
                event = Event(automation.events[0] if automation.events else "issue.updated", None, {"changes": {}})
                run_automations(scope, event, via_sweep=sweep_key(automation, snapshot), only=[automation])
                result.automation_runs.append((scope.issue.key, automation.id))


def next_slot(now: datetime) -> datetime:
    """The start of the next 5-minute slot: every worker that schedules the sweep names the same job."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % SWEEP_EVERY_S + SWEEP_EVERY_S, tz=timezone.utc)


def schedule_sweep(now: datetime | None = None) -> str:
    """Schedule the next sweep on the `default` queue (RQ's scheduler enqueues it when due); returns its job id."""
    from app.queue import get_queue

    slot = next_slot(_aware(now or utcnow()))
    job_id = f"sweep-{int(slot.timestamp())}"
    queue = get_queue("default")
    if queue.fetch_job(job_id) is None:
        queue.enqueue_at(slot, SWEEP_JOB, job_id=job_id, job_timeout=SWEEP_EVERY_S, result_ttl=3600,
                         failure_ttl=7 * 24 * 3600)
    return job_id


def slot_delay(now: datetime) -> timedelta:
    """Time until the next sweep slot."""
    return next_slot(now) - now

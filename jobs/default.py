"""Jobs of the `default` queue: issue events (hooks, automations, SLA timers), retries, reminders, the sweep."""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from jobs import job_app_context

log = logging.getLogger(__name__)


def run_issue_event(kind: str, issue_id: int, record: str, actor_id: int | None, chain: Sequence[str],
                    extra: Mapping[str, Any] | None = None) -> dict:
    """Everything an issue event causes after its commit (`app.services.runtime.effects.engine.run_issue_event`)."""
    with job_app_context():
        from app.extensions import db
        from app.services.runtime.effects import engine

        try:
            return engine.run_issue_event(kind, issue_id, record, actor_id, chain, extra)
        except Exception:
            db.session.rollback()
            log.exception("issue event failed kind=%s issue=%s record=%s", kind, issue_id, record)
            raise


def drain_events() -> int:
    """Dispatch the committed issue events of the outbox (`app.services.runtime.events.drain`)."""
    with job_app_context():
        from app.extensions import db
        from app.services.runtime import events

        try:
            return events.drain()
        except Exception:
            db.session.rollback()
            log.exception("issue events not dispatched; the rows stay for the next drain")
            raise


def run_project_event(kind: str, project_id: int, extra: Mapping[str, Any] | None = None) -> dict:
    """An issue-free project event (`workflow.updated`): the automations it triggers."""
    with job_app_context():
        from app.extensions import db
        from app.services.runtime.effects import engine

        try:
            return engine.run_project_event(kind, project_id, extra)
        except Exception:
            db.session.rollback()
            log.exception("project event failed kind=%s project=%s", kind, project_id)
            raise


def retry_directive(issue_id: int, kind: str, action_type: str, params: Mapping[str, Any], event_name: str | None,
                    chain: Sequence[str], tag: str) -> str:
    """One failed action again; raises so RQ retries it on its schedule."""
    with job_app_context():
        from app.services.runtime.effects import actions

        return actions.retry_directive(issue_id, kind, action_type, params, event_name, chain, tag)


def send_reminder(issue_id: int, state: str, state_entry: int, message: str | None, recipients: Any, condition: Any,
                  chain: Sequence[str]) -> str:
    """A `schedule_reminder` action is due: re-check its conditions, then notify."""
    with job_app_context():
        from app.services.runtime.effects import reminders

        return reminders.send_reminder(issue_id, state, state_entry, message, recipients, condition, chain)


def sweep() -> None:
    """The 5-minute sweep (stranded events, SLA warnings and breaches, time-based automations); schedules the next one first."""
    with job_app_context():
        from app.services.runtime import events, sla

        # Scheduled before the work, so a failing sweep never stops the cycle.
        sla.schedule_sweep()
        # Events a lost wake-up left in the outbox go out at the latest now.
        events.drain()
        sla.sweep()

"""The automation run log (spec §10: every run is audit-logged with input, outcome and duration)."""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models.issues import AutomationRun
from app.services import audit
from app.services.errors import NotFound

log = logging.getLogger(__name__)


def record(project_id: int, automation_id: str, issue_id: int | None, trigger_event: str, input: dict[str, Any],
           outcome: str, duration_ms: int, depth: int) -> AutomationRun:
    """Store one run and its audit event, and commit."""
    data = json.loads(json.dumps(input, default=str))
    run = AutomationRun(project_id=project_id, automation_id=automation_id[:100], issue_id=issue_id,
                        trigger_event=trigger_event[:64], input=data, outcome=outcome[:255],
                        duration_ms=duration_ms, depth=depth)
    db.session.add(run)
    db.session.flush()
    audit.record(project_id, "automation.run", None, issue_id, {
        "run": run.id, "automation": automation_id, "event": trigger_event, "outcome": outcome[:255], "duration_ms": duration_ms,
        "depth": depth})
    db.session.commit()
    log.info("automation run project=%s automation=%s issue=%s event=%s outcome=%s ms=%d", project_id,
             automation_id, issue_id, trigger_event, outcome[:80], duration_ms)
    return run


def runs_for(project_id: int, *, issue_id: int | None = None, limit: int = 100) -> list[AutomationRun]:
    """The latest runs of a project (or of one issue), newest first."""
    query = select(AutomationRun).where(AutomationRun.project_id == project_id)
    if issue_id is not None:
        query = query.where(AutomationRun.issue_id == issue_id)
    return list(db.session.scalars(query.order_by(AutomationRun.id.desc()).limit(limit)))


def sweep_keys(project_id: int, issue_id: int) -> set[str]:
    """Sweep keys already fired for an issue: time-based automations run once per (automation, issue, entry)."""
    rows = db.session.scalars(select(AutomationRun.input).where(
        AutomationRun.project_id == project_id, AutomationRun.issue_id == issue_id))
    return {row.get("sweep_key") for row in rows if isinstance(row, dict) and row.get("sweep_key")}


def awaiting_approval(project_ids: list[int], limit: int = 50, *, issue_id: int | None = None) -> list[AutomationRun]:
    """Runs of these projects (or of one of their issues) waiting for someone to approve or deny them, oldest first."""
    if not project_ids:
        return []
    query = select(AutomationRun).where(
        AutomationRun.project_id.in_(project_ids), AutomationRun.outcome == "awaiting_approval")
    if issue_id is not None:
        query = query.where(AutomationRun.issue_id == issue_id)
    return list(db.session.scalars(query.order_by(AutomationRun.id).limit(limit)))


def run_of_issue(run_id: int, issue_id: int) -> AutomationRun:
    """The run, if it was started for this issue (so an issue's page decides only its own runs)."""
    run = db.session.get(AutomationRun, run_id)
    if run is None or run.issue_id != issue_id:
        raise NotFound(f"No automation run {run_id} on this issue.")
    return run

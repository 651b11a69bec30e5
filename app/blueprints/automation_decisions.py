"""Deciding a gated automation run from a form, shared by the notifications page and the issue page."""

from __future__ import annotations

from flask import abort, request
from flask_login import current_user

from app.services.runtime.effects import gated_runs


def decide_from_form(run_id: int) -> str:
    """Approve or deny the run as the form's `decision` says (400 for anything else); the status line to show.

    A run someone else decided first is not an error for the person who clicked a second later: they are told."""
    decision = request.form.get("decision")
    if decision not in ("approve", "deny"):
        abort(400)
    try:
        run = gated_runs.decide_run(run_id, current_user, decision == "approve", request.form.get("reason") or None)
    except gated_runs.RunNotPending as error:
        return str(error)
    return f"Run {run.id} of {run.automation_id}: {run.outcome}"

"""Automations: the runs an event triggers (rate-limited, loop-protected, recorded) and `schedule.cron` runs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import current_app

from app.kiket import model as km
from app.kiket.conditions import evaluate
from app.kiket.runtime.automations import RATE_LIMIT, RATE_WINDOW_S, RateWindow, evaluate_automations
from app.kiket.runtime.events import Event
from app.kiket.runtime.snapshot import Actor
from app.queue import redis_connection
from app.services.runtime import automation_runs
from app.services.runtime.effects.actions import perform_actions
from app.services.runtime.effects.gated_runs import AWAITING_APPROVAL, ask_for_approval, plan_actions
from app.services.runtime.effects.scope import Outcome, Scope, load_project_scope, parse_now, plain, snapshot_of
from app.services.sync import configuration


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
                  "replay": {"payload": plain(dict(event.payload)),
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
            ask_for_approval(scope, automation, run_row.id)
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
        since = parse_now(stored.decode()) if stored else now - timedelta(minutes=5)
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

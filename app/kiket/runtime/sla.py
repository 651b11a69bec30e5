"""SLA clocks (spec §8.3): rule selection, business-hours thresholds, status, and once-per-entry events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from app.kiket.calendar import BusinessHours, add_business_seconds, business_seconds_between
from app.kiket.conditions import evaluate
from app.kiket.durations import format_duration
from app.kiket.model import Action, SlaPolicy, SlaRule, State, Workflow

SlaStatus = Literal["none", "ok", "warning", "breached"]
SLA_EVENTS = ("sla.warning", "sla.breach")


@dataclass(frozen=True)
class SlaClock:
    """An SLA clock for one state entry at one moment."""

    rule: SlaRule | None
    started_at: datetime
    warning_at: datetime | None
    breach_at: datetime | None
    elapsed_s: int
    remaining_s: int | None
    status: SlaStatus
    business_hours: bool = False
    warning_s: int | None = None
    breach_s: int | None = None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def select_rule(policy: SlaPolicy, context: Mapping) -> SlaRule | None:
    """The first conditional rule that holds, else the default (first unconditional) rule, else None."""
    fallback = None
    for rule in policy.rules:
        if rule.when is None:
            fallback = fallback or rule
        elif evaluate(rule.when, context):
            return rule
    return fallback


def thresholds(rule: SlaRule) -> tuple[int | None, int | None]:
    """(warning seconds, breach seconds); a `warning: "80%"` share is taken of the breach threshold."""
    warning = rule.warning_s
    if warning is None and rule.warning_share is not None and rule.breach_s is not None:
        warning = int(rule.breach_s * rule.warning_share)
    return warning, rule.breach_s


def _add(start: datetime, seconds: int, calendar: BusinessHours | None) -> datetime:
    if calendar is None:
        return start + timedelta(seconds=seconds)
    return add_business_seconds(start, seconds, calendar)


def sla_clock(
    policy: SlaPolicy,
    entered_at: datetime,
    now: datetime,
    calendar: BusinessHours | None,
    *,
    context: Mapping | None = None,
    rule: SlaRule | None = None,
) -> SlaClock:
    """The clock of a state entry at `now`; the rule is re-selected from `context` unless one is given."""
    # With `policy.business_hours` only calendar time counts; a missing calendar means the §5 default hours.
    entered_at, now = _aware(entered_at), _aware(now)
    if rule is None:
        rule = select_rule(policy, context or {})
    cal = (calendar or BusinessHours()) if policy.business_hours else None
    if cal is None:
        elapsed = max(0, int((now - entered_at).total_seconds()))
    else:
        elapsed = business_seconds_between(entered_at, now, cal)
    if rule is None:
        return SlaClock(None, entered_at, None, None, elapsed, None, "none", cal is not None)
    warning_s, breach_s = thresholds(rule)
    warning_at = _add(entered_at, warning_s, cal) if warning_s else None
    breach_at = _add(entered_at, breach_s, cal) if breach_s else None
    if breach_s is not None and elapsed >= breach_s:
        status: SlaStatus = "breached"
    elif warning_s is not None and elapsed >= warning_s:
        status = "warning"
    elif breach_s is None and warning_s is None:
        status = "none"
    else:
        status = "ok"
    remaining = breach_s - elapsed if breach_s is not None else None
    return SlaClock(rule, entered_at, warning_at, breach_at, elapsed, remaining, status, cal is not None,
                    warning_s, breach_s)


def state_clock(workflow: Workflow, state: str, entered_at: datetime, now: datetime, calendar: BusinessHours | None,
                context: Mapping) -> SlaClock | None:
    """The clock of `state` for an issue context, or None when the state has no SLA."""
    policy = workflow.states[state].sla if state in workflow.states else None
    if policy is None:
        return None
    return sla_clock(policy, entered_at, now, calendar, context=context)


def due_events(clock: SlaClock, already_fired: set[str] | frozenset[str]) -> tuple[str, ...]:
    """`sla.warning` / `sla.breach` now due and not yet fired in this entry (a breach also fires a missed warning)."""
    out = []
    if clock.status in ("warning", "breached") and clock.warning_s is not None and "sla.warning" not in already_fired:
        out.append("sla.warning")
    if clock.status == "breached" and "sla.breach" not in already_fired:
        out.append("sla.breach")
    return tuple(out)


def next_check_at(clock: SlaClock, already_fired: set[str] | frozenset[str]) -> datetime | None:
    """When the sweep should look next: the earliest threshold not yet fired (None when nothing is left)."""
    pending = []
    if clock.warning_at is not None and "sla.warning" not in already_fired:
        pending.append(clock.warning_at)
    if clock.breach_at is not None and "sla.breach" not in already_fired:
        pending.append(clock.breach_at)
    return min(pending) if pending else None


def sla_payload(state: str, clock: SlaClock, kind: str) -> dict[str, object]:
    """The `sla` root of events and templates: state, threshold, started_at, due_at, elapsed, time_remaining."""
    threshold_s = clock.warning_s if kind == "sla.warning" else clock.breach_s
    due = clock.warning_at if kind == "sla.warning" else clock.breach_at
    remaining = clock.remaining_s
    return {
        "state": state,
        "threshold": format_duration(threshold_s) if threshold_s else None,
        "started_at": clock.started_at.astimezone(timezone.utc).isoformat(),
        "due_at": due.astimezone(timezone.utc).isoformat() if due is not None else None,
        "breach_at": clock.breach_at.astimezone(timezone.utc).isoformat() if clock.breach_at else None,
        "elapsed": format_duration(clock.elapsed_s),
        "time_remaining": format_duration(max(0, remaining)) if remaining is not None else None,
        "status": clock.status,
        "business_hours": clock.business_hours,
    }


def sla_hook_actions(state: State, kind: str) -> tuple[Action, ...]:
    """State-level `on_sla_warning`/`on_sla_breach`, then the policy's own `on_warning`/`on_breach`."""
    hook = "on_sla_warning" if kind == "sla.warning" else "on_sla_breach"
    actions = list(state.hooks.get(hook, ()))
    if state.sla is not None:
        actions.extend(state.sla.on_warning if kind == "sla.warning" else state.sla.on_breach)
    return tuple(actions)

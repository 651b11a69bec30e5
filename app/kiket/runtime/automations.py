"""Which automations an event triggers (spec §10), and the safety rules around them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.kiket.conditions import TIME_BASED_FIELDS, evaluate, referenced_paths
from app.kiket.model import Automation, ConfigRevision
from app.kiket.runtime.events import ISSUE_FREE_EVENTS, MAX_CHAIN_DEPTH, Event, canonical_event
from app.kiket.runtime.snapshot import IssueSnapshot, plain, to_context

RATE_LIMIT = 60
RATE_WINDOW_S = 60


@dataclass(frozen=True)
class Suppressed:
    """An automation that would have matched but was held back, and why (for the run log)."""

    automation: Automation
    reason: str


def chain_allows(event: Event, automation: Automation) -> str | None:
    """None when `automation` may react to `event`; otherwise why not (own action, or chain too deep)."""
    if automation.id in event.chain:
        return "automations never react to their own actions"
    if event.actor is not None and event.actor.is_automation and event.actor.identity == automation.id:
        return "automations never react to their own actions"
    if event.depth >= MAX_CHAIN_DEPTH:
        return f"causal chain is {event.depth} automations deep (limit {MAX_CHAIN_DEPTH})"
    return None


def _listens(automation: Automation, name: str) -> bool:
    return any(canonical_event(e) == name for e in automation.events)


def candidates(revision: ConfigRevision, event: Event, snapshot: IssueSnapshot | None) -> tuple[Automation, ...]:
    """Enabled automations listening to the event whose scope covers the issue (no conditions checked)."""
    out = []
    for automation in revision.automations.values():
        if not automation.enabled or not _listens(automation, event.name):
            continue
        if automation.scope != "project":
            # Workflow recipes only see issues of their own workflow.
            if snapshot is None or snapshot.workflow != automation.scope:
                continue
        out.append(automation)
    return tuple(out)


def event_context(revision: ConfigRevision, event: Event, snapshot: IssueSnapshot | None, now: datetime) -> dict[str, Any]:
    """The condition context for an event: the issue's fields (if any) plus the event fields."""
    if snapshot is None:
        context = event.fields()
        context["now"] = plain(now)
        return context
    workflow = revision.workflows.get(snapshot.workflow or "") or (
        revision.workflow_for(snapshot.issue_type) if snapshot.issue_type else None)
    return to_context(snapshot, now, event, workflow=workflow, calendar=revision.project.business_hours)


def evaluate_automations(revision: ConfigRevision, event: Event, snapshot: IssueSnapshot | None,
                         now: datetime) -> tuple[tuple[Automation, ...], tuple[Suppressed, ...]]:
    """(automations to run, automations held back by loop protection) for one event."""
    if snapshot is None and event.name not in ISSUE_FREE_EVENTS:
        return (), ()
    context = event_context(revision, event, snapshot, now)
    run, held = [], []
    for automation in candidates(revision, event, snapshot):
        if automation.condition is not None and not evaluate(automation.condition, context):
            continue
        why = chain_allows(event, automation)
        if why is not None:
            held.append(Suppressed(automation, why))
            continue
        run.append(automation)
    return tuple(run), tuple(held)


def match_automations(revision: ConfigRevision, event: Event, snapshot: IssueSnapshot | None,
                      now: datetime) -> tuple[Automation, ...]:
    """Automations the event triggers: listening, in scope, enabled, conditions ANDed, loop-safe."""
    return evaluate_automations(revision, event, snapshot, now)[0]


def needs_sweep(automation: Automation) -> bool:
    """True when the conditions read a clock-driven value, so the periodic sweep must evaluate it too."""
    if automation.condition is None:
        return False
    return bool({p.split(".", 1)[0] for p in referenced_paths(automation.condition)} & TIME_BASED_FIELDS)


def sweep_automations(revision: ConfigRevision, snapshot: IssueSnapshot, now: datetime,
                      fired: set[str] | frozenset[str]) -> tuple[Automation, ...]:
    """Sweep-driven automations whose conditions hold now and that have not fired in this state entry."""
    workflow = revision.workflows.get(snapshot.workflow or "")
    context = to_context(snapshot, now, workflow=workflow, calendar=revision.project.business_hours)
    out = []
    for automation in revision.automations.values():
        if not automation.enabled or not needs_sweep(automation):
            continue
        if automation.scope != "project" and snapshot.workflow != automation.scope:
            continue
        if sweep_key(automation, snapshot) in fired:
            continue
        if evaluate(automation.condition, context):
            out.append(automation)
    return tuple(out)


def sweep_key(automation: Automation, snapshot: IssueSnapshot) -> str:
    """Once-per-(automation, issue, state entry) key for sweep runs."""
    entered = snapshot.state_entered_at.isoformat() if snapshot.state_entered_at is not None else "-"
    return f"{automation.id}|{snapshot.id}|{snapshot.status}|{entered}"


@dataclass(frozen=True)
class RateWindow:
    """Sliding one-minute window of runs per (project, action type); the caller stores it between calls."""

    limit: int = RATE_LIMIT
    window_s: int = RATE_WINDOW_S
    hits: Mapping[tuple[str, str], tuple[float, ...]] = field(default_factory=dict)

    def count(self, project: str, action_type: str, now: datetime) -> int:
        """Runs inside the window ending at `now`."""
        cutoff = now.timestamp() - self.window_s
        return sum(1 for t in self.hits.get((project, action_type), ()) if t > cutoff)

    def admit(self, project: str, action_type: str, now: datetime) -> tuple[bool, RateWindow]:
        """(allowed, new window): records the run when allowed; refusals are not counted."""
        key = (project, action_type)
        cutoff = now.timestamp() - self.window_s
        recent = tuple(t for t in self.hits.get(key, ()) if t > cutoff)
        hits = {k: v for k, v in self.hits.items() if k != key}
        if len(recent) >= self.limit:
            hits[key] = recent
            return False, RateWindow(self.limit, self.window_s, hits)
        hits[key] = (*recent, now.timestamp())
        return True, RateWindow(self.limit, self.window_s, hits)

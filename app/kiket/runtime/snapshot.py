"""What the runtime knows about an issue, and the plain dict conditions and templates evaluate against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from app.kiket.calendar import BusinessHours
    from app.kiket.model import Workflow
    from app.kiket.runtime.events import Event

Decision = Literal["approved", "denied"]


@dataclass(frozen=True)
class Actor:
    """Who asks for something: a person with roles and permissions, or an automation."""

    identity: str
    roles: frozenset[str] = frozenset()
    permissions: frozenset[str] = frozenset()
    is_automation: bool = False
    # An organization owner or admin: stands in for roles nobody can hold, and may force a blocked move (§16).
    org_admin: bool = False

    def can(self, permission: str) -> bool:
        """True when a granted permission or wildcard (`issue.*`, `*`) covers `permission`."""
        return has_permission(self.permissions, permission)

    def to_plain(self) -> dict[str, Any]:
        """The `actor` root of conditions and templates."""
        return {
            "identity": self.identity,
            "name": self.identity,
            "roles": sorted(self.roles),
            "type": "automation" if self.is_automation else "user",
        }


def has_permission(granted: frozenset[str] | set[str], permission: str) -> bool:
    """Permission check with `*` and `area.*` wildcards (spec §6)."""
    if "*" in granted or permission in granted:
        return True
    area = permission.split(".", 1)[0]
    return f"{area}.*" in granted


@dataclass(frozen=True)
class ApprovalRecord:
    """One approval decision taken during the issue's current entry into its state."""

    approver: str
    roles: frozenset[str] = frozenset()
    decision: Decision = "approved"
    at: datetime | None = None
    reason: str | None = None
    # The decider was an organization owner or admin (they decide for roles nobody holds, §16).
    org_admin: bool = False


@dataclass(frozen=True)
class IssueSnapshot:
    """A frozen description of an issue as the runtime sees it; the service builds it from its rows."""

    id: int | str | None = None
    key: str | None = None
    title: str = ""
    description: str | None = None
    status: str = ""
    issue_type: str | None = None
    workflow: str | None = None
    priority: str | None = None
    assignee: str | None = None
    reporter: str | None = None
    labels: tuple[str, ...] = ()
    due_date: date | datetime | None = None
    parent: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    resolved_at: datetime | None = None
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    state_entered_at: datetime | None = None
    # {checklist_id: {item_id: checked}}: manual ticks only; auto items are computed.
    checklists: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)
    approvals: tuple[ApprovalRecord, ...] = ()
    documents: frozenset[str] = frozenset()
    watchers: tuple[str, ...] = ()
    project: str | None = None


STANDARD_FIELDS = (
    "id", "key", "title", "description", "status", "issue_type", "workflow", "priority", "assignee",
    "reporter", "labels", "due_date", "parent", "created_at", "updated_at", "resolved_at",
)


def plain(value: Any) -> Any:
    """Dates become ISO-8601 strings, tuples lists, mappings dicts: the plain shapes §12 allows."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    return value


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _hours(seconds: float) -> float:
    return round(seconds / 3600, 4)


def due_moment(due: date | datetime | None) -> datetime | None:
    """When a due date falls due: a datetime as is, a plain date at the end of that day (UTC)."""
    if due is None:
        return None
    if isinstance(due, datetime):
        return _aware(due)
    # A task due "on Friday" is on time all Friday long.
    return datetime.combine(due + timedelta(days=1), time(0), tzinfo=timezone.utc)


def issue_fields(snapshot: IssueSnapshot) -> dict[str, Any]:
    """Standard fields plus `custom_fields`, as plain values."""
    out = {name: plain(getattr(snapshot, name)) for name in STANDARD_FIELDS}
    out["custom_fields"] = plain(dict(snapshot.custom_fields))
    out["watchers"] = list(snapshot.watchers)
    return out


def computed_fields(
    snapshot: IssueSnapshot,
    now: datetime,
    *,
    workflow: Workflow | None = None,
    calendar: BusinessHours | None = None,
) -> dict[str, Any]:
    """The computed roots of §9: state_category, sla_status, hours_in_state and the other clock values."""
    now = _aware(now)
    state = workflow.states.get(snapshot.status) if workflow is not None else None
    out: dict[str, Any] = {
        "state_category": state.category if state is not None else None,
        "sla_status": "none",
        "hours_in_state": None,
        "hours_since_last_update": None,
        "hours_until_due": None,
        "age_hours": None,
    }
    if snapshot.state_entered_at is not None:
        out["hours_in_state"] = _hours((now - _aware(snapshot.state_entered_at)).total_seconds())
    last = snapshot.updated_at or snapshot.created_at
    if last is not None:
        out["hours_since_last_update"] = _hours((now - _aware(last)).total_seconds())
    due = due_moment(snapshot.due_date)
    if due is not None:
        out["hours_until_due"] = _hours((due - now).total_seconds())
    if snapshot.created_at is not None:
        out["age_hours"] = _hours((now - _aware(snapshot.created_at)).total_seconds())
    if state is not None and state.sla is not None and snapshot.state_entered_at is not None:
        from app.kiket.runtime.sla import sla_clock

        base = {**issue_fields(snapshot), **{k: v for k, v in out.items() if k != "sla_status"}}
        clock = sla_clock(state.sla, snapshot.state_entered_at, now, calendar, context=base)
        out["sla_status"] = clock.status
    return out


def to_context(
    snapshot: IssueSnapshot,
    now: datetime,
    event: Event | None = None,
    actor: Any = None,
    *,
    workflow: Workflow | None = None,
    calendar: BusinessHours | None = None,
) -> dict[str, Any]:
    """The plain dict conditions evaluate against: fields, custom_fields, computed values and event fields."""
    fields = issue_fields(snapshot)
    context: dict[str, Any] = dict(fields)
    context.update(computed_fields(snapshot, now, workflow=workflow, calendar=calendar))
    # `issue` repeats the fields so a path written `issue.x` in a template reads the same value; `case` too (§16).
    context["issue"] = dict(fields)
    context["case"] = context["issue"]
    context["now"] = plain(_aware(now).astimezone(timezone.utc))
    if event is not None:
        # A payload never shadows the issue's own fields.
        context.update({k: v for k, v in event.fields().items() if k not in context or k == "actor"})
        if actor is None:
            actor = event.actor
    if actor is not None:
        context["actor"] = actor.to_plain() if hasattr(actor, "to_plain") else plain(actor)
    return context


def template_context(
    snapshot: IssueSnapshot | None,
    now: datetime,
    event: Event | None = None,
    actor: Any = None,
    *,
    workflow: Workflow | None = None,
    calendar: BusinessHours | None = None,
    project: Mapping[str, Any] | None = None,
    issue_url: str | None = None,
) -> dict[str, Any]:
    """The roots of §12 templates: issue, event, actor, project, transition, sla, approval, context, now."""
    now = _aware(now)
    out: dict[str, Any] = {"now": plain(now.astimezone(timezone.utc)), "project": plain(dict(project or {}))}
    if snapshot is not None:
        issue = issue_fields(snapshot)
        computed = computed_fields(snapshot, now, workflow=workflow, calendar=calendar)
        issue.update(computed)
        state = workflow.states.get(snapshot.status) if workflow is not None else None
        issue["status_label"] = state.label if state is not None else snapshot.status
        issue["url"] = issue_url
        out["issue"] = out["case"] = issue
        minutes_alive = None
        if snapshot.created_at is not None:
            minutes_alive = int((now - _aware(snapshot.created_at)).total_seconds() // 60)
        time_in_state = None
        if snapshot.state_entered_at is not None:
            from app.kiket.durations import format_duration

            time_in_state = format_duration(max(0, (now - _aware(snapshot.state_entered_at)).total_seconds()))
        out["context"] = {"incident_duration": minutes_alive, "time_in_state": time_in_state}
    if event is not None:
        payload = event.fields()
        out["event"] = {"name": event.name, **{k: v for k, v in payload.items() if k != "event"}}
        for root in ("sla", "approval", "checklist", "comment", "revision"):
            if root in payload:
                out[root] = payload[root]
        if event.name in ("issue.transitioned", "issue.closed"):
            out["transition"] = {
                "from": payload.get("from_status"), "to": payload.get("to_status"), "name": payload.get("transition"),
            }
        if actor is None:
            actor = event.actor
    if actor is not None:
        out["actor"] = actor.to_plain() if hasattr(actor, "to_plain") else plain(actor)
    return out

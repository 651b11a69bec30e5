"""Runtime events of the §10.2 catalogue, with the causal chain that loop protection needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.kiket.automations import canonical_event_name
from app.kiket.runtime.snapshot import Actor, plain

# Causal chains stop here: an event caused by automations three levels deep triggers nothing more.
MAX_CHAIN_DEPTH = 3
ISSUE_FREE_EVENTS = frozenset({"schedule.cron", "workflow.updated"})


def canonical_event(name: str) -> str | None:
    """Catalogue name for an event or alias (`sla.breached` → `sla.breach`), None when unknown."""
    if not isinstance(name, str):
        return None
    return canonical_event_name(name)


@dataclass(frozen=True)
class Event:
    """One emitted event: its name, who caused it, its payload and the automations that led to it."""

    name: str
    actor: Actor | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    # Ids of the automations whose actions caused this event, oldest first.
    chain: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        canonical = canonical_event(self.name)
        if canonical is None:
            raise ValueError(f"unknown event {self.name!r}")
        object.__setattr__(self, "name", canonical)

    @property
    def depth(self) -> int:
        """How many automation runs lie between a person's action and this event."""
        return len(self.chain)

    def fields(self) -> dict[str, Any]:
        """Event roots for conditions: event, from_status, to_status, transition, changes, sla, …"""
        out: dict[str, Any] = {"event": self.name}
        for key, value in self.payload.items():
            out[key] = plain(value)
        if "from" in out and "from_status" not in out:
            out["from_status"] = out.pop("from")
        if "to" in out and "to_status" not in out:
            out["to_status"] = out.pop("to")
        if self.actor is not None:
            out["actor"] = self.actor.to_plain()
        return out

    def caused_by(self, automation_id: str, name: str, payload: Mapping[str, Any] | None = None) -> Event:
        """The event an automation's action emits while handling this one."""
        return Event(name, Actor(automation_id, is_automation=True), dict(payload or {}), (*self.chain, automation_id))


def transition_event(from_status: str, to_status: str, transition: str, actor: Actor | None,
                     *, final: bool = False, chain: tuple[str, ...] = ()) -> tuple[Event, ...]:
    """`issue.transitioned`, plus `issue.closed` when the target is final."""
    payload = {"from_status": from_status, "to_status": to_status, "transition": transition}
    events = [Event("issue.transitioned", actor, payload, chain)]
    if final:
        events.append(Event("issue.closed", actor, payload, chain))
    return tuple(events)

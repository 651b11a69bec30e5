"""Issue events: what happens after an issue change commits (hooks, automations, SLA timers, notifications).

The issue services call these functions AFTER their transaction commits, with ids and plain values.
They never undo the change: they record and enqueue work on RQ's `default` queue (spec §8.7: hooks run
after the commit, asynchronously, in order; failures are logged and retried per action).

Contract between the issue services (callers) and the effects engine (implementation):
every function returns None and must not raise for a failed side effect (log it instead).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence


def issue_created(issue_id: int, actor_id: int | None, *, chain: Sequence[str] = ()) -> None:
    """`issue.created`: run the initial state's `on_enter`, start its SLA timer, match automations."""


def issue_transitioned(issue_id: int, transition_record_id: int, actor_id: int | None, *,
                       chain: Sequence[str] = ()) -> None:
    """`issue.transitioned` (+ `issue.closed` into a final state): `on_exit`, transition actions, `on_enter`
    in that order; close the old SLA timer, start the new one; request approvals; match automations."""


def issue_updated(issue_id: int, changes: Mapping[str, tuple[Any, Any]], actor_id: int | None, *,
                  chain: Sequence[str] = ()) -> None:
    """`issue.updated` (and `issue.assigned` when the assignee changed): re-select SLA rules, match automations."""


def issue_commented(issue_id: int, comment_id: int, actor_id: int | None, *, chain: Sequence[str] = ()) -> None:
    """`issue.commented`: notify watchers, match automations."""


def checklist_completed(issue_id: int, checklist_id: str, actor_id: int | None, *,
                        chain: Sequence[str] = ()) -> None:
    """`checklist.completed`: run the owning state's `on_complete` once, match automations."""


def approval_decided(issue_id: int, approval_id: int, actor_id: int | None, *, chain: Sequence[str] = ()) -> None:
    """`approval.granted` / `approval.denied`: notify, match automations."""

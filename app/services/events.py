"""Issue events: what happens after an issue change commits (hooks, automations, SLA timers, notifications).

The issue services call these functions AFTER their transaction commits, with ids and plain values.
They never undo the change: they record and enqueue work on RQ's `default` queue (spec §8.7: hooks run
after the commit, asynchronously, in order; failures are logged and retried per action).

Contract between the issue services (callers) and the effects engine (implementation):
every function returns None and must not raise for a failed side effect (log it instead).
Each call enqueues ONE job (`jobs.default.run_issue_event`) whose id is deterministic per
(event, issue, record), so a repeated call for the same record never runs the hooks twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any, Mapping, Sequence

from rq import Retry

from sqlalchemy import select

from app.extensions import db
from app.models.issues import Issue
from app.queue import enqueue

log = logging.getLogger(__name__)

JOB = "jobs.default.run_issue_event"
JOB_TIMEOUT = 600
RESULT_TTL = 24 * 3600
FAILURE_TTL = 7 * 24 * 3600
# The job is idempotent per action outcome; a crash of the whole job (DB away) is retried.
JOB_RETRY = (30, 300, 1800)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def job_id(*parts: object) -> str:
    """A deterministic RQ job id from parts (RQ allows letters, digits, `_` and `-` only)."""
    return "-".join(re.sub(r"[^A-Za-z0-9_-]", "_", str(p)) for p in parts)[:200]


def _emit(kind: str, issue_id: int, record: str | int, actor_id: int | None, chain: Sequence[str],
          extra: Mapping[str, Any] | None = None) -> None:
    name = job_id("event", kind, int(issue_id), record)
    try:
        enqueue("default", JOB, kind, int(issue_id), str(record), actor_id, list(chain), _plain(dict(extra or {})),
                job_id=name, job_timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL,
                retry=Retry(max=len(JOB_RETRY), interval=list(JOB_RETRY)))
    except Exception as error:  # noqa: BLE001 - the contract: a lost side effect is logged, never raised
        # The change itself is committed; losing its side effects is logged, never raised.
        log.error("event not enqueued kind=%s issue=%s record=%s: %s", kind, issue_id, record, error)
        return
    log.info("event enqueued kind=%s issue=%s job=%s depth=%d", kind, issue_id, name, len(chain))


def issue_created(issue_id: int, actor_id: int | None, *, chain: Sequence[str] = ()) -> None:
    """`issue.created`: run the initial state's `on_enter`, start its SLA timer, match automations."""
    _emit("issue.created", issue_id, issue_id, actor_id, chain)


def issue_transitioned(issue_id: int, transition_record_id: int, actor_id: int | None, *,
                       chain: Sequence[str] = ()) -> None:
    """`issue.transitioned` (+ `issue.closed` into a final state): `on_exit`, transition actions, `on_enter`
    in that order; close the old SLA timer, start the new one; request approvals; match automations."""
    _emit("issue.transitioned", issue_id, transition_record_id, actor_id, chain)


def issue_updated(issue_id: int, changes: Mapping[str, tuple[Any, Any]], actor_id: int | None, *,
                  chain: Sequence[str] = ()) -> None:
    """`issue.updated` (and `issue.assigned` when the assignee changed): re-select SLA rules, match automations."""
    changes = _plain({k: list(v) if isinstance(v, (tuple, list)) else v for k, v in dict(changes).items()})
    # An edit has no row of its own; every committed edit bumps the issue's lock version, which names it.
    version = db.session.scalar(select(Issue.lock_version).where(Issue.id == issue_id))
    digest = hashlib.sha256(json.dumps(changes, sort_keys=True).encode()).hexdigest()[:8]
    _emit("issue.updated", issue_id, f"v{version}-{digest}", actor_id, chain, {"changes": changes})


def issue_commented(issue_id: int, comment_id: int, actor_id: int | None, *, chain: Sequence[str] = ()) -> None:
    """`issue.commented`: notify watchers, match automations."""
    _emit("issue.commented", issue_id, comment_id, actor_id, chain)


def checklist_completed(issue_id: int, checklist_id: str, actor_id: int | None, *,
                        chain: Sequence[str] = ()) -> None:
    """`checklist.completed`: run the owning state's `on_complete` once, match automations."""
    _emit("checklist.completed", issue_id, checklist_id, actor_id, chain)


def approval_decided(issue_id: int, approval_id: int, actor_id: int | None, *, chain: Sequence[str] = ()) -> None:
    """`approval.granted` / `approval.denied`: notify, match automations."""
    _emit("approval.decided", issue_id, approval_id, actor_id, chain)


PROJECT_JOB = "jobs.default.run_project_event"


def workflow_updated(project_id: int, revision_id: int) -> None:
    """`workflow.updated` (alias `config.synced`): a revision was activated; match the project's automations.

    Called by the sync service after the activation commits; one job per activation (revision and moment:
    a rollback re-activates an older revision, which is an update again)."""
    from app.models.repositories import ConfigRevision

    try:
        activated = db.session.scalar(select(ConfigRevision.activated_at).where(ConfigRevision.id == revision_id))
        stamp = int(activated.timestamp() * 1000) if activated is not None else 0
        name = job_id("event", "workflow.updated", int(project_id), int(revision_id), stamp)
        enqueue("default", PROJECT_JOB, "workflow.updated", int(project_id),
                {"revision_id": int(revision_id), "activation": name},
                job_id=name, job_timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL,
                retry=Retry(max=len(JOB_RETRY), interval=list(JOB_RETRY)))
    except Exception as error:  # noqa: BLE001 - the contract: a lost side effect is logged, never raised
        log.error("event not enqueued kind=workflow.updated project=%s revision=%s: %s", project_id, revision_id,
                  error)
        return
    log.info("event enqueued kind=workflow.updated project=%s job=%s", project_id, name)

"""Issue events: what happens after an issue change commits (hooks, automations, SLA timers, notifications).

The issue services call these functions INSIDE the transaction of the change, before its commit: each
writes one row to the `issue_events` outbox, so the event commits or rolls back with the change. After
a commit that wrote events, the session wakes the dispatcher (`wake`, sent from a background thread so
the commit never waits for Redis); the `drain` job turns every
outbox row into its `default`-queue job (`jobs.default.run_issue_event`) and deletes the row. Nothing is
lost between a commit and an enqueue (a crash leaves the rows, drained by the next wake or the 5-minute
sweep), and no job can see an event whose change did not commit. Hooks then run asynchronously, in
order; failures are logged and retried per action (spec §8.7).

Each event's job id is deterministic per (event, issue, record), so one record never runs its hooks twice.
Other components (the gateway's outbound events) get the same events through a `Consumer`: one job of
theirs per drained batch, enqueued in the same Redis transaction.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import timezone
from typing import Any, Mapping, Sequence

from redis import Redis
from rq import Queue, Retry
from sqlalchemy import delete, event, insert, select
from sqlalchemy.orm import Session

from app.extensions import db
from app.models.base import utcnow
from app.models.issues import Issue, IssueEvent
from app.queue import enqueue, get_queue, redis_connection
from app.services import live
from app.services.prepared import Prepared

log = logging.getLogger(__name__)

JOB = "jobs.default.run_issue_event"
DRAIN_JOB = "jobs.default.drain_events"
JOB_TIMEOUT = 600
RESULT_TTL = 24 * 3600
FAILURE_TTL = 7 * 24 * 3600
# The job is idempotent per action outcome; a crash of the whole job (DB away) is retried.
JOB_RETRY = (30, 300, 1800)
# Set while a drain is queued or running, so a burst of commits queues one drain job; it expires by
# itself should a drain job ever be lost.
WAKE_KEY = "kiket:events:wake"
WAKE_TTL = 60
WAKE_INTERVAL_S = 0.05
DRAIN_BATCH = 200
_PENDING = "kiket.events.pending"


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def job_id(*parts: object) -> str:
    """A deterministic RQ job id from parts (RQ allows letters, digits, `_` and `-` only)."""
    return "-".join(re.sub(r"[^A-Za-z0-9_-]", "_", str(p)) for p in parts)[:200]


@functools.cache
def _outbox_insert() -> Prepared:
    return Prepared(insert(IssueEvent.__table__),
                    ("kind", "issue_id", "record", "actor_id", "chain", "extra", "created_at"))


def _emit(kind: str, issue_id: int, record: str | int, actor_id: int | None, chain: Sequence[str],
          extra: Mapping[str, Any] | None = None) -> None:
    """Write the event to the outbox in the caller's transaction; the commit dispatches it."""
    _outbox_insert().execute({
        "kind": kind, "issue_id": int(issue_id), "record": str(record), "actor_id": actor_id, "chain": list(chain),
        "extra": _plain(dict(extra or {})), "created_at": utcnow(),
    })
    db.session().info[_PENDING] = True
    live.issue_touched(db.session(), issue_id, actor_id)


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if session.info.pop(_PENDING, False):
        _waker.request(redis_connection())


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def wake(redis: Redis) -> None:
    """Make sure a drain job is queued or running; never raises (the sweep drains what a failure leaves)."""
    try:
        if redis.set(WAKE_KEY, "1", nx=True, ex=WAKE_TTL):
            Queue("default", connection=redis).enqueue(DRAIN_JOB, job_timeout=JOB_TIMEOUT, result_ttl=0,
                                                       failure_ttl=FAILURE_TTL)
    except Exception as error:  # noqa: BLE001 - the events are committed; the next wake or the sweep sends them
        log.error("event dispatcher not woken: %s", error)


def wake_if_stranded(redis: Redis, older_than_s: float) -> bool:
    """Wake the dispatcher when the outbox holds a row older than `older_than_s` (its wake-up was lost)."""
    oldest = db.session.scalar(select(IssueEvent.created_at).order_by(IssueEvent.id).limit(1))
    db.session.rollback()
    if oldest is None:
        return False
    moment = oldest if oldest.tzinfo is not None else oldest.replace(tzinfo=timezone.utc)
    if (utcnow() - moment).total_seconds() < older_than_s:
        return False
    log.info("outbox rows since %s were not dispatched: waking the dispatcher", moment.isoformat())
    redis.delete(WAKE_KEY)
    wake(redis)
    return True


class _Waker:
    """Sends wake-ups from a background thread, so a commit never waits for a Redis round trip.

    Requests coalesce: whatever arrives while one is sent, or within WAKE_INTERVAL_S after it, is sent
    once, so a burst of commits costs a few round trips, not one each, for at most that much latency.
    `settle` waits until every request so far has been sent.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._pending: Redis | None = None
        self._sending = False
        self._thread: threading.Thread | None = None

    def request(self, redis: Redis) -> None:
        # One already waiting will be sent after this commit anyway (its drain then scans after it).
        if self._pending is not None:
            return
        with self._condition:
            self._pending = redis
            # Started lazily, and again in a forked child (threads do not survive a fork).
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kiket-event-waker", daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def settle(self, timeout: float = 10.0) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: self._pending is None and not self._sending, timeout)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending is not None)
                redis, self._pending, self._sending = self._pending, None, True
            try:
                wake(redis)
            finally:
                with self._condition:
                    self._sending = False
                    self._condition.notify_all()
            # Commits meanwhile wait for the next round: at most 1 / WAKE_INTERVAL_S wake-ups a second.
            time.sleep(WAKE_INTERVAL_S)


_waker = _Waker()


def settle(timeout: float = 10.0) -> bool:
    """Wait until the wake-ups of every commit so far have been sent (tests; a process about to exit)."""
    return _waker.settle(timeout)


@dataclass(frozen=True)
class Consumer:
    """Another component's jobs for the same events: one per drained batch, one per project event.

    Connected by `app.factory.connect_services`, so the runtime never imports the component (the gateway).
    """

    queue: str
    issue_job: str
    project_job: str


_consumers: dict[str, Consumer] = {}


def add_consumer(name: str, consumer: Consumer) -> None:
    _consumers[name] = consumer


def _consumer_jobs(pipe, rows) -> None:
    """Each consumer's job for a batch: the events as plain data, in order."""
    events = [{"id": row.id, "kind": row.kind, "issue_id": row.issue_id, "record": row.record,
               "actor_id": row.actor_id, "extra": dict(row.extra or {}),
               "created_at": row.created_at.isoformat() if row.created_at else None} for row in rows]
    for name, consumer in _consumers.items():
        queue = get_queue(consumer.queue)
        queue.enqueue_many([queue.prepare_data(
            consumer.issue_job, args=(events,), job_id=job_id("events", name, rows[0].id, rows[-1].id),
            timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL,
            retry=Retry(max=len(JOB_RETRY), interval=list(JOB_RETRY)))], pipeline=pipe)


def drain() -> int:
    """Turn every outbox row into its job, oldest first, deleting the rows it enqueued; the number sent.

    The flag goes first, so a commit landing while this runs queues another drain. Each batch is
    claimed with `DELETE … RETURNING` (rows other drainers hold are skipped on PostgreSQL), enqueued in
    one Redis transaction, and only then committed: a failure rolls the rows back for the next drain.
    """
    redis_connection().delete(WAKE_KEY)
    queue = get_queue("default")
    sent = 0
    while True:
        claimed = select(IssueEvent.id).order_by(IssueEvent.id).limit(DRAIN_BATCH).with_for_update(skip_locked=True)
        rows = sorted(db.session.execute(
            delete(IssueEvent).where(IssueEvent.id.in_(claimed.scalar_subquery()))
            .returning(IssueEvent.id, IssueEvent.kind, IssueEvent.issue_id, IssueEvent.record, IssueEvent.actor_id,
                       IssueEvent.chain, IssueEvent.extra, IssueEvent.created_at)
        ).all())
        if not rows:
            db.session.rollback()
            return sent
        try:
            with queue.connection.pipeline() as pipe:
                queue.enqueue_many([_job_data(queue, row) for row in rows], pipeline=pipe)
                _consumer_jobs(pipe, rows)
                pipe.execute()
        except Exception:
            db.session.rollback()
            raise
        db.session.commit()
        sent += len(rows)
        log.info("events dispatched count=%d last=%d", len(rows), rows[-1].id)


def _job_data(queue, row):
    return queue.prepare_data(
        JOB, args=(row.kind, row.issue_id, row.record, row.actor_id, list(row.chain or ()), dict(row.extra or {})),
        job_id=job_id("event", row.kind, row.issue_id, row.record), timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL, retry=Retry(max=len(JOB_RETRY), interval=list(JOB_RETRY)),
    )


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
        extra = {"revision_id": int(revision_id), "activation": name}
        enqueue("default", PROJECT_JOB, "workflow.updated", int(project_id), extra,
                job_id=name, job_timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL,
                retry=Retry(max=len(JOB_RETRY), interval=list(JOB_RETRY)))
        for consumer_name, consumer in _consumers.items():
            enqueue(consumer.queue, consumer.project_job, "workflow.updated", int(project_id), extra,
                    job_id=job_id(name, consumer_name), job_timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL,
                    failure_ttl=FAILURE_TTL, retry=Retry(max=len(JOB_RETRY), interval=list(JOB_RETRY)))
    except Exception as error:  # noqa: BLE001 - the contract: a lost side effect is logged, never raised
        log.error("event not enqueued kind=workflow.updated project=%s revision=%s: %s", project_id, revision_id,
                  error)
        return
    log.info("event enqueued kind=workflow.updated project=%s job=%s", project_id, name)

"""Live updates, publishing side: after a commit, say on Redis which ids changed (never HTML).

Whatever commits a change a viewer could see names it here, inside the transaction: `issue_changed`
(the runtime's issue services), `notify_user` (the bell), `project_changed` (a new active revision,
people losing access), `sync_changed` (a sync run's status). Rows of the issue aggregate, notifications
and memberships written through the ORM are also noticed at flush, so a new code path cannot forget
them. The commit hands the collected messages to a background thread, which publishes each with its
channel's next sequence number (one Lua call: INCR and PUBLISH together, so numbers follow publish
order); a rollback drops them. Publishing never raises and never delays a commit.

Logical channels: `project:<id>` (issues, boards, configuration, access), `user:<id>` (the bell),
`org:<id>` (the Workflow Repositories dashboard). They all travel on one Redis channel, `redis_channel()`,
which each live process subscribes to once.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from typing import Any

from redis import Redis
from sqlalchemy import event, select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

REDIS_CHANNEL = "kiket:live"
SEQ_KEY = "kiket:live:seq:"
_PENDING = "kiket.live.pending"
_UNRESOLVED = "kiket.live.unresolved"
_KNOWN = "kiket.live.known"
# KEYS[1]: the channel's sequence key; ARGV[1]: the Redis channel; ARGV[2]: the message, a JSON object
# without its closing brace, to which `,"seq":N}` is appended.
_PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. ',"seq":' .. seq .. '}')
return seq
"""


def _pending(session: Session) -> dict[tuple, dict[str, Any]]:
    return session.info.setdefault(_PENDING, {})


def _add(session: Session, channel: str, kind: str, **ids: Any) -> None:
    key = (channel, kind, ids.get("issue"), ids.get("run"))
    message = _pending(session).setdefault(key, {"ch": channel, "kind": kind, **ids})
    if ids.get("actor") is not None and message.get("actor") is None:
        message["actor"] = ids["actor"]


def issue_changed(session: Session, project_id: int, issue_id: int, actor_id: int | None = None) -> None:
    """An issue (or a row hanging off it) changed in this transaction."""
    _add(session, f"project:{int(project_id)}", "issue", issue=int(issue_id), actor=actor_id)
    session.info.setdefault(_KNOWN, set()).add(int(issue_id))


def issue_touched(session: Session, issue_id: int, actor_id: int | None = None) -> None:
    """As `issue_changed` when only the issue id is at hand; its project is looked up before the commit."""
    if int(issue_id) in session.info.get(_KNOWN, ()):
        if actor_id is not None:
            for key, message in _pending(session).items():
                if key[1] == "issue" and key[2] == int(issue_id) and message.get("actor") is None:
                    message["actor"] = actor_id
        return
    unresolved = session.info.setdefault(_UNRESOLVED, {})
    if unresolved.get(int(issue_id)) is None:
        unresolved[int(issue_id)] = actor_id


def project_changed(session: Session, project_id: int, kind: str = "config") -> None:
    """Everything of a project may look different: a new active revision (`config`) or access changes (`access`)."""
    _add(session, f"project:{int(project_id)}", kind)


def notify_user(session: Session, user_id: int) -> None:
    """The user's notifications changed (the bell's count)."""
    _add(session, f"user:{int(user_id)}", "notifications")


def sync_changed(session: Session, organization_id: int, repository_id: int, run_id: int | None) -> None:
    """A sync run of a repository changed status."""
    _add(session, f"org:{int(organization_id)}", "sync", repository=int(repository_id), run=run_id)


def _resolve(session: Session) -> None:
    """Give project ids to issues noticed by id only (one query on the transaction's connection)."""
    unresolved = session.info.pop(_UNRESOLVED, None)
    if not unresolved:
        return
    from app.models.issues import Issue

    rows = session.connection().execute(select(Issue.id, Issue.project_id).where(Issue.id.in_(list(unresolved))))
    for issue_id, project_id in rows:
        issue_changed(session, project_id, issue_id, unresolved[issue_id])


@event.listens_for(Session, "after_flush")
def _notice_rows(session: Session, _context) -> None:
    from app.models import Notification, OrganizationMembership, ProjectMembership
    from app.models.issues import Approval, Attachment, ChecklistProgress, Comment, Issue, Watcher

    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Issue):
            if obj.project_id is not None and obj.id is not None:
                issue_changed(session, obj.project_id, obj.id)
        elif isinstance(obj, (Comment, Watcher, ChecklistProgress, Approval, Attachment)):
            if obj.issue_id is not None:
                issue_touched(session, obj.issue_id)
        elif isinstance(obj, Notification):
            notify_user(session, obj.user_id)
        elif isinstance(obj, ProjectMembership) and obj in (*session.deleted, *session.dirty):
            project_changed(session, obj.project_id, "access")
        elif isinstance(obj, OrganizationMembership) and obj in (*session.deleted, *session.dirty):
            session.info.setdefault(_PENDING, {})[("org-access", obj.organization_id, None, None)] = {
                "ch": f"org:{int(obj.organization_id)}", "kind": "access"}


@event.listens_for(Session, "after_flush_postexec")
def _resolve_after_flush(session: Session, _context) -> None:
    _resolve(session)


@event.listens_for(Session, "before_commit")
def _resolve_before_commit(session: Session) -> None:
    _resolve(session)


@event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    session.info.pop(_UNRESOLVED, None)
    session.info.pop(_KNOWN, None)
    if pending:
        from app.queue import redis_connection

        try:
            redis = redis_connection()
        except RuntimeError:  # no app context (scripts): nothing listens anyway
            return
        _sender.send(redis, list(pending.values()))


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    for key in (_PENDING, _UNRESOLVED, _KNOWN):
        session.info.pop(key, None)


def redis_channel(redis: Redis) -> str:
    """The Redis channel of this installation: pub/sub ignores database numbers, so the channel names one."""
    return f"{REDIS_CHANNEL}:{redis.connection_pool.connection_kwargs.get('db', 0)}"


def publish(redis: Redis, messages: list[dict[str, Any]]) -> None:
    """Publish messages now, each with its channel's next sequence number; never raises."""
    try:
        script = redis.register_script(_PUBLISH)
        with redis.pipeline(transaction=False) as pipe:
            for message in messages:
                body = json.dumps({k: v for k, v in message.items() if v is not None}, separators=(",", ":"))
                script(keys=[SEQ_KEY + message["ch"]], args=[redis_channel(redis), body[:-1]], client=pipe)
            pipe.execute()
    except Exception as error:  # noqa: BLE001 - viewers heal on their next message or reconnect
        log.warning("live update not published (%d messages): %s", len(messages), error)


def publish_soon(messages: list[dict[str, Any]]) -> None:
    """Publish messages about something already committed (outside any transaction), from the sender thread."""
    from app.queue import redis_connection

    _sender.send(redis_connection(), messages)


def current_seq(redis: Redis, channel: str) -> int:
    """The last sequence number published on a logical channel (0 if none)."""
    value = redis.get(SEQ_KEY + channel)
    return int(value) if value else 0


class _Sender:
    """Publishes from one background thread, in commit order, so a commit never waits for Redis."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()

    def send(self, redis: Redis, messages: list[dict[str, Any]]) -> None:
        self._idle.clear()
        self._queue.put((redis, messages))
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                # Started lazily, and again in a forked child (threads do not survive a fork).
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="kiket-live-publisher", daemon=True)
                    self._thread.start()

    def settle(self, timeout: float = 10.0) -> bool:
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            redis, messages = self._queue.get()
            batch = list(messages)
            # Whatever else is waiting goes in the same round trip.
            while not self._queue.empty():
                more_redis, more = self._queue.get()
                if more_redis is not redis:
                    publish(redis, batch)
                    redis, batch = more_redis, []
                batch.extend(more)
            publish(redis, batch)
            if self._queue.empty():
                self._idle.set()


_sender = _Sender()


def settle(timeout: float = 10.0) -> bool:
    """Wait until everything committed so far has been published (tests)."""
    return _sender.settle(timeout)

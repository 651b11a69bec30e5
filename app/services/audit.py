"""The append-only audit trail: a hash chain per project, and its verification."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update

from app.extensions import db
from app.models.audit import AuditEvent
from app.models.base import utcnow
from app.models import Project, User
from app.models.issues import Issue, ProjectCounter
from app.services.prepared import Prepared
from app.services.errors import Forbidden
from app.services.projects import ensure_counter, get_project, project_role

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class BrokenLink:
    seq: int
    id: int
    reason: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_broken: BrokenLink | None = None


def _timestamp(moment: datetime) -> str:
    # Fixed format at microsecond precision: both databases keep microseconds.
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(project_id: int, seq: int, kind: str, actor_id: int | None, issue_id: int | None,
              data: dict[str, Any], created_at: datetime) -> str:
    """The event as canonical JSON (sorted keys, no spaces, ASCII): the bytes the hash covers."""
    return json.dumps(
        {"project_id": project_id, "seq": seq, "kind": kind, "actor_id": actor_id, "issue_id": issue_id,
         "data": data, "created_at": _timestamp(created_at)},
        sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False,
    )


def chain_hash(prev_hash: str, canonical_json: str) -> str:
    return hashlib.sha256((prev_hash + canonical_json).encode()).hexdigest()


def record(project_id: int, kind: str, actor_id: int | None, issue_id: int | None,
           data: dict[str, Any] | None = None) -> None:
    """Append an event to the project's chain, inside the caller's transaction (the caller commits).

    Bumping `project_counters.audit_seq` with `UPDATE … RETURNING` locks the project's counter
    row until commit, so concurrent writers queue up instead of forking the chain; the unique
    (project_id, seq) constraint is the backstop. The same statement returns the previous event's
    hash on PostgreSQL when its snapshot can see it; when it cannot (the UPDATE waited for a writer
    that committed after the statement began), and on SQLite, a second SELECT reads it.
    """
    # A JSON round trip now, so the hash covers exactly what the database will hand back.
    data = json.loads(json.dumps(data or {}, sort_keys=True, allow_nan=False))
    # The caller's pending rows go first, as they would with the event added to the session.
    db.session.flush()
    seq, prev_hash = _next_link(project_id)
    if seq is None:
        ensure_counter(project_id)
        seq, prev_hash = _next_link(project_id)
    if seq == 1:
        prev_hash = GENESIS_HASH
    elif prev_hash is None:
        prev_hash = db.session.execute(
            select(AuditEvent.hash).where(AuditEvent.project_id == project_id, AuditEvent.seq == seq - 1)
        ).scalar_one()
    created_at = utcnow()
    _insert_statement().execute({
        "project_id": project_id, "seq": seq, "kind": kind, "actor_id": actor_id, "issue_id": issue_id, "data": data,
        "created_at": created_at, "prev_hash": prev_hash,
        "hash": chain_hash(prev_hash, canonical(project_id, seq, kind, actor_id, issue_id, data, created_at)),
    })


@functools.cache
def _insert_statement() -> Prepared:
    return Prepared(insert(AuditEvent.__table__), ("project_id", "seq", "kind", "actor_id", "issue_id", "data",
                                                   "created_at", "prev_hash", "hash"))


def _next_link(project_id: int) -> tuple[int | None, str | None]:
    """Bump the project's audit sequence: (new seq, hash of event seq - 1 if visible), or (None, None) with no counter.

    On PostgreSQL the previous hash comes back in the same statement. SQLite renders RETURNING columns
    unqualified, which a correlated subquery would resolve against `audit_events` itself, so there the
    hash is left to the caller's SELECT.
    """
    postgres = db.session.connection().dialect.name == "postgresql"
    rows, _ = _next_link_statement(postgres).execute({"counter_project_id": project_id})
    if not rows:
        return None, None
    return rows[0][0], (rows[0][1] if postgres else None)


@functools.cache
def _next_link_statement(with_previous_hash: bool) -> Prepared:
    # Core tables, not the mapped classes: no ORM bookkeeping for a counter bump.
    counters, events = ProjectCounter.__table__, AuditEvent.__table__
    statement = (
        update(counters)
        .where(counters.c.project_id == bindparam("counter_project_id"))
        .values(audit_seq=counters.c.audit_seq + 1)
    )
    if not with_previous_hash:
        return Prepared(statement.returning(counters.c.audit_seq))
    previous = (
        select(events.c.hash)
        .where(events.c.project_id == counters.c.project_id, events.c.seq == counters.c.audit_seq - 1)
        .correlate(counters)
        .scalar_subquery()
    )
    return Prepared(statement.returning(counters.c.audit_seq, previous))


def verify(project_id: int) -> VerifyResult:
    """Recompute the project's chain from the first event; report the first link that does not hold."""
    expected_prev = GENESIS_HASH
    checked = 0
    rows = db.session.execute(
        select(AuditEvent).where(AuditEvent.project_id == project_id).order_by(AuditEvent.seq)
        .execution_options(yield_per=500)
    ).scalars()
    for event in rows:
        checked += 1
        reason = None
        if event.seq != checked:
            reason = f"sequence gap: expected seq {checked}, found {event.seq}"
        elif event.prev_hash != expected_prev:
            reason = "prev_hash does not match the previous event's hash"
        elif event.hash != chain_hash(event.prev_hash, canonical(
                event.project_id, event.seq, event.kind, event.actor_id, event.issue_id, event.data, event.created_at)):
            reason = "hash does not match the event's content"
        if reason:
            log.warning("audit chain broken project=%s seq=%s id=%s: %s", project_id, event.seq, event.id, reason)
            return VerifyResult(ok=False, checked=checked, first_broken=BrokenLink(event.seq, event.id, reason))
        expected_prev = event.hash
    return VerifyResult(ok=True, checked=checked)


AUDIT_ROLES = ("owner", "admin")
PER_PAGE = 50


@dataclass(frozen=True)
class AuditFilters:
    """What the audit page narrows the trail to; every field is optional."""

    issue: str | None = None
    actor: str | None = None
    kind: str | None = None
    since: date | None = None
    until: date | None = None

    def args(self) -> dict[str, str]:
        """The filters as URL arguments (the page keeps them in its URL)."""
        values = {"issue": self.issue, "actor": self.actor, "kind": self.kind,
                  "since": self.since.isoformat() if self.since else None,
                  "until": self.until.isoformat() if self.until else None}
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class AuditRow:
    event: AuditEvent
    actor: str
    issue_key: str | None
    issue_number: int | None


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    page: int
    pages: int
    total: int
    kinds: list[str]
    actors: list[tuple[str, str]]


def audited_project(actor: User, key: str) -> Project:
    """The project whose trail the actor may read: 404 for strangers, 403 for members who are not admins."""
    project = get_project(actor, key)
    if project_role(actor, project) not in AUDIT_ROLES:
        raise Forbidden("Only project owners and admins can see the audit trail.")
    return project


def events_page(project_id: int, filters: AuditFilters, page: int = 1, per_page: int = PER_PAGE) -> AuditPage:
    """One page of the project's chain, newest first, narrowed by the filters."""
    query = select(AuditEvent).where(AuditEvent.project_id == project_id)
    if filters.issue:
        number = filters.issue.rsplit("-", 1)[-1].strip()
        issue_ids = select(Issue.id).where(Issue.project_id == project_id, or_(
            Issue.key == filters.issue.strip().upper(), Issue.number == (int(number) if number.isdigit() else -1)))
        query = query.where(AuditEvent.issue_id.in_(issue_ids))
    if filters.actor == "system":
        query = query.where(AuditEvent.actor_id.is_(None))
    elif filters.actor and filters.actor.isdigit():
        query = query.where(AuditEvent.actor_id == int(filters.actor))
    if filters.kind:
        query = query.where(AuditEvent.kind == filters.kind)
    if filters.since:
        query = query.where(AuditEvent.created_at >= datetime.combine(filters.since, time.min, timezone.utc))
    if filters.until:
        query = query.where(AuditEvent.created_at < datetime.combine(filters.until + timedelta(days=1), time.min,
                                                                     timezone.utc))
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    events = list(db.session.scalars(query.order_by(AuditEvent.seq.desc())
                                     .offset((page - 1) * per_page).limit(per_page)))
    user_ids = {e.actor_id for e in events if e.actor_id is not None}
    issue_ids = {e.issue_id for e in events if e.issue_id is not None}
    people = {u.id: u.display_name for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))} \
        if user_ids else {}
    issues = {i.id: (i.key, i.number) for i in db.session.scalars(select(Issue).where(Issue.id.in_(issue_ids)))} \
        if issue_ids else {}
    rows = [AuditRow(e, people.get(e.actor_id, f"user {e.actor_id}") if e.actor_id is not None else "Kiket",
                     *(issues.get(e.issue_id) or (None, None))) for e in events]
    kinds = list(db.session.scalars(select(AuditEvent.kind).where(AuditEvent.project_id == project_id)
                                    .distinct().order_by(AuditEvent.kind)))
    actor_ids = select(AuditEvent.actor_id).where(AuditEvent.project_id == project_id).distinct()
    actors = [("system", "Kiket (automations, hooks, jobs)")] + [
        (str(u.id), u.display_name) for u in db.session.scalars(
            select(User).where(User.id.in_(actor_ids)).order_by(User.email))]
    return AuditPage(rows, page, pages, total, kinds, actors)

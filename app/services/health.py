"""The checks behind `/up`: database, Redis, a live `configuration` worker, queue depth and age."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from sqlalchemy import text

from app.extensions import db


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return {"ok": self.ok, "detail": self.detail}


def check_database() -> Check:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "down"; the reason goes in the report
        db.session.rollback()
        return Check("database", False, f"database did not answer: {type(exc).__name__}")
    return Check("database", True, "answered")


def check_redis(redis: Redis) -> Check:
    try:
        redis.ping()
    except Exception as exc:
        return Check("redis", False, f"redis did not answer: {type(exc).__name__}")
    return Check("redis", True, "answered")


def check_worker(redis: Redis, queue: str, max_silence: int, now: datetime) -> Check:
    workers = Worker.all(connection=redis, queue=Queue(queue, connection=redis))
    fresh = [w for w in workers if w.last_heartbeat and (now - _aware(w.last_heartbeat)).total_seconds() <= max_silence]
    if not fresh:
        stale = f" ({len(workers)} without a recent heartbeat)" if workers else ""
        return Check("worker", False, f"no worker listens on the {queue!r} queue{stale}")
    return Check("worker", True, f"{len(fresh)} worker(s) on {queue!r}")


def check_queue(redis: Redis, queue: str, max_depth: int, max_age: int, now: datetime) -> Check:
    q = Queue(queue, connection=redis)
    depth = q.count
    problems = []
    if depth > max_depth:
        problems.append(f"depth {depth} is over {max_depth}")
    oldest_ids = q.get_job_ids(0, 0)
    age = 0
    if oldest_ids:
        job = Job.fetch(oldest_ids[0], connection=redis)
        if job.enqueued_at:
            age = int((now - _aware(job.enqueued_at)).total_seconds())
        if age > max_age:
            problems.append(f"oldest job has waited {age}s, over {max_age}s")
    if problems:
        return Check("configuration_queue", False, f"the {queue!r} queue is backing up: " + "; ".join(problems))
    return Check("configuration_queue", True, f"depth {depth}, oldest {age}s")


def run_checks(redis: Redis, *, max_depth: int, max_age: int, worker_ttl: int) -> list[Check]:
    """Every check, in order; Redis-dependent checks are skipped (failed) when Redis is down."""
    now = datetime.now(timezone.utc)
    checks = [check_database(), check_redis(redis)]
    if checks[-1].ok:
        checks.append(check_worker(redis, "configuration", worker_ttl, now))
        checks.append(check_queue(redis, "configuration", max_depth, max_age, now))
    else:
        checks.append(Check("worker", False, "not checked: redis is down"))
        checks.append(Check("configuration_queue", False, "not checked: redis is down"))
    return checks


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

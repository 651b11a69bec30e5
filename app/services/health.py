"""The checks behind `/up`: database, Redis, a live `configuration` worker, queue depth and age.

Workers are judged by Kiket's own heartbeat, not RQ's registration: every worker writes its name into
`kiket:workers:<queue>` (a sorted set scored by the time of the beat) a few times per heartbeat period,
from a thread of its own (`app.worker_watch`), so a long job does not silence it and a Redis that came
back empty has it again within one beat. A worker counts when it beat within the last period: a dead
one drops out within one period; one that stopped cleanly removes itself at once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from sqlalchemy import text

from app.extensions import db
from app.queue import QUEUES


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


def _beats_key(queue: str) -> str:
    return f"kiket:workers:{queue}"


def _worker_key(name: str) -> str:
    return f"kiket:worker:{name}"


def beat(redis: Redis, name: str, queues: list[str], period: int, *, job: str | None, pid: int, host: str) -> None:
    """One heartbeat of a worker: its name in each queue's set, and what it is running (both expire)."""
    stamp = time.time()
    with redis.pipeline() as pipe:
        for queue in queues:
            pipe.zadd(_beats_key(queue), {name: stamp})
            pipe.zremrangebyscore(_beats_key(queue), "-inf", stamp - 2 * period)
            pipe.expire(_beats_key(queue), 2 * period)
        pipe.set(_worker_key(name), json.dumps({"job": job, "pid": pid, "host": host, "queues": queues}), ex=period)
        pipe.execute()


def forget(redis: Redis, name: str, queues: list[str]) -> None:
    """A worker that stops cleanly leaves `/up` at once."""
    with redis.pipeline() as pipe:
        for queue in queues:
            pipe.zrem(_beats_key(queue), name)
        pipe.delete(_worker_key(name))
        pipe.execute()


def live_workers(redis: Redis, queue: str, period: float) -> list[str]:
    """Names of the workers on `queue` that beat within the last `period` seconds."""
    return [n.decode() for n in redis.zrangebyscore(_beats_key(queue), time.time() - period, "+inf")]


def held_jobs(redis: Redis, period: float) -> dict[str, str]:
    """Job id -> worker name, for every job a live worker says it is running."""
    names = {n for q in QUEUES for n in live_workers(redis, q, period)}
    held = {}
    for name, raw in zip(names, redis.mget([_worker_key(n) for n in names]) if names else []):
        job = json.loads(raw).get("job") if raw else None
        if job:
            held[job] = name
    return held


def check_worker(redis: Redis, queue: str, period: int) -> Check:
    fresh = live_workers(redis, queue, period)
    if not fresh:
        registered = len(Worker.all(connection=redis, queue=Queue(queue, connection=redis)))
        stale = f" ({registered} registered without a recent heartbeat)" if registered else ""
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


def run_checks(redis: Redis, *, max_depth: int, max_age: int, heartbeat: int) -> list[Check]:
    """Every check, in order; Redis-dependent checks are skipped (failed) when Redis is down."""
    now = datetime.now(timezone.utc)
    checks = [check_database(), check_redis(redis)]
    if checks[-1].ok:
        checks.append(check_worker(redis, "configuration", heartbeat))
        checks.append(check_queue(redis, "configuration", max_depth, max_age, now))
    else:
        checks.append(Check("worker", False, "not checked: redis is down"))
        checks.append(Check("configuration_queue", False, "not checked: redis is down"))
    return checks


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

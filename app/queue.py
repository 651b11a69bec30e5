"""Redis connection and RQ queues, one code path for real Redis and the embedded server."""

from __future__ import annotations

from typing import Any

from flask import current_app
from redis import Redis
from rq import Queue

QUEUES = ("configuration", "default", "webhooks")


def redis_connection() -> Redis:
    return current_app.extensions["redis"]


def get_queue(name: str) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis_connection())


def enqueue(queue: str, func_path: str, *args: Any, **options: Any):
    """Enqueue a job by dotted path (no import cycles); options are RQ's (job_id, job_timeout, retry…)."""
    return get_queue(queue).enqueue(func_path, *args, **options)

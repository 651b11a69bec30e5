"""A worker's watch thread: its heartbeat, healing after Redis lost its data, and reaping sync runs whose job died.

Every `KIKET_WORKER_HEARTBEAT / 3` seconds, independent of the job in progress, the thread

- beats (`app.services.health.beat`): `/up` counts the worker while its beats are fresh;
- registers the worker with RQ again when Redis no longer knows it (restarted empty, flushed), then makes
  sure the periodic sweep is scheduled and wakes the outbox dispatcher for events whose wake-up was lost;
- once per period: fails the sync runs whose job died (`app.services.sync.runs.reap_lost_runs`), keeps the
  sweep scheduled, wakes the dispatcher for outbox rows older than a period (a wake-up lost while Redis
  was away), and queues again the webhook attempts whose job Redis lost.

Redis or the database being away only skips a tick: the thread never stops before the worker does.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from flask import Flask
from rq import worker_registration

log = logging.getLogger(__name__)


class Watched:
    """Mixed into the worker class: the watch starts once the worker is registered and stops at its death; the
    id of the job in progress is kept in this process (Redis may lose it)."""

    kiket_job: str | None = None
    kiket_watch: Watch | None = None

    def register_birth(self):
        super().register_birth()
        if self.kiket_watch is None:
            from flask import current_app

            self.kiket_watch = Watch(current_app._get_current_object(), self, [q.name for q in self.queues])
            self.kiket_watch.start()

    def execute_job(self, job, queue):
        self.kiket_job = job.id
        try:
            return super().execute_job(job, queue)
        finally:
            self.kiket_job = None

    def register_death(self):
        if self.kiket_watch is not None:
            self.kiket_watch.stop()
        return super().register_death()


class Watch(threading.Thread):
    def __init__(self, app: Flask, worker, queues: list[str]):
        super().__init__(name="kiket-worker-watch", daemon=True)
        self.app = app
        self.worker = worker
        self.queues = list(queues)
        self.period = app.config["KIKET_WORKER_HEARTBEAT"]
        self._stopping = threading.Event()
        self._last_reap = 0.0
        self.host = socket.gethostname()

    def stop(self) -> None:
        """Stop beating and leave `/up` (a clean shutdown)."""
        from app.services import health

        self._stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=5)  # a beat in progress must not land after the removal
        try:
            health.forget(self.worker.connection, self.worker.name, self.queues)
        except Exception as exc:  # noqa: BLE001 - Redis away at shutdown: the beats expire by themselves
            log.info("worker heartbeat not removed: %s", exc.__class__.__name__)

    def run(self) -> None:
        interval = max(0.5, self.period / 3)
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - the next tick tries again
                log.warning("worker watch: %s: %s", exc.__class__.__name__, exc)
            self._stopping.wait(interval)

    def tick(self) -> None:
        from app.services import health

        redis = self.worker.connection
        if self._stopping.is_set():
            return
        health.beat(redis, self.worker.name, self.queues, self.period, job=getattr(self.worker, "kiket_job", None),
                    pid=os.getpid(), host=self.host)
        if not redis.sismember(worker_registration.REDIS_WORKER_KEYS, self.worker.key):
            self.heal()
        if time.monotonic() - self._last_reap >= self.period:
            self._last_reap = time.monotonic()
            self.reap()

    def heal(self) -> None:
        """Redis no longer knows this worker (it restarted empty): register again, re-create the sweep, wake
        the outbox dispatcher."""
        from app.services.runtime import events, sla

        redis = self.worker.connection
        log.warning("Redis lost this worker's registration (restarted empty?): registering %s again, "
                    "re-creating the sweep", self.worker.name)
        redis.delete(self.worker.key)
        self.worker.register_birth()
        self.worker.heartbeat()
        with self.app.app_context():
            sla.schedule_sweep()
            events.wake(redis)

    def reap(self) -> None:
        """Once per period: fail runs whose job died, keep the sweep scheduled, send outbox rows a lost wake-up left."""
        from app.extensions import db
        from app.services.runtime import events, sla
        from app.services.sync import runs
        from app.services.webhooks import delivery

        steps = (lambda: runs.reap_lost_runs(self.period), sla.schedule_sweep,
                 lambda: events.wake_if_stranded(self.worker.connection, self.period),
                 lambda: delivery.requeue_lost(self.period))
        with self.app.app_context():
            for step in steps:
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - one failing step must not hold up the others
                    db.session.rollback()
                    log.warning("worker watch: %s: %s", exc.__class__.__name__, exc)
            db.session.remove()

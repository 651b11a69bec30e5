"""`flask kiket …` commands and `flask worker`."""

from __future__ import annotations

import gc
import logging
import secrets
import signal
import time

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import SimpleWorker, Worker

from app.commands.audit import audit_cli
from app.commands.config import schema_command, validate_command
from app.commands.demo import demo_command, ready_command
from app.commands.gateway import keys_cli, token_cli
from app.commands.migrate import migrate_command
from app.commands.repositories import repo_cli, sync_repository
from app.queue import QUEUES, get_queue, redis_connection
from app.services import accounts
from app.services.errors import ServiceError
from app.worker_watch import Watched

log = logging.getLogger(__name__)

kiket_cli = AppGroup("kiket", help="Kiket administration commands.")
user_cli = AppGroup("user", help="Manage accounts.")
kiket_cli.add_command(user_cli)
kiket_cli.add_command(repo_cli)
kiket_cli.add_command(sync_repository)
kiket_cli.add_command(audit_cli)
kiket_cli.add_command(migrate_command)
kiket_cli.add_command(validate_command)
kiket_cli.add_command(schema_command)
kiket_cli.add_command(demo_command)
kiket_cli.add_command(ready_command)
kiket_cli.add_command(token_cli)
kiket_cli.add_command(keys_cli)


@user_cli.command("create")
@click.argument("email")
@click.option("--password", help="Password to set; one is generated and printed when omitted.")
@click.option("--org-role", type=click.Choice(["owner", "admin", "member"]), default="member", show_default=True)
@click.option("--name", default="", help="Display name.")
def create_user(email: str, password: str | None, org_role: str, name: str) -> None:
    """Create an account in the organization."""
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    try:
        user = accounts.create_user(email, password, org_role, name=name)
    except ServiceError as error:
        raise click.ClickException(error.detail) from None
    click.echo(f"Created {user.email} ({user.org_role}).")
    if generated:
        click.echo(f"Password: {password}")


@user_cli.command("password")
@click.argument("email")
def reset_password(email: str) -> None:
    """Give an account a new generated password, print it, and end the account's sessions."""
    password = secrets.token_urlsafe(12)
    try:
        user = accounts.reset_password(email, password)
    except ServiceError as error:
        raise click.ClickException(error.detail) from None
    click.echo(f"New password for {user.email}: {password}")
    click.echo("Every browser signed in to this account has been signed out.")


def _wait_for_redis(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            redis_connection().ping()
            return
        except RedisConnectionError:
            if time.monotonic() > deadline:
                raise click.ClickException(f"Redis at {current_app.config['REDIS_URL']} did not answer in {timeout:.0f}s") from None
            time.sleep(0.25)


class AppContextWorker(Watched, SimpleWorker):
    """Runs jobs in this process, each in a fresh app context: its own database session, removed after."""

    def perform_job(self, job, queue) -> bool:
        with current_app.app_context():
            return super().perform_job(job, queue)


class ForkingWorker(Watched, Worker):
    """Runs each job in a forked work horse."""


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--fork", is_flag=True, help="Run each job in a forked work horse instead of in this process.")
@click.option("--wait", "wait_seconds", default=30.0, show_default=True, help="Seconds to wait for Redis at start.")
@with_appcontext
def worker_command(queues: tuple[str, ...], burst: bool, fork: bool, wait_seconds: float) -> None:
    """Run an RQ worker (with the scheduler) inside the app, on `configuration default webhooks` by default.

    Jobs run in this process by default: a forked horse starts cold (new database connection,
    empty statement and config caches), which cost ~100 ms per job and doubled the sync time from
    click to active revision. Timeouts are still enforced (SIGALRM); `--fork` isolates each job.
    """
    names = queues or QUEUES
    _wait_for_redis(wait_seconds)
    worker_class = ForkingWorker if fork else AppContextWorker
    log.info("worker starting on %s (%s)", ", ".join(names), "forking" if fork else "in-process")
    from app.services.runtime import sla  # the 5-minute sweep reschedules itself; this starts the cycle (idempotent)

    sla.schedule_sweep()
    # Everything alive now (app, modules, pools) lives as long as the worker: frozen, no collection ever
    # walks it again, so a collection during a job costs what the job allocated, not the whole process.
    gc.collect()
    gc.freeze()
    while True:
        worker = worker_class([get_queue(name) for name in names], connection=redis_connection(),
                              worker_ttl=current_app.config["KIKET_WORKER_TTL"])
        try:
            worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
        except RedisConnectionError as exc:
            log.warning("worker lost Redis: %s", exc)
        finally:
            if worker.kiket_watch is not None:
                worker.kiket_watch.stop()
        if burst or worker._stop_requested or worker._shutdown_requested_date is not None:
            return
        # RQ quits on an error it does not handle (Redis going away in the middle of a job's bookkeeping): a
        # worker under a plain process manager would stay gone, so this one waits for Redis and starts again.
        log.warning("worker stopped without being asked to; starting again once Redis answers")
        # RQ's handlers talk to Redis: while waiting for it, SIGTERM and Ctrl-C must simply end the process.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        time.sleep(1)
        _wait_for_redis(float("inf"))

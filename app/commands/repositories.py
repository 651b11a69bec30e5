"""`flask kiket repo add` and `flask kiket sync`: connect a project to a git repository and sync it."""

from __future__ import annotations

import os
import time

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app.extensions import db
from app.models import Project, SyncRun
from app.models.repositories import SYNC_DONE
from app.services import accounts
from app.services.errors import ServiceError
from app.services.sync import repositories, runs


@click.group("repo")
def repo_cli() -> None:
    """Manage workflow repositories."""


@repo_cli.command("add")
@click.argument("project_key")
@click.argument("url")
@click.option("--branch", default="main", show_default=True, help="Branch to track.")
@click.option("--path", "config_path", default=".kiket", show_default=True, help="Config directory in the repository.")
@click.option("--token-env", default=None, metavar="VAR",
              help="Read an access token from this environment variable (never from the command line).")
@with_appcontext
def add_repository(project_key: str, url: str, branch: str, config_path: str, token_env: str | None) -> None:
    """Connect PROJECT_KEY to the git repository at URL; prints its id and webhook secret (shown once)."""
    organization = accounts.the_organization()
    project = db.session.scalar(select(Project).where(
        Project.key == project_key.upper(),
        Project.organization_id == (organization.id if organization else None)))
    if project is None:
        raise click.ClickException(f"No project {project_key!r}.")
    token = os.environ.get(token_env) if token_env else None
    if token_env and not token:
        raise click.ClickException(f"${token_env} is empty.")
    try:
        repository, secret = repositories.add_repository(project, url, branch=branch, config_path=config_path,
                                                         token=token)
    except ServiceError as error:
        raise click.ClickException(error.detail) from None
    click.echo(f"Repository {repository.id} tracks {repository.branch} of {repository.remote_url} for {project.key}.")
    click.echo(f"Webhook secret (shown once): {secret}")


@click.command("sync")
@click.argument("repository_id", type=int)
@click.option("--branch", default=None, help="Switch the tracked branch to this one and sync it.")
@click.option("--wait", is_flag=True, help="Wait for the sync to finish, print the result, exit 1 when it failed.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait with --wait.")
@with_appcontext
def sync_repository(repository_id: int, branch: str | None, wait: bool, timeout: float) -> None:
    """Queue a sync of REPOSITORY_ID (a worker on the `configuration` queue runs it)."""
    try:
        run = runs.request_sync(repository_id, branch=branch, trigger="cli")
    except ServiceError as error:
        raise click.ClickException(error.detail) from None
    click.echo(f"Sync run {run.id} of {run.branch}: {run.status} (job {run.job_id})")
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while run.status not in SYNC_DONE:
        if time.monotonic() > deadline:
            raise click.ClickException(f"Sync run {run.id} is still {run.status} after {timeout:.0f} s.")
        time.sleep(0.2)
        db.session.rollback()  # a fresh transaction sees the worker's updates
        run = db.session.get(SyncRun, run.id)
    _print_result(run)
    if run.status == "failed":
        raise SystemExit(1)


def _print_result(run: SyncRun) -> None:
    for item in run.diagnostics or []:
        line = f"{item.get('file') or '<unknown>'}:{item.get('line') or 1}:{item.get('column') or 1}: " \
               f"{item['severity']} {item['code']}: {item['message']}"
        click.echo(line, err=item["severity"] in ("fatal", "error"))
    commit = (run.commit_sha or "")[:10] or "-"
    timings = ", ".join(f"{phase} {ms} ms" for phase, ms in (run.timings or {}).items())
    click.echo(f"Sync run {run.id}: {run.status} at {commit}" + (f" ({timings})" if timings else ""))
    if run.error:
        click.echo(f"Reason: {run.error}", err=True)
    if run.status == "held":
        for stranded in (run.summary or {}).get("stranded", []):
            click.echo(f"Held: {stranded['count']} issues of workflow {stranded['workflow']} would have no place in "
                       "this revision; a project owner or admin confirms the activation on the sync run's page.",
                       err=True)

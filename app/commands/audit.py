"""`flask kiket audit verify PROJECT_KEY`: recompute a project's audit chain."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.extensions import db
from app.models.projects import Project
from app.services import audit

audit_cli = AppGroup("audit", help="Audit trail commands.")


@audit_cli.command("verify")
@click.argument("project_key")
def verify_command(project_key: str) -> None:
    """Recompute the project's hash chain; exit 1 naming the first broken link."""
    project = db.session.execute(select(Project).where(Project.key == project_key.upper())).scalars().first()
    if project is None:
        raise click.ClickException(f"no project with key {project_key!r}")
    result = audit.verify(project.id)
    if result.ok:
        click.echo(f"{project.key}: audit chain OK ({result.checked} events)")
        return
    broken = result.first_broken
    click.echo(f"{project.key}: audit chain BROKEN at seq {broken.seq} (event id {broken.id}): {broken.reason}", err=True)
    raise SystemExit(1)

"""`flask kiket migrate PROJECT_KEY WORKFLOW_ID [--map old=new …] [--apply]`: preview, then move pinned issues, or
map the issues of a workflow the active configuration lacks."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app.extensions import db
from app.models.projects import Project
from app.services.errors import ServiceError
from app.services.runtime import stranded, workflow_migration
from app.services.sync import configuration


def _parse_map(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise click.BadParameter(f"{pair!r}: use old_state=new_state", param_hint="--map")
        out[source.strip()] = target.strip()
    return out


@click.command("migrate")
@click.argument("project_key")
@click.argument("workflow_id")
@click.option("--map", "mapping", multiple=True, metavar="OLD=NEW",
              help="Target state for a removed state (type:OLD=NEW for an issue type of a removed workflow).")
@click.option("--apply", "do_apply", is_flag=True, help="Move the issues (default: preview only).")
@with_appcontext
def migrate_command(project_key: str, workflow_id: str, mapping: tuple[str, ...], do_apply: bool) -> None:
    """Preview (or apply) the migration of a workflow's pinned issues to its current version."""
    project = db.session.scalar(select(Project).where(Project.key == project_key.upper()))
    if project is None:
        raise click.ClickException(f"No project {project_key}.")
    choices = _parse_map(mapping)
    if workflow_id not in configuration.project_config(project).workflows:
        _stranded(project, workflow_id, choices, do_apply)
        return
    try:
        plan = workflow_migration.preview(project, workflow_id, choices)
    except ServiceError as error:
        raise click.ClickException(error.detail) from None
    click.echo(f"{project.key} {workflow_id}: current version {plan.new_version[:12]}, {plan.total} issue(s) to migrate")
    for group in plan.groups:
        click.echo(f"  from {group.old_version[:12]}{' (free)' if group.free else ''}:")
        for move in group.plan.moves:
            if move.count:
                target = move.target or "?  (choose with --map)"
                click.echo(f"    {move.source} -> {target}: {move.count} [{', '.join(group.keys_in(move.source))}]")
    if not do_apply:
        if plan.needs_choice:
            click.echo(f"Needs a target: {', '.join(plan.needs_choice)}")
        click.echo("Preview only; add --apply to migrate.")
        return
    try:
        result = workflow_migration.apply(project, workflow_id, choices, None)
    except ServiceError as error:
        problems = getattr(error, "problems", None) or {}
        raise click.ClickException("; ".join(problems.values()) if problems else error.detail) from None
    for key, source, target in result.moved:
        click.echo(f"  moved {key}: {source} -> {target}")
    click.echo(f"Migrated {len(result.moved)} issue(s)" + (f"; conflicts: {', '.join(result.conflicts)}"
                                                          if result.conflicts else "") + ".")
    if result.conflicts:
        raise SystemExit(1)


def _stranded(project: Project, workflow_id: str, pairs: dict[str, str], do_apply: bool) -> None:
    """Issues on a workflow the active configuration lacks: `--map state=target`, `--map type:old=new`."""
    try:
        plan = stranded.preview(project, workflow_id)
        choices = {k: v for k, v in pairs.items() if k.startswith("type:")}
        choices.update({f"map:{group.workflow.id}:{source}": target for source, target in pairs.items()
                        if not source.startswith("type:") for group in plan.targets})
        plan = stranded.preview(project, workflow_id, choices)
        click.echo(f"{project.key} {workflow_id}: not in the active configuration, {plan.total} issue(s) to map")
        for row in plan.types:
            click.echo(f"  type {row.source} -> {row.target}: {row.count} ({row.reason})")
        for group in plan.targets:
            for row in group.rows:
                click.echo(f"    {row.source} -> {group.workflow.id}.{row.target}: {row.count} [{', '.join(row.keys)}] "
                           f"({row.reason})")
        if not do_apply:
            click.echo("Preview only; add --apply to map them.")
            return
        result = stranded.apply(project, workflow_id, choices, None)
    except ServiceError as error:
        problems = getattr(error, "problems", None) or {}
        raise click.ClickException("; ".join(problems.values()) if problems else error.detail) from None
    click.echo(f"Mapped {len(result.moved)} issue(s) onto the active configuration.")

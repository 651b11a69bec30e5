"""`flask kiket validate` and `flask kiket schema`: the server's validator and JSON Schemas on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import click

from app.kiket.diagnostics import by_severity
from app.kiket.loader import load_revision
from app.kiket.model import Source


def _read(path: Path, ref: str | None) -> tuple[dict[str, bytes], list[tuple[str, str]], Source]:
    from app.services.sync.config_sources import (
        ConfigSourceError, read_directory_tree, read_git_tree_files, resolve_commit,
    )

    try:
        if ref is not None:
            tree = read_git_tree_files(path, ref)
            return tree.files, tree.skipped, Source(repo=str(path), branch=ref, commit_sha=resolve_commit(path, ref))
        tree = read_directory_tree(path)
        return tree.files, tree.skipped, Source(repo=str(path))
    except ConfigSourceError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("validate")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--ref", default=None, help="Read this branch or commit of the git repository at PATH.")
@click.option("--json", "as_json", is_flag=True, help="Print diagnostics and summary as JSON.")
@click.option("--strict", is_flag=True, help="Also fail (exit 1) on errors, not only on fatal problems.")
def validate_command(path: Path, ref: str | None, as_json: bool, strict: bool) -> None:
    """Validate a .kiket/ configuration exactly as the server would."""
    files, skipped, source = _read(path, ref)
    result = load_revision(files, source=source, skipped=skipped)
    counts = result.counts
    summary = result.summary()
    if as_json:
        click.echo(json.dumps({"diagnostics": [d.to_dict() for d in result.diagnostics],
                               "summary": {**summary, "counts": counts, "ok": result.ok}}, indent=2))
    else:
        for diagnostic in by_severity(result.diagnostics):
            click.echo(diagnostic.format())
        click.echo(
            f"{summary['workflows']} workflows, {summary['states']} states, {summary['transitions']} transitions, "
            f"{summary['boards']} boards, {summary['issue_types']} issue types, {summary['automations']} automations"
        )
        click.echo(", ".join(f"{counts[s]} {s}" for s in ("fatal", "error", "warning", "info")))
        if result.diagnostics:
            click.echo("Each code is explained, with an example and the fix, in docs/diagnostics.md.")
    if not result.ok or (strict and counts["error"]):
        raise SystemExit(1)


@click.command("schema")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write the JSON Schema files into.")
def schema_command(out_dir: Path) -> None:
    """Write JSON Schemas (draft 2020-12) for editors, one per file kind."""
    from app.kiket.schema import schemas

    out_dir.mkdir(parents=True, exist_ok=True)
    for kind, schema in schemas().items():
        target = out_dir / f"{kind}.schema.json"
        target.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        click.echo(str(target))

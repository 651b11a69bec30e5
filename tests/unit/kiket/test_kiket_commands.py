"""`validate` and `schema` click commands, through click's CliRunner (no app needed)."""

from __future__ import annotations

import json
import subprocess
import shutil

import pytest
from click.testing import CliRunner

from app.commands.config import schema_command, validate_command
from app.kiket.schema import schemas, validate

SIMPLE = "states: {open: {type: initial}, done: {type: final}}\ntransitions: [{from: open, to: done}]\n"


def write(root, files):
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


def test_validate_fixture_directory_prints_compiler_style_lines_and_summary(fixture_repos, tmp_path):
    write(tmp_path, fixture_repos.files("engineering"))
    result = CliRunner().invoke(validate_command, [str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith(".kiket/workflows/incident.yaml:23:19: warning unknown_role:") for line in lines)
    assert "2 workflows, 11 states, 15 transitions, 2 boards, 4 issue types, 5 automations" in lines
    assert lines[-2].startswith("0 fatal, 0 error, 21 warning")
    assert lines[-1] == "Each code is explained, with an example and the fix, in docs/diagnostics.md."


def test_validate_accepts_the_config_directory_itself(tmp_path):
    write(tmp_path, {".kiket/workflows/a.yaml": SIMPLE})
    result = CliRunner().invoke(validate_command, [str(tmp_path / ".kiket")])
    assert result.exit_code == 0 and "1 workflows, 2 states, 1 transitions" in result.output


def test_validate_json_output(tmp_path):
    write(tmp_path, {".kiket/workflows/a.yaml": "oops: 1\n" + SIMPLE})
    result = CliRunner().invoke(validate_command, [str(tmp_path), "--json"])
    data = json.loads(result.output)
    assert data["summary"]["workflows"] == 1 and data["summary"]["counts"]["warning"] == 1
    (warning,) = [d for d in data["diagnostics"] if d["severity"] == "warning"]
    assert warning["code"] == "unknown_key" and (warning["line"], warning["column"]) == (1, 1)


def test_validate_exits_1_on_fatal_and_on_errors_with_strict(tmp_path):
    fatal = write(tmp_path / "fatal", {".kiket/workflows/a.yaml": "states: {}\n"})
    result = CliRunner().invoke(validate_command, [str(fatal)])
    assert result.exit_code == 1 and "fatal no_states" in result.output
    errors = write(tmp_path / "errors", {".kiket/workflows/a.yaml": SIMPLE, ".kiket/boards/b.yaml": "id: b\n"})
    assert CliRunner().invoke(validate_command, [str(errors)]).exit_code == 0
    assert CliRunner().invoke(validate_command, [str(errors), "--strict"]).exit_code == 1


def test_validate_lists_the_most_severe_first(tmp_path):
    files = {".kiket/workflows/a.yaml": "oops: 1\n" + SIMPLE, ".kiket/workflows/b.yaml": "states: {}\n",
             ".kiket/boards/c.yaml": "id: c\n"}
    result = CliRunner().invoke(validate_command, [str(write(tmp_path, files))])
    severities = [line.split(": ")[1].split()[0] for line in result.output.splitlines() if line.startswith(".kiket/")]
    assert severities[0] == "fatal" and severities.index("warning") > severities.index("error")
    assert severities == sorted(severities, key=["fatal", "error", "warning", "info"].index)


def test_validate_reads_a_git_branch_without_a_work_tree(fixture_repos):
    repo = fixture_repos.clone("engineering")
    result = CliRunner().invoke(validate_command, [str(repo), "--ref", "develop"])
    assert result.exit_code == 0, result.output
    assert "project_legacy_id" in result.output
    bad = CliRunner().invoke(validate_command, [str(repo), "--ref", "--upload-pack=x"])
    assert bad.exit_code != 0 and "invalid git ref" in bad.output


def test_schema_writes_one_file_per_kind(tmp_path):
    result = CliRunner().invoke(schema_command, ["--out", str(tmp_path / "schemas")])
    assert result.exit_code == 0
    names = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert names == sorted(f"{k}.schema.json" for k in ("project", "workspace", "team", "issue_types", "case_types",
                                                        "workflow", "board", "automation", "recipe"))
    data = json.loads((tmp_path / "schemas" / "workflow.schema.json").read_text())
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"


KIND_OF = {"project.yaml": "project", "issue_types.yaml": "issue_types"}


def _kind(rel: str) -> str | None:
    from app.kiket.loader import classify

    kind, _ = classify(rel)
    return kind if kind in ("project", "team", "issue_types", "workflow", "board", "automation", "recipe") else None


@pytest.mark.parametrize("name,branch", [("engineering", "main"), ("engineering", "develop"), ("scrum", "main"),
                                         ("kanban", "main"), ("legal", "main")])
def test_fixtures_validate_against_the_schemas(fixture_repos, name, branch):
    import yaml

    all_schemas = schemas()
    checked = 0
    for path, data in fixture_repos.files(name, branch).items():
        kind = _kind(path[len(".kiket/"):]) if path.startswith(".kiket/") else None
        if kind is None:
            continue
        assert validate(yaml.safe_load(data), all_schemas[kind]) == [], path
        checked += 1
    assert checked >= 4


def test_schemas_are_valid_draft_2020_12_for_a_real_validator(fixture_repos, tmp_path):
    python = shutil.which("python3")
    probe = python and subprocess.run([python, "-c", "import jsonschema, yaml"], capture_output=True).returncode == 0
    if not probe:
        pytest.skip("no python3 with jsonschema and pyyaml on PATH")
    CliRunner().invoke(schema_command, ["--out", str(tmp_path / "s")])
    write(tmp_path / "repo", fixture_repos.files("legal"))
    script = (
        "import json, sys, yaml, pathlib, jsonschema\n"
        "s = {p.name.split('.')[0]: json.loads(p.read_text()) for p in pathlib.Path(sys.argv[1]).iterdir()}\n"
        "for k in s: jsonschema.Draft202012Validator.check_schema(s[k])\n"
        "r = pathlib.Path(sys.argv[2]) / '.kiket'\n"
        "pairs = [('workflow', r / 'workflows' / 'contract.yaml'), ('board', r / 'boards' / 'legal.yaml'),\n"
        "         ('project', r / 'project.yaml'), ('issue_types', r / 'issue_types.yaml'),\n"
        "         ('automation', r / 'automations' / 'gdpr_automations.yaml')]\n"
        "for k, p in pairs: jsonschema.validate(yaml.safe_load(p.read_text()), s[k], cls=jsonschema.Draft202012Validator)\n"
        "print('ok')\n")
    done = subprocess.run([python, "-c", script, str(tmp_path / "s"), str(tmp_path / "repo")], capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr

"""Property tests: whatever bytes a repository holds, `load_revision` reports registered diagnostics and never raises.

Inputs: random text and bytes, random nested data dumped as YAML into every file kind, and random mutations
of the real fixture repositories (delete a key, change a scalar's type, duplicate a list item, swap a list
and a mapping, truncate a file). A caught crash shows up as `internal_error`, which also fails the property.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.kiket.codes import CODES
from app.kiket.diagnostics import SEVERITIES, Diagnostic
from app.kiket.loader import LoadResult, load_revision
from tests.support.fixture_repos import REVISIONS

# Derandomized so a CI run is reproducible; `KIKET_FUZZ=20` multiplies the examples and explores new ones.
_SCALE = int(os.environ.get("KIKET_FUZZ", "0"))
FAST = settings(max_examples=60 * max(_SCALE, 1), deadline=None, derandomize=not _SCALE,
                suppress_health_check=[HealthCheck.too_slow])
MUTATIONS = settings(max_examples=40 * max(_SCALE, 1), deadline=None, derandomize=not _SCALE,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

FILE_KINDS = (
    ".kiket/project.yaml",
    ".kiket/team.yaml",
    ".kiket/issue_types.yaml",
    ".kiket/workflows/wf.yaml",
    ".kiket/workflows/wf/automation_recipes/recipe.yaml",
    ".kiket/automations/auto.yaml",
    ".kiket/boards/board.yaml",
    ".kiket/agents/agent.yaml",
    ".kiket/intakes/intake.yaml",
    ".kiket/unknown.yaml",
)
WORKFLOW = b"""workflow:
  id: wf
states:
  open: {type: initial}
  done: {type: final}
transitions:
  - {from: open, to: done}
"""
# Keys the normalizers look for, so random data reaches deep code paths instead of only `unknown_key`.
VOCABULARY = (
    "workflow", "id", "key", "name", "label", "states", "transitions", "from", "to", "type", "kind", "category",
    "sla", "warning", "breach", "default", "condition", "conditions", "field", "operator", "value", "checklist",
    "items", "approval", "required", "approvers", "role", "on_enter", "action", "actions", "recipients", "roles",
    "message", "columns", "states", "wip_limit", "filters", "workflows", "issue_types", "trigger", "event", "cron",
    "recipe", "automations", "board", "swimlanes", "card_template", "badges", "project", "team", "members",
    "permissions", "seed_data", "issues", "fields", "options", "model_version", "all", "any", "not", "when",
    "business_hours", "timezone", "child_types", "agent", "intake_form", "settings", "default_issue_type",
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20), st.sampled_from(["open", "done", "wf", "48h", "0h", "-1h", "PT4H", "80%", "*", "issue.created",
                                           "${issue.title}", "{{ issue.id | upper }}", "priority == 'high'", "1.0"]),
)
KEYS = st.one_of(st.sampled_from(VOCABULARY), st.text(min_size=1, max_size=12))
NESTED = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=25,
)


def assert_well_formed(result: LoadResult) -> None:
    """The loader's contract on any input: registered codes, known severities, a consistent verdict."""
    assert isinstance(result, LoadResult)
    for diagnostic in result.diagnostics:
        assert isinstance(diagnostic, Diagnostic)
        assert diagnostic.code in CODES, diagnostic
        assert diagnostic.severity in SEVERITIES, diagnostic
        assert diagnostic.code != "internal_error", diagnostic.format()
    assert result.ok == (result.revision is not None)
    assert sum(result.counts.values()) == len(result.diagnostics)
    result.summary()


@FAST
@given(path=st.sampled_from(FILE_KINDS), text=st.text(max_size=300))
def test_random_text_in_any_file(path: str, text: str) -> None:
    assert_well_formed(load_revision({".kiket/workflows/base.yaml": WORKFLOW.replace(b"id: wf", b"id: base"),
                                      path: text.encode("utf-8", "surrogatepass")}))


@FAST
@given(path=st.sampled_from(FILE_KINDS), data=st.binary(max_size=300))
def test_random_bytes_in_any_file(path: str, data: bytes) -> None:
    assert_well_formed(load_revision({path: data}))


@FAST
@given(path=st.sampled_from(FILE_KINDS), data=st.dictionaries(KEYS, NESTED, max_size=6))
def test_random_nested_data_in_any_file(path: str, data: dict) -> None:
    files = {".kiket/workflows/wf.yaml": WORKFLOW, path: yaml.safe_dump(data).encode()}
    assert_well_formed(load_revision(files))


@FAST
@given(root=st.sampled_from(["workflow", "states", "transitions", "columns", "automations", "recipe", "issue_types",
                             "project", "team"]),
       data=NESTED, path=st.sampled_from(FILE_KINDS))
def test_random_data_under_a_known_root(root: str, data: Any, path: str) -> None:
    files = {".kiket/workflows/wf.yaml": WORKFLOW, path: yaml.safe_dump({root: data}).encode()}
    assert_well_formed(load_revision(files))


@FAST
@given(yaml_text=st.lists(st.sampled_from([
    "a: &x [1, 2]", "b: *x", "c: !!str 1", "d: !!binary aGVsbG8=", "e: 2001-12-14", "<<: {f: 1}", "g: {h: [i, {j: k}]}",
    "- item", "? complex", "  : value", "---", "...", "%YAML 1.1", "k: |\n  block", "l: >-\n  folded", "m: 'quoted'",
    "n: \"esc\\u00e9\"", "o: ~", "p: 0x1F", "q: .inf", "\tr: tab", "s: [", "t: }", "states:", "  open: {type: initial}",
]), max_size=12))
def test_yaml_fragments_in_a_workflow(yaml_text: list[str]) -> None:
    assert_well_formed(load_revision({".kiket/workflows/wf.yaml": "\n".join(yaml_text).encode()}))


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a node inside parsed YAML (mapping keys and list indices)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, prefix + (key,)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, prefix + (index,)))
    return found


def _get(node: Any, path: tuple) -> Any:
    for token in path:
        node = node[token]
    return node


def _mutate(data: Any, path: tuple, operation: str) -> Any:
    """Apply one mutation at `path`; returns the new root."""
    if not path:
        return {"list": [data]} if operation == "swap" else data
    parent, last = _get(data, path[:-1]), path[-1]
    value = parent[last]
    if operation == "delete":
        del parent[last]
    elif operation == "retype":
        replacements = {str: 42, int: "forty-two", float: [1.5], bool: "yes", type(None): {"x": 1}}
        parent[last] = replacements.get(type(value), "text")
    elif operation == "duplicate":
        if isinstance(parent, list):
            parent.insert(last, yaml.safe_load(yaml.safe_dump(value)))
        else:
            parent[f"{last}_copy"] = value
            parent[last] = [value, value]
    elif operation == "swap":
        if isinstance(value, dict):
            parent[last] = [{k: v} for k, v in value.items()]
        elif isinstance(value, list):
            parent[last] = {str(i): v for i, v in enumerate(value)}
        else:
            parent[last] = [value]
    elif operation == "null":
        parent[last] = None
    return data


@pytest.fixture(scope="module")
def fixture_files(fixture_repos) -> list[dict[str, bytes]]:
    """The five fixture revisions as `{path: bytes}` (skipped when the bundles are absent)."""
    return [fixture_repos.files(name, branch) for name, branch in REVISIONS]


@MUTATIONS
@given(data=st.data(), operation=st.sampled_from(["delete", "retype", "duplicate", "swap", "null"]))
def test_mutated_fixture_never_crashes(fixture_files, data, operation: str) -> None:
    files = dict(data.draw(st.sampled_from(fixture_files), label="revision"))
    path = data.draw(st.sampled_from(sorted(p for p in files if p.endswith((".yaml", ".yml")))), label="file")
    try:
        parsed = yaml.safe_load(files[path])
    except yaml.YAMLError:
        assume(False)
    nodes = _paths(parsed)
    where = data.draw(st.sampled_from(nodes), label="node")
    mutated = _mutate(parsed, where, operation)
    files[path] = yaml.safe_dump(mutated, sort_keys=False, allow_unicode=True).encode()
    assert_well_formed(load_revision(files))


@MUTATIONS
@given(data=st.data())
def test_truncated_fixture_file_never_crashes(fixture_files, data) -> None:
    files = dict(data.draw(st.sampled_from(fixture_files), label="revision"))
    path = data.draw(st.sampled_from(sorted(files)), label="file")
    cut = data.draw(st.integers(0, len(files[path])), label="cut")
    files[path] = files[path][:cut]
    assert_well_formed(load_revision(files))


@MUTATIONS
@given(data=st.data())
def test_fixture_files_moved_between_kinds_never_crash(fixture_files, data) -> None:
    """A workflow saved as a board, a board as a recipe...: every normalizer meets foreign shapes."""
    files = dict(data.draw(st.sampled_from(fixture_files), label="revision"))
    source = data.draw(st.sampled_from(sorted(p for p in files if p.endswith((".yaml", ".yml")))), label="file")
    target = data.draw(st.sampled_from(FILE_KINDS), label="as")
    files[target.replace("/wf.yaml", "/moved.yaml")] = files[source]
    assert_well_formed(load_revision(files))

"""Malformed-repository corpus: one small repository per rule of the spec, each with its exact diagnostics.

Each directory of `corpus/` holds a `.kiket/` tree (and sometimes other files) plus `expect.yaml`:
`{description, spec, options?, expect: [{code, severity, file, line}], xfail?}`; `options` are
keyword arguments of `load_revision` (lists become frozensets), for facts only the app knows. Every expected diagnostic must be
reported with that code, severity, file and line; no fatal may appear unless one is expected. Cases that
need bytes a text file cannot hold well (encodings, sizes, file counts) are built in `GENERATED` below.
A case whose `xfail` names an engine bug is expected to fail until the engine is fixed (strict).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.kiket.codes import CODES
from app.kiket.diagnostics import Diagnostic
from app.kiket.loader import load_revision

CORPUS = Path(__file__).resolve().parent / "corpus"

WORKFLOW = b"""workflow:
  id: wf
  name: WF
states:
  open:
    type: initial
  done:
    type: final
transitions:
  - from: open
    to: done
"""
W = ".kiket/workflows/wf.yaml"


def _padded_workflow(size: int) -> bytes:
    """A valid workflow followed by comment lines, `size` bytes in total."""
    line = b"# " + b"x" * 77 + b"\n"
    body = WORKFLOW + line * ((size - len(WORKFLOW)) // len(line) + 1)
    return body[:size]


def _many_boards(count: int) -> dict[str, bytes]:
    board = b"workflow: wf\ncolumns:\n  - {key: a, states: [open, done]}\n"
    return {f".kiket/boards/b{index:04}.yaml": b"id: b%04d\n" % index + board for index in range(count)}


def _expect(code: str, file: str | None, line: int | None, severity: str | None = None) -> dict:
    return {"code": code, "severity": severity or CODES[code][0], "file": file, "line": line}


# name -> (files, expected diagnostics, xfail reason or None)
GENERATED: dict[str, tuple[dict[str, bytes], list[dict], str | None]] = {
    "non_utf8_latin1": (
        {W: WORKFLOW.replace(b"name: WF", b"name: Caf\xe9")},
        [_expect("yaml_encoding", W, 3)],
        None,
    ),
    "non_utf8_utf16": (
        {W: WORKFLOW.decode().encode("utf-16")},
        [_expect("yaml_encoding", W, 1)],
        None,
    ),
    "nul_bytes": (
        {W: WORKFLOW + b"extra: \x00\x01\n"},
        [_expect("yaml_encoding", W, 12)],
        None,
    ),
    "utf8_bom": (
        {W: b"\xef\xbb\xbf" + WORKFLOW},
        [_expect("yaml_bom", W, 1)],
        None,
    ),
    "bom_then_latin1": (
        {W: b"\xef\xbb\xbf" + WORKFLOW.replace(b"name: WF", b"name: \xff")},
        [_expect("yaml_bom", W, 1), _expect("yaml_encoding", W, 3)],
        None,
    ),
    "oversized_workflow": (
        {W: _padded_workflow(512 * 1024 + 1)},
        [_expect("file_too_large", W, 1)],
        None,
    ),
    "workflow_at_size_limit": (
        {W: _padded_workflow(512 * 1024), ".kiket/x.txt": b"x"},
        [_expect("non_yaml_file", ".kiket/x.txt", 1)],
        None,
    ),
    "oversized_non_yaml": (
        {W: WORKFLOW, ".kiket/logo.png": b"\x89PNG" + b"\0" * (512 * 1024)},
        [_expect("file_too_large", ".kiket/logo.png", 1)],
        None,
    ),
    "oversized_preserved": (
        {W: WORKFLOW, ".kiket/agents/big.yaml": b"a: 1\n" + b"#" * (512 * 1024)},
        [_expect("file_too_large", ".kiket/agents/big.yaml", 1)],
        None,
    ),
    "tree_over_8_mib": (
        {W: WORKFLOW, **{f".kiket/dashboards/d{i:02}.yaml": b"a: 1\n" + b"#" * (500 * 1024) for i in range(17)}},
        [_expect("tree_too_large", ".kiket", 1)],
        None,
    ),
    "too_many_files": (
        {W: WORKFLOW, **_many_boards(1000)},
        [_expect("too_many_files", ".kiket", 1)],
        None,
    ),
    "exactly_1000_files": (
        {W: WORKFLOW, **_many_boards(998), ".kiket/x.txt": b"x"},
        [_expect("non_yaml_file", ".kiket/x.txt", 1)],
        None,
    ),
    "files_outside_config_dir_do_not_count": (
        {W: WORKFLOW, ".kiket/x.txt": b"x", **{f"src/f{i}.py": b"" for i in range(1200)}},
        [_expect("non_yaml_file", ".kiket/x.txt", 1)],
        None,
    ),
}


def _read_case(root: Path) -> dict[str, bytes]:
    """Every file of a case directory except expect.yaml, as the worker would hand them over."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "expect.yaml"
    }


# Links and submodules never reach the loader as bytes: the tree reader lists them in `skipped`.
SKIPPED: dict[str, tuple[list[tuple[str, str]], list[dict]]] = {
    "symlink_skipped": ([(".kiket/workflows/linked.yaml", "symlink")],
                        [_expect("symlink_skipped", ".kiket/workflows/linked.yaml", 1)]),
    "submodule_skipped": ([(".kiket/shared", "submodule")], [_expect("submodule_skipped", ".kiket/shared", 1)]),
}


def _stored_cases() -> list:
    params = []
    for root in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        spec = yaml.safe_load((root / "expect.yaml").read_text(encoding="utf-8"))
        marks = [pytest.mark.xfail(strict=True, reason=spec["xfail"])] if spec.get("xfail") else []
        options = {key: frozenset(value) if isinstance(value, list) else value
                   for key, value in (spec.get("options") or {}).items()}
        params.append(pytest.param(_read_case(root), spec["expect"], options, id=root.name, marks=marks))
    return params


def _generated_cases() -> list:
    return [
        pytest.param(files, expect, id=name,
                     marks=[pytest.mark.xfail(strict=True, reason=reason)] if reason else [])
        for name, (files, expect, reason) in GENERATED.items()
    ]


def _describe(diagnostics: tuple[Diagnostic, ...]) -> str:
    return "\n".join(f"  {d.severity} {d.code} {d.file}:{d.line} {d.message}" for d in diagnostics)


def _check(files: dict[str, bytes], expect: list[dict], skipped: list[tuple[str, str]] = (), **options) -> None:
    result = load_revision(files, skipped=skipped, **options)
    got = {(d.code, d.severity, d.file, d.line) for d in result.diagnostics}
    missing = [e for e in expect if (e["code"], e["severity"], e["file"], e["line"]) not in got]
    assert not missing, f"missing {missing}; reported:\n{_describe(result.diagnostics)}"
    expected_fatal = {e["code"] for e in expect if e["severity"] == "fatal"}
    unexpected = [d for d in result.diagnostics if d.severity == "fatal" and d.code not in expected_fatal]
    assert not unexpected, f"unexpected fatal:\n{_describe(tuple(unexpected))}"
    assert result.ok == (not expected_fatal)
    assert (result.revision is None) == bool(expected_fatal)


def test_corpus_is_large_and_uses_registered_codes() -> None:
    stored = [yaml.safe_load((p / "expect.yaml").read_text(encoding="utf-8")) for p in CORPUS.iterdir() if p.is_dir()]
    assert len(stored) + len(GENERATED) + len(SKIPPED) >= 70
    for spec in stored:
        assert spec["expect"], spec
        for entry in spec["expect"]:
            assert entry["code"] in CODES, entry
            assert entry["severity"] in ("fatal", "error", "warning", "info"), entry


@pytest.mark.parametrize(("files", "expect", "options"), _stored_cases())
def test_stored_case(files: dict[str, bytes], expect: list[dict], options: dict) -> None:
    _check(files, expect, **options)


@pytest.mark.parametrize(("files", "expect"), _generated_cases())
def test_generated_case(files: dict[str, bytes], expect: list[dict]) -> None:
    _check(files, expect)


@pytest.mark.parametrize(("skipped", "expect"), list(SKIPPED.values()), ids=list(SKIPPED))
def test_skipped_tree_entry(skipped: list[tuple[str, str]], expect: list[dict]) -> None:
    _check({W: WORKFLOW}, expect, skipped)

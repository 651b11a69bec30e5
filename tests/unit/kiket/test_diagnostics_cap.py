"""A run lists at most MAX_DIAGNOSTICS diagnostics, the most severe first, then a count per omitted code."""

from __future__ import annotations

import re

from app.kiket.diagnostics import MAX_DIAGNOSTICS
from app.kiket.loader import load_revision

WORKFLOW = b"workflow: {id: wf}\nstates:\n  open: {type: initial}\n  done: {type: final}\n" \
           b"transitions:\n  - {from: open, to: done}\n"


def _noisy_repository(boards: int) -> dict[str, bytes]:
    files = {".kiket/workflows/wf.yaml": WORKFLOW}
    for index in range(boards):  # two unknown keys each: 2 warnings per board
        files[f".kiket/boards/b{index:03}.yaml"] = (b"id: b%03d\nworkflow: wf\ncolour: red\nsize: 3\n"
                                                   b"columns:\n  - {key: a, states: [open, done]}\n" % index)
    files[".kiket/boards/zz.yaml"] = b"id: zz\nworkflow: nope\ncolumns:\n  - {key: a, states: [open]}\n"
    files[".kiket/workflows/zz.yaml"] = b"workflow: {id: zz}\nstates: {}\n"
    return files


def test_a_noisy_run_keeps_the_most_severe_and_counts_the_rest():
    result = load_revision(_noisy_repository(300), include_bundled=False)
    listed = [d for d in result.diagnostics if d.code != "diagnostics_truncated"]
    summaries = [d for d in result.diagnostics if d.code == "diagnostics_truncated"]
    assert len(listed) == MAX_DIAGNOSTICS
    # the fatal of the last file and the error of the last board survive 600 earlier warnings
    assert any(d.severity == "fatal" and d.file == ".kiket/workflows/zz.yaml" for d in listed)
    assert any(d.severity == "error" and d.file == ".kiket/boards/zz.yaml" for d in listed)
    assert not result.ok
    counted = {re.match(r"(\d+) more (\w+) (\w+) ", d.message).group(2, 3): int(d.message.split()[0])
               for d in summaries}
    assert counted[("unknown_key", "warning")] == 600 - sum(d.code == "unknown_key" for d in listed)
    assert {severity for _, severity in counted} == {"warning", "info"}
    assert all((d.file, d.line) == (".kiket", 1) for d in summaries)
    # listed ones stay in compiler order
    positions = [(d.file, d.line, d.column) for d in listed]
    assert positions == sorted(positions)


def test_a_run_under_the_limit_is_untouched():
    result = load_revision(_noisy_repository(10), include_bundled=False)
    assert not any(d.code == "diagnostics_truncated" for d in result.diagnostics)
    assert sum(d.code == "unknown_key" for d in result.diagnostics) == 20


def test_a_push_of_ten_thousand_files_reports_a_bounded_list():
    """Every file past the tree limit is skipped with a fatal: 9,000 of them used to make a 4.9 MB row."""
    import json

    skipped = [(f".kiket/boards/b{index:05}.yaml", "too_large") for index in range(9000)]
    result = load_revision({".kiket/workflows/wf.yaml": WORKFLOW}, skipped=skipped)
    summaries = [d for d in result.diagnostics if d.code == "diagnostics_truncated"]
    assert len(result.diagnostics) == MAX_DIAGNOSTICS + len(summaries)
    assert [d.message.split(" ", 1)[0] for d in summaries if "file_too_large" in d.message] == [
        str(9000 - MAX_DIAGNOSTICS)]
    assert len(json.dumps([d.to_dict() for d in result.diagnostics])) < 100_000

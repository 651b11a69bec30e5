"""The blob-id file cache: a load through a warm cache gives exactly what a cold load gives, and re-reads only changes."""

from __future__ import annotations

import gc
import subprocess

import pytest

from app.kiket.filecache import FileCache, blob_id
from app.kiket.gcpause import collection_paused
from app.kiket.loader import load_revision
from bench.generate_repo import generate
from tests.support.fixture_repos import REVISIONS
from tests.unit.kiket.test_corpus import GENERATED, _stored_cases


def _outcome(result) -> tuple:
    revision = result.revision
    return (
        [d.to_dict() for d in result.diagnostics],
        result.summary(),
        None if revision is None else {key: wf.version for key, wf in revision.workflows.items()},
        None if revision is None else revision,
    )


def _cold_and_warm(files: dict[str, bytes], **options) -> tuple[tuple, tuple, FileCache]:
    cache = FileCache()
    with cache.active():
        first = _outcome(load_revision(files, **options))
    with cache.active():
        warm = _outcome(load_revision(files, **options))
    return _outcome(load_revision(files, **options)), (first, warm), cache


def test_blob_id_is_gits(tmp_path):
    data = b"workflow: {id: wf}\n"
    (tmp_path / "f").write_bytes(data)
    expected = subprocess.run(["git", "hash-object", str(tmp_path / "f")], capture_output=True, text=True, check=True)
    assert blob_id(data) == expected.stdout.strip()


@pytest.mark.parametrize(("files", "expect", "options"), _stored_cases() + [
    pytest.param(files, expect, {}, id=name) for name, (files, expect, _) in GENERATED.items()])
def test_the_malformed_corpus_loads_the_same_through_the_cache(files, expect, options):
    cold, (first, warm), _ = _cold_and_warm(files, **options)
    assert first == cold and warm == cold


@pytest.mark.parametrize(("name", "branch"), REVISIONS)
def test_fixtures_load_the_same_through_the_cache(fixture_repos, name, branch):
    cold, (first, warm), cache = _cold_and_warm(fixture_repos.files(name, branch))
    assert first == cold and warm == cold
    assert cache.hits


def test_a_changed_file_is_parsed_again_and_the_others_are_not():
    files = generate()
    cache = FileCache()
    with cache.active():
        load_revision(files)
    path = ".kiket/workflows/flow007.yaml"
    changed = {**files, path: files[path].replace(b"name: Flow 7\n", b"name: Flow seven\n")}
    misses = cache.misses
    with cache.active():
        result = load_revision(changed)
    assert result.revision.workflows["flow007"].name == "Flow seven"
    assert cache.misses - misses == 2  # its parse and its normalization
    assert _outcome(result) == _outcome(load_revision(changed))


def test_results_of_one_load_cannot_change_the_next():
    files = generate()
    cache = FileCache()
    with cache.active():
        first = load_revision(files)
    first.revision.boards.clear()
    with cache.active():
        again = load_revision(files)
    assert len(again.revision.boards) == 200


def test_the_cache_is_bounded_by_entries_and_by_bytes():
    cache = FileCache(max_entries=3)
    for key in range(5):
        cache.put(key, key)
    assert len(cache) == 3 and cache.get(0) is None and cache.get(4) == 4
    cache = FileCache(max_bytes=100)
    cache.put("a", 1, 40)
    cache.put("b", 2, 40)
    cache.get("a")  # used: "b" is now the oldest
    cache.put("c", 3, 40)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    cache.put("c", 4, 100)
    assert (len(cache), cache.get("c")) == (1, 4)


def test_collection_is_paused_during_a_load_and_resumes_after():
    seen = []

    @collection_paused
    def load():
        seen.append(gc.isenabled())

        @collection_paused
        def nested():
            seen.append(gc.isenabled())

        nested()
        seen.append(gc.isenabled())

    assert gc.isenabled()
    load()
    assert seen == [False, False, False] and gc.isenabled()
    gc.disable()
    try:
        load()
        assert not gc.isenabled()  # a caller that had turned it off keeps it off
    finally:
        gc.enable()


# Edits applied one after the other, each loaded through the same cache: each changes what resolving another,
# unchanged file reads (the states a board shows, the roles a transition names, names that resolve references).
_EDITS = [
    (".kiket/workflows/flow007.yaml", b"transitions:\n", b"  s20:\n    type: active\ntransitions:\n"),
    (".kiket/workflows/flow008.yaml", b"    name: Advance 1\n", b"    name: Advance 1\n    roles: [auditor]\n"),
    (".kiket/project.yaml", b"  default_workflow: flow000\n", b"  default_workflow: flow000\n  team: {roles: [auditor]}\n"),
    (".kiket/issue_types.yaml", b"label: Type 7,", b"label: Flow 3,"),
    (".kiket/boards/board010.yaml", b"workflow: flow010\n", b"workflow: FLOW010\n"),
    (".kiket/workflows/flow011.yaml", b"{action: add_label, label: moved}",
     b"{action: create_issue, title: Follow-up, workflow: flow909}"),
    (".kiket/workflows/flow009.yaml", b"  id: flow009\n", b"  id: flow909\n"),
]


def test_resolution_reused_through_the_cache_follows_every_change():
    wanted = ("project", "issue_types", "auto00", "recipe00", *(f"{kind}{n:03}" for kind in ("flow", "board")
                                                               for n in range(13)))
    files = {path: data for path, data in generate().items() if any(name in path for name in wanted)}
    cache = FileCache()
    with cache.active():
        load_revision(files)
    for path, old, new in _EDITS:
        assert old in files[path]
        files = {**files, path: files[path].replace(old, new, 1)}
        with cache.active():
            warm = _outcome(load_revision(files))
        assert warm == _outcome(load_revision(files)), path

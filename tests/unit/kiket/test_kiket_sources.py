"""Reading config trees from directories and from git's object store, safely."""

from __future__ import annotations

import os
import subprocess

import pytest

from app.kiket import load_revision
from app.services.sync.config_sources import (
    STREAM_BLOBS, ConfigSourceError, read_directory, read_directory_tree, read_git_tree, read_git_tree_files,
    validate_ref,
)


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@x"})


@pytest.fixture()
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / ".kiket" / "workflows").mkdir(parents=True)
    (root / ".kiket" / "workflows" / "a.yaml").write_text("states: {a: {type: initial}}\n")
    (root / "analytics" / "dbt").mkdir(parents=True)
    (root / "analytics" / "dbt" / "x.yml").write_text("version: 2\n")
    (root / "src.py").write_text("print(1)\n")
    os.symlink("/etc/passwd", root / ".kiket" / "leak.yaml")
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    return root


def test_git_tree_reads_config_and_dbt_and_skips_symlinks(repo):
    tree = read_git_tree_files(repo, "main")
    assert set(tree.files) == {".kiket/workflows/a.yaml", "analytics/dbt/x.yml"}
    assert tree.skipped == [(".kiket/leak.yaml", "symlink")]
    assert read_git_tree(repo, "main")[".kiket/workflows/a.yaml"].startswith(b"states")
    result = load_revision(tree.files, skipped=tree.skipped, include_bundled=False)
    assert any(d.code == "symlink_skipped" and d.file == ".kiket/leak.yaml" for d in result.diagnostics)


def test_directory_reader_skips_symlinks_and_accepts_the_config_dir(repo):
    tree = read_directory_tree(repo)
    assert set(tree.files) == {".kiket/workflows/a.yaml", "analytics/dbt/x.yml"}
    assert tree.skipped == [(".kiket/leak.yaml", "symlink")]
    assert set(read_directory(repo / ".kiket")) == set(tree.files)


@pytest.mark.parametrize("ref", ["-h", "--output=/tmp/x", "main..other", "a b", "", "x.lock", "HEAD@{-1}:x"])
def test_dangerous_refs_are_refused(ref):
    with pytest.raises(ConfigSourceError):
        validate_ref(ref)


def test_unknown_ref_and_missing_directory_raise_source_errors(repo, tmp_path):
    with pytest.raises(ConfigSourceError):
        read_git_tree(repo, "nope")
    with pytest.raises(ConfigSourceError):
        read_directory(tmp_path / "missing")


@pytest.mark.parametrize("others", [0, STREAM_BLOBS + 4])  # blobs read in one stream, or sized first
def test_oversized_blobs_are_not_read_and_reject_the_revision(repo, others):
    for index in range(others):
        (repo / ".kiket" / "boards" / f"b{index}.yaml").parent.mkdir(exist_ok=True)
        (repo / ".kiket" / "boards" / f"b{index}.yaml").write_bytes(b"id: b%d\n" % index)
    (repo / ".kiket" / "big.yaml").write_bytes(b"a: " + b"x" * (600 * 1024) + b"\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "big")
    tree = read_git_tree_files(repo, "main")
    assert ".kiket/big.yaml" not in tree.files and (".kiket/big.yaml", "too_large") in tree.skipped
    result = load_revision(tree.files, skipped=tree.skipped, include_bundled=False)
    assert not result.ok and any(d.code == "file_too_large" for d in result.diagnostics)

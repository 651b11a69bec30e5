"""Canonical copies of configuration revisions on disk: STORAGE_DIR/workflow_sources/<repository>/<commit>/.

A copy is written into a temporary directory beside its final place, fsynced, then renamed: a directory
named after a commit is therefore always complete. A crash leaves at most a `.tmp-…` directory, which
the next sync of the repository removes. Copies are read-only once written.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping

from flask import current_app

from app.kiket.loader import is_config_file

log = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"
# Test-only: when set to a file path, the writer creates that file and waits (to be killed) before renaming.
PAUSE_ENV = "KIKET_TEST_PAUSE_BEFORE_RENAME"
# Test-only: `<phase>:<file path>` makes a sync that enters the phase (fetching, validating, writing, loading)
# create that file and wait to be killed (the fault suite kills the worker in each phase).
PHASE_PAUSE_ENV = "KIKET_TEST_PAUSE_IN_PHASE"
PAUSE_MAX_S = 120
_SHA = re.compile(r"^[0-9a-f]{40}$")


class StorageError(Exception):
    """A canonical copy is missing or cannot be written."""


def sources_root(repository_id: int) -> Path:
    """Directory holding every canonical copy of one repository."""
    return Path(current_app.config["STORAGE_DIR"]) / "workflow_sources" / str(int(repository_id))


def revision_dir(repository_id: int, commit_sha: str) -> Path:
    """Directory of the canonical copy of one commit."""
    if not _SHA.match(commit_sha):
        raise StorageError(f"{commit_sha!r} is not a full commit id")
    return sources_root(repository_id) / commit_sha


def has_revision(repository_id: int, commit_sha: str) -> bool:
    """True when the canonical copy of this commit exists (and is therefore complete)."""
    return revision_dir(repository_id, commit_sha).is_dir()


def _safe_parts(path: str) -> tuple[str, ...]:
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"refusing to store {path!r}: not a plain relative path")
    return parts


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def config_files(files: Mapping[str, bytes], config_path: str) -> dict[str, bytes]:
    """The files a canonical copy holds, and the source view shows: those the loader reads or preserves."""
    return {path: data for path, data in files.items() if is_config_file(path, config_path)}


def write_revision(repository_id: int, commit_sha: str, files: Mapping[str, bytes]) -> Path:
    """Write the canonical copy of a commit atomically and return its directory; an existing copy is reused."""
    target = revision_dir(repository_id, commit_sha)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{commit_sha[:12]}-", dir=target.parent))
    try:
        directories = {temp}
        for path, data in files.items():
            destination = temp.joinpath(*_safe_parts(path))
            destination.parent.mkdir(parents=True, exist_ok=True)
            directories.add(destination.parent)
            with open(destination, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(destination, 0o444)
        for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
            _fsync_dir(directory)
        _pause_for_tests()
        try:
            os.rename(temp, target)
        except OSError:
            # Another writer renamed the same commit into place first; its copy is as good as ours.
            if not target.is_dir():
                raise
            _remove(temp)
        _fsync_dir(target.parent)
    except BaseException:
        _remove(temp)
        raise
    return target


def pause_in_phase(phase: str) -> None:
    """Wait here to be killed when KIKET_TEST_PAUSE_IN_PHASE names this phase (tests only)."""
    setting = os.environ.get(PHASE_PAUSE_ENV, "")
    if setting.partition(":")[0] == phase:
        _pause_for_tests(setting.partition(":")[2], f"in the {phase} phase")


def _pause_for_tests(flag: str | None = None, where: str = "before the rename") -> None:
    flag = flag or os.environ.get(PAUSE_ENV)
    if not flag:
        return
    Path(flag).touch()
    log.warning("a test pause is set: waiting %s until this process is killed", where)
    deadline = time.monotonic() + PAUSE_MAX_S
    while time.monotonic() < deadline:
        time.sleep(0.1)
    # Nobody killed us: give up rather than linger as an orphan after a failed test.
    raise RuntimeError(f"test pause {where}: not killed within {PAUSE_MAX_S} s")


def _remove(path: Path) -> None:
    # Files are read-only (0444) but their directories are not, so unlinking them works.
    if path.exists():
        shutil.rmtree(path)


def remove_stray_temp_dirs(repository_id: int) -> int:
    """Delete temporary directories a crashed writer left behind; returns how many were removed."""
    root = sources_root(repository_id)
    if not root.is_dir():
        return 0
    removed = 0
    for entry in root.iterdir():
        if entry.name.startswith(TEMP_PREFIX) and entry.is_dir():
            _remove(entry)
            removed += 1
    if removed:
        log.info("removed %d unfinished canonical copies of repository %s", removed, repository_id)
    return removed


def read_revision(repository_id: int, commit_sha: str) -> dict[str, bytes]:
    """The files of a canonical copy as `{repo-relative path: bytes}`."""
    base = revision_dir(repository_id, commit_sha)
    if not base.is_dir():
        raise StorageError(f"the canonical copy of {commit_sha[:10]} is missing (pruned or never written)")
    files: dict[str, bytes] = {}
    for dirpath, _, filenames in os.walk(base):
        for name in filenames:
            full = Path(dirpath) / name
            files[full.relative_to(base).as_posix()] = full.read_bytes()
    return files


def read_file(repository_id: int, commit_sha: str, path: str) -> bytes:
    """One file of a canonical copy (for the source view); `StorageError` when absent."""
    full = revision_dir(repository_id, commit_sha).joinpath(*_safe_parts(path))
    if not full.is_file():
        raise StorageError(f"{path} is not part of the canonical copy of {commit_sha[:10]}")
    return full.read_bytes()


def remove_revision(repository_id: int, commit_sha: str) -> None:
    """Delete one canonical copy (of a pending revision whose sync died)."""
    _remove(revision_dir(repository_id, commit_sha))


def prune(repository_id: int, keep: Iterable[str]) -> list[str]:
    """Delete the canonical copies of this repository whose commit is not in `keep`; returns the pruned commits."""
    root = sources_root(repository_id)
    keep = set(keep)
    pruned = []
    if not root.is_dir():
        return pruned
    for entry in root.iterdir():
        if _SHA.match(entry.name) and entry.name not in keep:
            _remove(entry)
            pruned.append(entry.name)
    return pruned

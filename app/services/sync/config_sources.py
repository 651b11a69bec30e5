"""Read `.kiket/` trees from a directory or from a git object store (no work tree) as path -> bytes."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from app.kiket.filecache import FileCache

GIT_TIMEOUT_S = 30
# Refs are branch names, tags or commit ids: no options, no revision-range syntax.
_SAFE_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./@+-]{0,254}$")
MAX_BLOB_BYTES = 8 * 1024 * 1024
MAX_FILE_BYTES = 512 * 1024
MAX_TREE_BYTES = 8 * 1024 * 1024
MAX_TREE_FILES = 1000
# Blobs a read lacks that are fetched in one streaming git process: at most this many times MAX_FILE_BYTES read.
STREAM_BLOBS = 16


class ConfigSourceError(Exception):
    """The source cannot be read at all (missing directory, unknown ref, git failure)."""


@dataclass
class TreeFiles:
    """Files of a tree plus the paths that were skipped (symlinks, submodules) so the loader can warn."""

    files: dict[str, bytes] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _wanted(path: str, config_path: str) -> bool:
    return path.startswith(config_path.rstrip("/") + "/") or path.startswith("analytics/dbt/")


def read_directory(path: str | os.PathLike, config_path: str = ".kiket") -> dict[str, bytes]:
    """Read a directory holding `.kiket/` (or the `.kiket/` directory itself) into repo-relative paths."""
    return read_directory_tree(path, config_path).files


def read_directory_tree(path: str | os.PathLike, config_path: str = ".kiket") -> TreeFiles:
    """Like `read_directory`, also listing skipped symlinks."""
    root = Path(path)
    if not root.is_dir():
        raise ConfigSourceError(f"{root} is not a directory")
    if root.name == config_path and not (root / config_path).is_dir():
        root = root.parent
    result = TreeFiles()
    for base in (root / config_path, root / "analytics" / "dbt"):
        if not base.is_dir() or base.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            for name in sorted(dirnames):
                full = Path(dirpath) / name
                if full.is_symlink():
                    result.skipped.append((full.relative_to(root).as_posix(), "symlink"))
            for name in sorted(filenames):
                full = Path(dirpath) / name
                rel = full.relative_to(root).as_posix()
                if full.is_symlink():
                    result.skipped.append((rel, "symlink"))
                    continue
                if not full.is_file():
                    continue
                with open(full, "rb") as handle:
                    result.files[rel] = handle.read(MAX_BLOB_BYTES + 1)
    return result


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_GLOBAL": os.devnull,
                "LC_ALL": "C"})
    return env


def _git(repo: str | os.PathLike, *args: str, input_bytes: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], input=input_bytes, capture_output=True,
                              timeout=GIT_TIMEOUT_S, env=_git_env(), check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigSourceError(f"git {args[0]} failed: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigSourceError(f"git {args[0]} failed: {message[-1] if message else done.returncode}")
    return done.stdout


def validate_ref(ref: str) -> str:
    """Refuse refs that could be read as options or revision expressions."""
    if not isinstance(ref, str) or not _SAFE_REF.match(ref) or ".." in ref or ref.endswith((".lock", "/", ".")):
        raise ConfigSourceError(f"invalid git ref {ref!r}")
    return ref


def resolve_commit(repo_path: str | os.PathLike, ref: str) -> str:
    """Full commit SHA of a branch, tag or commit id."""
    ref = validate_ref(ref)
    out = _git(repo_path, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    return out.decode().strip()


def read_git_tree(repo_path: str | os.PathLike, ref: str, config_path: str = ".kiket") -> dict[str, bytes]:
    """Read `.kiket/` and `analytics/dbt/` of a branch or commit straight from git's object store."""
    return read_git_tree_files(repo_path, ref, config_path).files


def read_git_tree_files(repo_path: str | os.PathLike, ref: str, config_path: str = ".kiket",
                        blobs: FileCache | None = None) -> TreeFiles:
    """Like `read_git_tree`, also returning skipped symlinks (120000) and submodules (160000).

    With `blobs`, a cache of blob bytes by object id, only blobs not in it are read from git (and added).
    Sizes come from the cache, or with the few blobs a re-sync lacks (`_stream_blobs`), or from
    `cat-file --batch-check`: `ls-tree -l` opens every blob of the tree for its size, which cost a re-sync
    of a 1,000-file tree most of its reading time.
    """
    ref = validate_ref(ref)
    listing = _git(repo_path, "ls-tree", "-r", "-z", "--full-tree", "--end-of-options", f"{ref}^{{commit}}", "--",
                   config_path, "analytics/dbt")
    result = TreeFiles()
    entries: list[tuple[str, str]] = []
    known: dict[str, bytes] = {}
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        mode, kind, sha = meta.decode().split()
        path = raw_path.decode("utf-8", "replace")
        if not _wanted(path, config_path):
            continue
        if mode == "120000":
            result.skipped.append((path, "symlink"))
        elif mode == "160000" or kind == "commit":
            result.skipped.append((path, "submodule"))
        elif kind == "blob":
            entries.append((path, sha))
            data = blobs.get(sha) if blobs is not None else None
            if data is not None:
                known[sha] = data
    sizes = {sha: len(data) for sha, data in known.items()}
    unknown = list(dict.fromkeys(sha for _, sha in entries if sha not in known))
    if 0 < len(unknown) <= STREAM_BLOBS:
        for sha, data in _stream_blobs(repo_path, unknown).items():
            if isinstance(data, int):
                sizes[sha] = data
            else:
                known[sha] = data
                sizes[sha] = len(data)
                if blobs is not None:
                    blobs.put(sha, data, len(data))
        unknown = []
    if unknown:
        out = _git(repo_path, "cat-file", "--batch-check", input_bytes="".join(f"{sha}\n" for sha in unknown).encode())
        for line in out.decode().splitlines():
            sha, kind, size = line.split()
            if kind != "blob":
                raise ConfigSourceError(f"git cat-file returned {line}")
            sizes[sha] = int(size)
    wanted: list[tuple[str, str]] = []
    total = 0
    for path, sha in entries:
        size = sizes[sha]
        # Oversized content is never pulled into memory; the loader reports it as fatal.
        if size > MAX_FILE_BYTES or total + size > MAX_TREE_BYTES or len(wanted) >= MAX_TREE_FILES:
            result.skipped.append((path, "too_large"))
            continue
        total += size
        wanted.append((path, sha))
    missing = list(dict.fromkeys(sha for _, sha in wanted if sha not in known))
    if missing:
        out = _git(repo_path, "cat-file", "--batch", input_bytes="".join(f"{sha}\n" for sha in missing).encode())
        offset = 0
        for sha in missing:
            header_end = out.index(b"\n", offset)
            header = out[offset:header_end].decode().split()
            if len(header) != 3 or header[1] != "blob":
                raise ConfigSourceError(f"git cat-file returned {' '.join(header)} for {sha}")
            size = int(header[2])
            start = header_end + 1
            known[sha] = out[start:start + size]
            offset = start + size + 1
            if blobs is not None:
                blobs.put(sha, known[sha], size)
    for path, sha in wanted:
        result.files[path] = known[sha]
    return result


def _stream_blobs(repo_path: str | os.PathLike, shas: list[str]) -> dict[str, bytes | int]:
    """Blobs by object id from one `git cat-file --batch`; one over the per-file limit is skipped unread, as its
    size. For the few blobs a re-sync lacks: one git process instead of one for the sizes and one for the bytes."""
    try:
        proc = subprocess.Popen(["git", "-C", str(repo_path), "cat-file", "--batch"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_git_env())
    except OSError as exc:
        raise ConfigSourceError(f"git cat-file failed: {exc}") from exc
    timer = threading.Timer(GIT_TIMEOUT_S, proc.kill)
    timer.start()
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("".join(f"{sha}\n" for sha in shas).encode())  # a few ids: within the pipe's buffer
        proc.stdin.close()
        found: dict[str, bytes | int] = {}
        for sha in shas:
            header = proc.stdout.readline().decode().split()
            if len(header) != 3 or header[1] != "blob":
                raise ConfigSourceError(f"git cat-file returned {' '.join(header) or 'nothing'} for {sha}")
            size = int(header[2])
            if size > MAX_FILE_BYTES:
                remaining = size + 1
                while remaining:
                    chunk = proc.stdout.read(min(remaining, 1 << 16))
                    if not chunk:
                        raise ConfigSourceError("git cat-file stopped early")
                    remaining -= len(chunk)
                found[sha] = size
            else:
                data = proc.stdout.read(size + 1)
                if len(data) != size + 1:
                    raise ConfigSourceError("git cat-file stopped early")
                found[sha] = data[:size]
        if proc.wait() != 0:
            raise ConfigSourceError(f"git cat-file failed: exit code {proc.returncode}")
        return found
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

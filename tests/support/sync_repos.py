"""Helpers for sync tests: bare remotes cloned from the fixture bundles, commits pushed to them, a burst worker."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.fixture_repos import bundle_path

GIT_ENV = {"GIT_AUTHOR_NAME": "Tess Ter", "GIT_AUTHOR_EMAIL": "tess@example.com", "GIT_COMMITTER_NAME": "Tess Ter",
           "GIT_COMMITTER_EMAIL": "tess@example.com", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **GIT_ENV}, check=True)
    return done.stdout.strip()


def bare_remote(base: Path, name: str) -> Path:
    """A bare clone of a fixture bundle (skips the test when the fixtures are absent), usable as `file://` remote."""
    target = base / f"{name}.git"
    if not target.exists():
        git("clone", "--quiet", "--bare", "--", str(bundle_path(name)), str(target))
    return target


def new_remote(base: Path, name: str, files: dict[str, str]) -> Path:
    """A bare repository under `base` whose `main` holds `files` (path → text) in one commit."""
    work = base / f"work-{name}"
    git("init", "--quiet", "--initial-branch=main", str(work))
    for path, text in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text, encoding="utf-8")
    git("add", "--", *files, cwd=work)
    git("commit", "--quiet", "-m", f"The {name} configuration", cwd=work)
    target = base / f"{name}.git"
    git("clone", "--quiet", "--bare", "--", str(work), str(target))
    return target


def file_url(path: Path) -> str:
    return "file://" + str(path)


def push_change(remote: Path, branch: str, path: str, content: str, message: str) -> str:
    """Commit `content` at `path` on `branch` in a scratch clone and push it to `remote`; returns the new commit."""
    work = remote.parent / f"work-{remote.stem}-{os.getpid()}"
    if not work.exists():
        git("clone", "--quiet", "--", str(remote), str(work))
    git("fetch", "--quiet", "origin", cwd=work)
    git("checkout", "--quiet", "-B", branch, f"origin/{branch}", cwd=work)
    target = work / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content, encoding="utf-8")
    git("add", "--", path, cwd=work)
    git("commit", "--quiet", "-m", message, cwd=work)
    git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def show(remote: Path, ref: str, path: str) -> str:
    return git("--git-dir", str(remote), "show", f"{ref}:{path}")


def run_worker(app) -> None:
    """Work off the `configuration` queue in this process, like a worker would."""
    from rq import SimpleWorker

    from app.queue import get_queue

    SimpleWorker([get_queue("configuration")], connection=app.extensions["redis"]).work(burst=True)

"""The four fixture config repositories (git bundles in ../shared/fixtures), cloned once per test session."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# KIKET_FIXTURES_DIR points elsewhere when the bundles do not sit in ../shared/fixtures next to the repository.
FIXTURES_DIR = Path(os.environ.get("KIKET_FIXTURES_DIR") or REPO_ROOT / ".." / "shared" / "fixtures").resolve()
# One reason for every test skipped for want of a bundle, so the run's summary counts them on one line.
MISSING_FIXTURES = (f"the fixture repositories (kiket-definitions-*.bundle) are not all in {FIXTURES_DIR}: "
                    "put them in ../shared/fixtures next to the repository, or set KIKET_FIXTURES_DIR")
NAMES = ("engineering", "scrum", "kanban", "legal")
# (fixture, branch) pairs every loader test runs over.
REVISIONS = (("engineering", "main"), ("engineering", "develop"), ("scrum", "main"), ("kanban", "main"),
             ("legal", "main"))


def bundle_path(name: str) -> Path:
    """Path of a fixture bundle; skips the calling test when the fixtures are absent."""
    path = FIXTURES_DIR / f"kiket-definitions-{name}.bundle"
    if not path.is_file():
        pytest.skip(MISSING_FIXTURES)
    return path


class FixtureRepos:
    """Bare clones of the bundles in a temporary directory, read with the production git reader."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._clones: dict[str, Path] = {}
        self._files: dict[tuple[str, str], dict[str, bytes]] = {}

    def clone(self, name: str) -> Path:
        """A bare clone of one fixture (made on first use)."""
        if name not in self._clones:
            target = self.base / f"{name}.git"
            subprocess.run(["git", "clone", "--quiet", "--bare", "--", str(bundle_path(name)), str(target)],
                           check=True, capture_output=True, timeout=60)
            self._clones[name] = target
        return self._clones[name]

    def files(self, name: str, branch: str = "main") -> dict[str, bytes]:
        """`.kiket/` (and `analytics/dbt/`) of a branch, as the sync job reads it."""
        key = (name, branch)
        if key not in self._files:
            from app.services.sync.config_sources import read_git_tree

            self._files[key] = read_git_tree(self.clone(name), branch)
        return dict(self._files[key])

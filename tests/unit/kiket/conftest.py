from __future__ import annotations

import pytest

from app.kiket.loader import LoadResult, load_revision
from tests.support.fixture_repos import FixtureRepos


@pytest.fixture(scope="session")
def fixture_repos(tmp_path_factory) -> FixtureRepos:
    return FixtureRepos(tmp_path_factory.mktemp("fixture-repos"))


@pytest.fixture(scope="session")
def loaded(fixture_repos):
    """Load a fixture revision once per session: loaded("engineering", "develop")."""
    cache: dict[tuple[str, str], LoadResult] = {}

    def load(name: str, branch: str = "main") -> LoadResult:
        if (name, branch) not in cache:
            cache[(name, branch)] = load_revision(fixture_repos.files(name, branch))
        return cache[(name, branch)]

    return load

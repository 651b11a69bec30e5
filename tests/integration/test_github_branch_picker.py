"""The branch picker: `git ls-remote` for plain remotes, github3.py against a stand-in of GitHub's API."""

from __future__ import annotations

import pytest

from tests.support.github_standin import github_standin
from tests.support.sync_repos import bare_remote, file_url


def test_branches_of_a_local_remote_come_from_ls_remote(app, make_user, tmp_path):
    from app.services import projects
    from app.services.sync import git, repositories

    remote = bare_remote(tmp_path, "engineering")
    assert git.list_branches(file_url(remote)) == ["develop", "main"]
    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, "ENG", "Engineering", "", "kanban")
    repository, _ = repositories.add_repository(project, file_url(remote), actor=owner)
    assert repositories.list_branches(repository.id, owner) == ["develop", "main"]


def test_branches_of_a_github_remote_with_a_token_come_from_the_api(app, make_user):
    from app.services import projects
    from app.services.sync import git, repositories

    with github_standin({"acme/eng-config": ["develop", "main", "release/1.0"]}, token="s3cret") as (base, seen):
        app.config["KIKET_GITHUB_API_URL"] = base
        names = git.list_branches("https://github.com/acme/eng-config.git", "s3cret")
        owner = make_user("owner@example.com", "owner")
        project = projects.create_project(owner, "ENG", "Engineering", "", "kanban")
        repository, _ = repositories.add_repository(project, "git@github.com:acme/eng-config.git", token="s3cret", actor=owner)
        stored = repositories.list_branches(repository.id, owner)
        with pytest.raises(git.GitError, match="no repository acme/other"):
            git.list_branches("https://github.com/acme/other", "s3cret")

    assert names == stored == ["develop", "main", "release/1.0"]
    assert {r["path"] for r in seen} >= {"/api/v3/repos/acme/eng-config", "/api/v3/repos/acme/eng-config/branches"}
    assert all(r["authorization"] == "token s3cret" for r in seen)
    assert (repository.github_owner, repository.github_name) == ("acme", "eng-config")
    assert "s3cret" not in (repository.token_encrypted or "") and repository.has_token


def test_github_api_refusal_is_a_clear_error(app):
    from app.services.sync import git

    with github_standin({"acme/eng-config": ["main"]}, token="right") as (base, _):
        app.config["KIKET_GITHUB_API_URL"] = base
        with pytest.raises(git.GitError, match="GitHub refused"):
            git.list_branches("https://github.com/acme/eng-config", "wrong")

"""Git is never handed user input it could read as an option or a transport."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.sync_repos import bare_remote, file_url

HOSTILE_URLS = [
    "-oProxyCommand=x",
    "--upload-pack=touch /tmp/pwned",
    "ext::sh -c touch% /tmp/pwned",
    "fd::17",
    "https://github.com/acme/x.git --upload-pack=x",
    "https://user:pass@github.com/acme/x.git",
    "ssh://-oProxyCommand=x/acme",
    "git@-oProxyCommand=x:acme/x",
    "http://example.com/acme/x.git",
    "/srv/git/x.git",
    "",
]


@pytest.fixture
def no_git(monkeypatch):
    """Fail the test if any git process starts."""
    started = []

    def refuse(args, *a, **kw):
        started.append(args)
        raise AssertionError(f"git ran: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)
    return started


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_hostile_remote_urls_are_refused_before_git_runs(app, no_git, url):
    from app.services.errors import Invalid
    from app.services.sync import git

    with pytest.raises(Invalid) as refused:
        git.list_branches(url)
    assert refused.value.problems["url"]
    assert no_git == []


def test_file_remotes_need_local_remotes_allowed(app, no_git):
    from app.services.errors import Invalid
    from app.services.sync import git

    app.config["KIKET_ALLOW_LOCAL_REMOTES"] = False
    with pytest.raises(Invalid, match="Local"):
        git.list_branches("file:///etc")
    assert no_git == []


@pytest.mark.parametrize("branch", ["--upload-pack=x", "-b", "main..dev", "refs/heads/main", "a b", "x@{1}", "",
                                    "bad:name", "trailing.lock"])
def test_hostile_branch_names_are_refused(app, make_user, tmp_path, branch):
    from app.services import projects
    from app.services.errors import Invalid
    from app.services.sync import git, repositories, runs

    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, "ENG", "Engineering", "", "kanban")
    repository, _ = repositories.add_repository(project, "https://example.com/acme/config.git", actor=owner)
    with pytest.raises(Invalid) as refused:
        runs.request_sync(repository.id, branch=branch)
    assert "branch" in refused.value.problems
    with pytest.raises(Invalid):
        git.validate_branch(branch)


@pytest.mark.parametrize("url", ["https://github.com/acme/config.git", "ssh://git@example.com:2222/acme/config.git",
                                 "git@github.com:acme/config.git", "file:///srv/git/config.git"])
def test_ordinary_remote_urls_are_accepted(app, url):
    from app.services.sync import git

    assert git.validate_remote_url(url, allow_local=True) == url


def test_git_runs_with_hooks_off_restricted_protocols_and_no_token_in_argv(app, make_user, tmp_path, monkeypatch):
    from app.services import projects
    from app.services.sync import git, repositories

    remote = bare_remote(tmp_path, "kanban")
    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, "ENG", "Engineering", "", "kanban")
    repository, _ = repositories.add_repository(project, file_url(remote), token="tok-123", actor=owner)
    calls = []
    real_run = subprocess.run

    def spy(args, *a, **kw):
        calls.append((list(args), kw.get("env") or {}, kw.get("timeout")))
        return real_run(args, *a, **kw)

    monkeypatch.setattr(subprocess, "run", spy)
    git.fetch(repository)
    fetch_args, env, timeout = next(c for c in calls if "fetch" in c[0])
    assert "core.hooksPath=/dev/null" in fetch_args and "protocol.ext.allow=never" in fetch_args
    after_fetch = fetch_args[fetch_args.index("fetch"):]
    assert after_fetch.index("--") < after_fetch.index(file_url(remote))
    assert env["GIT_ALLOW_PROTOCOL"] == "https:ssh:file" and env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    assert timeout and not any("tok-123" in arg for arg in fetch_args)
    assert "tok-123" not in env["GIT_CONFIG_VALUE_0"]  # base64 in the header, never plain
    assert git.resolve(repository) == real_run(["git", "--git-dir", str(remote), "rev-parse", "main"],
                                               capture_output=True, text=True).stdout.strip()


def test_tokens_round_trip_encrypted(app):
    from app.services.sync import git

    secret = git.encrypt_token("ghp_example")
    assert "ghp_example" not in secret and git.decrypt_token(secret) == "ghp_example"
    app.config["SECRET_KEY"] = "another key"
    assert git.decrypt_token(secret) is None


def test_local_remotes_are_for_organization_admins_and_the_command_line(app, client, make_user, login, tmp_path):
    from app.services import projects
    from app.services.errors import Invalid
    from app.services.gateway import credentials
    from app.services.sync import repositories
    from tests.conftest import post_form

    remote = file_url(bare_remote(tmp_path, "kanban"))
    make_user("owner@example.com", "owner")
    member = make_user("member@example.com", "member")
    project = projects.create_project(member, "ENG", "Engineering", "", "kanban")
    with pytest.raises(Invalid, match="organization owners and admins"):
        repositories.add_repository(project, remote, actor=member)

    login("member@example.com")
    page = post_form(client, "/repositories/", {"project": "ENG", "url": remote, "branch": "main",
                                                "config_path": ".kiket"})
    assert page.status_code == 422 and "organization owners and admins" in page.get_data(as_text=True)
    bearer = {"Authorization": f"Bearer {credentials.create_personal_token(member, 'ci', ['*'])[1]}"}
    api = client.post("/api/v1/projects/ENG/repositories", headers=bearer, json={"url": remote})
    assert api.status_code == 422 and "organization owners and admins" in api.get_data(as_text=True)
    assert repositories.repository_for_project(project.id) is None

    repository, _ = repositories.add_repository(project, "https://example.com/acme/config.git", actor=member)
    with pytest.raises(Invalid, match="organization owners and admins"):
        repositories.update_repository(repository.id, actor=member, url=remote)
    assert repositories.update_repository(repository.id, actor=None, url=remote).remote_url == remote
    admin = make_user("admin@example.com", "admin")
    ops = projects.create_project(admin, "OPS", "Operations", "", "kanban")
    assert repositories.add_repository(ops, remote, actor=admin)[0].remote_url == remote


def test_local_remotes_are_off_unless_set(tmp_path):
    from app.config import load_settings

    assert load_settings({}, str(tmp_path))["KIKET_ALLOW_LOCAL_REMOTES"] is False
    assert load_settings({"KIKET_ALLOW_LOCAL_REMOTES": "1"}, str(tmp_path))["KIKET_ALLOW_LOCAL_REMOTES"] is True

"""A local stand-in of GitHub's REST API (enough for github3.py to list a repository's branches)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from flask import Flask, abort, jsonify, request
from werkzeug.serving import make_server


def _user(base: str, login: str) -> dict:
    api = f"{base}/api/v3/users/{login}"
    return {
        "login": login, "id": 1, "node_id": "MDQ6VXNlcjE=", "avatar_url": f"{base}/avatars/{login}",
        "gravatar_id": "", "url": api, "html_url": f"{base}/{login}", "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}", "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs", "repos_url": f"{api}/repos", "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events", "type": "Organization", "site_admin": False,
    }


def repository_json(base: str, owner: str, name: str) -> dict:
    """A complete repository object, as GitHub's documentation shows it."""
    api = f"{base}/api/v3/repos/{owner}/{name}"
    templated = {
        "archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}", "blobs_url": "/git/blobs{/sha}",
        "branches_url": "/branches{/branch}", "collaborators_url": "/collaborators{/collaborator}",
        "comments_url": "/comments{/number}", "commits_url": "/commits{/sha}",
        "compare_url": "/compare/{base}...{head}", "contents_url": "/contents/{+path}",
        "git_commits_url": "/git/commits{/sha}", "git_refs_url": "/git/refs{/sha}", "git_tags_url": "/git/tags{/sha}",
        "issue_comment_url": "/issues/comments{/number}", "issue_events_url": "/issues/events{/number}",
        "issues_url": "/issues{/number}", "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}",
        "milestones_url": "/milestones{/number}", "notifications_url": "/notifications{?since,all,participating}",
        "pulls_url": "/pulls{/number}", "releases_url": "/releases{/id}", "statuses_url": "/statuses/{sha}",
        "trees_url": "/git/trees{/sha}",
    }
    plain = ["contributors", "deployments", "downloads", "events", "forks", "hooks", "languages", "merges",
             "stargazers", "subscribers", "subscription", "tags", "teams"]
    data = {key: api + suffix for key, suffix in templated.items()}
    data.update({f"{key}_url": f"{api}/{key}" for key in plain})
    data.update({
        "id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": name, "full_name": f"{owner}/{name}",
        "owner": _user(base, owner), "private": True, "html_url": f"{base}/{owner}/{name}",
        "description": "Kiket configuration", "fork": False, "url": api, "archived": False,
        "clone_url": f"{base}/{owner}/{name}.git", "git_url": f"git://example/{owner}/{name}.git",
        "ssh_url": f"git@example:{owner}/{name}.git", "svn_url": f"{base}/{owner}/{name}", "mirror_url": None,
        "homepage": None, "language": None, "forks_count": 0, "stargazers_count": 0, "watchers_count": 0,
        "size": 108, "default_branch": "main", "open_issues_count": 0, "network_count": 0, "subscribers_count": 1,
        "has_issues": True, "has_projects": False, "has_wiki": False, "has_pages": False, "has_downloads": False,
        "pushed_at": "2026-11-01T10:00:00Z", "created_at": "2026-01-01T10:00:00Z",
        "updated_at": "2026-11-01T10:00:00Z", "license": None,
    })
    return data


def branch_json(base: str, owner: str, name: str, branch: str, sha: str) -> dict:
    return {"name": branch, "protected": False,
            "commit": {"sha": sha, "url": f"{base}/api/v3/repos/{owner}/{name}/commits/{sha}"}}


@contextmanager
def github_standin(repositories: dict[str, list[str]], token: str) -> Iterator[tuple[str, list[dict]]]:
    """Serve `{"owner/name": [branches]}` on 127.0.0.1; yields (base URL, requests seen)."""
    app = Flask("github-standin")
    seen: list[dict] = []
    state = {}

    def check(owner: str, name: str) -> None:
        seen.append({"path": request.path, "authorization": request.headers.get("Authorization")})
        if request.headers.get("Authorization") != f"token {token}":
            abort(401)
        if f"{owner}/{name}" not in repositories:
            abort(404)

    @app.get("/api/v3/repos/<owner>/<name>")
    def repository(owner, name):
        check(owner, name)
        return jsonify(repository_json(state["base"], owner, name))

    @app.get("/api/v3/repos/<owner>/<name>/branches")
    def branches(owner, name):
        check(owner, name)
        return jsonify([branch_json(state["base"], owner, name, b, f"{i:040x}")
                        for i, b in enumerate(repositories[f"{owner}/{name}"], start=1)])

    server = make_server("127.0.0.1", 0, app, threaded=True)
    state["base"] = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["base"], seen
    finally:
        server.shutdown()
        thread.join(10)

"""`/api/v1`: credentials and scopes, RFC 7807 errors, Idempotency-Key, cursor pages, rate limits, OpenAPI."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.services import projects as project_service
from app.services.gateway import credentials
from tests.support.api import auth, project, token  # noqa: F401  (fixtures)


def scoped(user, *scopes: str) -> str:
    return credentials.create_personal_token(user, "scoped", list(scopes))[1]


def test_projects_need_a_credential(client):
    response = client.get("/api/v1/projects")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert (body["status"], body["title"]) == (401, "Unauthorized") and body["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(response.headers.keys())


def test_list_and_get_projects(client, token, project):
    response = client.get("/api/v1/projects", headers=auth(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert [p["key"] for p in body["items"]] == ["ENG"] and body["nextCursor"] is None
    assert body["items"][0]["role"] == "owner" and "createdAt" in body["items"][0]
    one = client.get("/api/v1/projects/ENG", headers=auth(token)).get_json()
    assert one["name"] == "Engineering"
    missing = client.get("/api/v1/projects/NOPE", headers=auth(token))
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"


def test_a_missing_scope_is_403_naming_it(client, owner, project):
    value = scoped(owner, "issues:read")
    response = client.get("/api/v1/projects", headers=auth(value))
    assert response.status_code == 403
    body = response.get_json()
    assert body["missingScope"] == "projects:read" and "projects:read" in body["detail"]


def test_revoked_and_forged_keys_are_401(client, owner, project):
    key, value = credentials.create_personal_token(owner, "short-lived", ["projects:read"])
    assert client.get("/api/v1/projects", headers=auth(value)).status_code == 200
    credentials.revoke_personal_token(owner, key.id)
    revoked = client.get("/api/v1/projects", headers=auth(value))
    assert revoked.status_code == 401 and "revoked" in revoked.get_json()["detail"]
    forged = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
    assert client.get("/api/v1/projects", headers=auth(forged)).status_code == 401
    assert client.get("/api/v1/projects", headers=auth("kiket_pat_bm9wZQ.sig.secret")).status_code == 401
    assert client.get("/api/v1/projects", headers=auth("not-a-key")).status_code == 401


def test_last_use_is_recorded(client, owner, project):
    key, value = credentials.create_personal_token(owner, "used", ["projects:read"])
    assert key.last_used_at is None
    client.get("/api/v1/projects", headers=auth(value))
    db.session.expire_all()
    assert db.session.get(type(key), key.id).last_used_at is not None


def test_a_credential_reaches_only_its_users_projects(client, owner, make_user, project):
    stranger = make_user("stranger@example.com", "member")
    value = scoped(stranger, "*")
    assert client.get("/api/v1/projects", headers=auth(value)).get_json()["items"] == []
    assert client.get("/api/v1/projects/ENG", headers=auth(value)).status_code == 404


def test_create_project_validation_is_422_with_field_errors(client, token):
    response = client.post("/api/v1/projects", headers=auth(token), json={"key": "x", "name": ""})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    errors = response.get_json()["errors"]
    assert set(errors) == {"key", "name"}
    unknown = client.post("/api/v1/projects", headers=auth(token), json={"key": "OPS", "name": "Ops", "colour": 1})
    assert unknown.status_code == 422 and "colour" in unknown.get_json()["errors"]


def test_bodies_must_be_json(client, token):
    assert client.post("/api/v1/projects", headers=auth(token), data="key=OPS").status_code == 415
    broken = client.post("/api/v1/projects", headers=auth(token), data="{", content_type="application/json")
    assert broken.status_code == 400 and broken.mimetype == "application/problem+json"
    big = client.post("/api/v1/projects", headers=auth(token), data="x" * (1024 * 1024 + 1),
                      content_type="application/json")
    assert big.status_code == 413 and big.mimetype == "application/problem+json"


def test_unknown_routes_and_methods_are_problems(client, token):
    missing = client.get("/api/v1/nothing-here", headers=auth(token))
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    wrong = client.put("/api/v1/projects", headers=auth(token), json={})
    assert wrong.status_code == 405 and wrong.mimetype == "application/problem+json"
    assert "GET" in wrong.headers["Allow"]


def test_idempotent_replay_and_key_reuse(client, token):
    headers = {**auth(token), "Idempotency-Key": "create-ops-1"}
    first = client.post("/api/v1/projects", headers=headers, json={"key": "OPS", "name": "Operations"})
    assert first.status_code == 201
    again = client.post("/api/v1/projects", headers=headers, json={"key": "OPS", "name": "Operations"})
    assert again.status_code == 201 and again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true" and again.headers["Location"] == first.headers["Location"]
    other = client.post("/api/v1/projects", headers=headers, json={"key": "OPS2", "name": "Other"})
    assert other.status_code == 422 and other.get_json()["type"].endswith("idempotency-key-reused")
    # Without the key, the same request is a new one (and fails: the key is taken).
    assert client.post("/api/v1/projects", headers=auth(token), json={"key": "OPS", "name": "Operations"}).status_code == 422


def test_errors_are_replayed_too(client, token):
    headers = {**auth(token), "Idempotency-Key": "bad-1"}
    first = client.post("/api/v1/projects", headers=headers, json={"key": "x", "name": "X"})
    again = client.post("/api/v1/projects", headers=headers, json={"key": "x", "name": "X"})
    assert first.status_code == again.status_code == 422 and first.get_data() == again.get_data()


def test_cursor_pages_stay_stable_under_inserts(client, owner, token):
    for n in range(5):
        project_service.create_project(owner, f"P{n}X", f"Project {n}", "", "kanban")
    first = client.get("/api/v1/projects?limit=2", headers=auth(token)).get_json()
    assert [p["key"] for p in first["items"]] == ["P4X", "P3X"]
    project_service.create_project(owner, "NEWX", "Inserted meanwhile", "", "kanban")
    second = client.get(f"/api/v1/projects?limit=2&cursor={first['nextCursor']}", headers=auth(token)).get_json()
    assert [p["key"] for p in second["items"]] == ["P2X", "P1X"]
    third = client.get(f"/api/v1/projects?limit=2&cursor={second['nextCursor']}", headers=auth(token)).get_json()
    assert [p["key"] for p in third["items"]] == ["P0X", "ENG"] and third["nextCursor"] is None


def test_cursors_are_signed_and_bound_to_their_filters(client, owner, token):
    for n in range(3):
        project_service.create_project(owner, f"Q{n}X", f"Project {n}", "", "kanban")
    page = client.get("/api/v1/projects?limit=1", headers=auth(token)).get_json()
    tampered = client.get(f"/api/v1/projects?cursor={page['nextCursor']}x", headers=auth(token))
    assert tampered.status_code == 400 and tampered.mimetype == "application/problem+json"
    other = client.get(f"/api/v1/projects?projectKey=Q0X&cursor={page['nextCursor']}", headers=auth(token))
    assert other.status_code == 400
    too_many = client.get("/api/v1/projects?limit=201", headers=auth(token))
    assert too_many.status_code == 422 and "limit" in too_many.get_json()["errors"]


def test_rate_limit_against_redis(app, client, owner, project):
    app.config["KIKET_API_RATE_LIMIT"] = 3
    value = scoped(owner, "projects:read")
    answers = [client.get("/api/v1/projects", headers=auth(value)) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    limited = answers[-1]
    assert limited.mimetype == "application/problem+json" and int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Limit"] == "3"
    # Another credential has its own window.
    assert client.get("/api/v1/projects", headers=auth(scoped(owner, "projects:read"))).status_code == 200


def test_openapi_document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/issues/{key}/transitions" in document["paths"]
    create = document["paths"]["/api/v1/issues"]["post"]
    assert create["x-kiket-scope"] == "issues:write"
    schema = document["components"]["schemas"]["IssueCreate"]
    assert {"projectKey", "title", "issueType", "fields"} <= set(schema["properties"])
    assert "422" in create["responses"] and "429" in create["responses"]
    page = client.get("/api/docs")
    assert page.status_code == 200 and b"Create an issue" in page.data


def test_issues_create_read_edit_and_conflict(client, owner, token):
    project_service.create_project(owner, "BUG", "Bugs", "", "bug_tracking")
    missing = client.post("/api/v1/issues", headers=auth(token), json={"projectKey": "BUG", "title": "Crash"})
    assert missing.status_code == 422 and "fields.severity" in missing.get_json()["errors"]
    created = client.post("/api/v1/issues", headers=auth(token), json={
        "projectKey": "BUG", "title": "Crash", "fields": {"severity": "high"}, "labels": ["ui"],
        "assignee": "owner@example.com", "priority": "high"})
    assert created.status_code == 201, created.get_data(as_text=True)
    issue = created.get_json()
    assert created.headers["Location"] == f"/api/v1/issues/{issue['key']}"
    assert (issue["issueType"], issue["fields"], issue["assignee"]["email"]) == ("bug", {"severity": "high"},
                                                                                  "owner@example.com")
    edited = client.patch(f"/api/v1/issues/{issue['key']}", headers=auth(token),
                          json={"title": "Crash on save", "lockVersion": issue["lockVersion"]})
    assert edited.status_code == 200 and edited.get_json()["lockVersion"] == issue["lockVersion"] + 1
    stale = client.patch(f"/api/v1/issues/{issue['key']}", headers=auth(token),
                         json={"title": "Lost update", "lockVersion": issue["lockVersion"]})
    assert stale.status_code == 409 and stale.mimetype == "application/problem+json"
    assert client.get(f"/api/v1/issues/{issue['key']}", headers=auth(token)).get_json()["title"] == "Crash on save"
    assert client.get("/api/v1/issues/BUG-999", headers=auth(token)).status_code == 404
    assert client.get("/api/v1/issues/nonsense", headers=auth(token)).status_code == 404


def test_transitions_with_every_gate_and_comments(client, token, project):
    issue = client.post("/api/v1/issues", headers=auth(token), json={"projectKey": "ENG", "title": "Ship it"}).get_json()
    key = issue["key"]
    available = client.get(f"/api/v1/issues/{key}/transitions", headers=auth(token)).get_json()
    assert available["state"] == "backlog"
    start = next(t for t in available["transitions"] if t["to"] == "in_progress")
    assert start["allowed"] and {g["gate"] for g in start["gates"]} >= {"permission", "required_fields"}
    moved = client.post(f"/api/v1/issues/{key}/transitions", headers=auth(token), json={"to": "in_progress"})
    assert moved.status_code == 200 and moved.get_json()["from"] == "backlog"
    assert (moved.get_json()["to"], moved.get_json()["lockVersion"]) == ("in_progress", issue["lockVersion"] + 1)
    # Review needs an assignee: simulated, then refused with every failing gate's reason.
    simulated = client.post(f"/api/v1/issues/{key}/transitions/simulate", headers=auth(token), json={"to": "review"})
    assert simulated.status_code == 200 and simulated.get_json()["allowed"] is False
    refused = client.post(f"/api/v1/issues/{key}/transitions", headers=auth(token), json={"to": "review"})
    assert refused.status_code == 422 and refused.get_json()["type"].endswith("transition-blocked")
    failing = [g for g in refused.get_json()["gates"] if not g["passed"]]
    assert failing and all(g["reasons"] for g in failing)
    assert client.post(f"/api/v1/issues/{key}/transitions", headers=auth(token), json={}).status_code == 422
    # An owner may force it, with a reason; the history keeps both.
    unreasoned = client.post(f"/api/v1/issues/{key}/transitions", headers=auth(token), json={"to": "review", "force": True})
    assert unreasoned.status_code == 422 and "reason" in unreasoned.get_json()["errors"]
    forced = client.post(f"/api/v1/issues/{key}/transitions", headers=auth(token),
                         json={"to": "review", "force": True, "reason": "Assignee is on leave; reviewing anyway"})
    assert forced.status_code == 200 and forced.get_json()["to"] == "review"
    from app.models import IssueTransition

    row = db.session.scalar(select(IssueTransition).where(IssueTransition.forced.is_(True)))
    assert row.force_reason == "Assignee is on leave; reviewing anyway" and row.skipped_gates
    comment = client.post(f"/api/v1/issues/{key}/comments", headers=auth(token), json={"body": "On it"})
    assert comment.status_code == 201 and comment.get_json()["author"]["email"] == "owner@example.com"
    listed = client.get(f"/api/v1/issues/{key}/comments", headers=auth(token)).get_json()
    assert [c["body"] for c in listed["items"]] == ["On it"]


def test_issue_pages_are_stable_while_issues_are_created(client, owner, token, project):
    from app.services.runtime import issues

    for n in range(7):
        issues.create_issue(project, owner, issue_type="task", title=f"Issue {n}")
    seen, cursor, inserted = [], None, 0
    while True:
        page = client.get("/api/v1/issues?projectKey=ENG&limit=3" + (f"&cursor={cursor}" if cursor else ""),
                          headers=auth(token)).get_json()
        seen += [i["title"] for i in page["items"]]
        # Someone creates an issue between every two pages.
        issues.create_issue(project, owner, issue_type="task", title=f"Late {inserted}")
        inserted += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [f"Issue {n}" for n in reversed(range(7))]
    filtered = client.get("/api/v1/issues?projectKey=ENG&q=late&limit=200", headers=auth(token)).get_json()
    assert len(filtered["items"]) == inserted
    assert client.get("/api/v1/issues?projectKey=ENG&colour=red", headers=auth(token)).status_code == 422


def test_sync_runs_and_configuration(client, token, project, tmp_path):
    from tests.support.sync_repos import bare_remote, file_url

    remote = bare_remote(tmp_path, "engineering")
    created = client.post("/api/v1/projects/ENG/repositories", headers=auth(token),
                          json={"url": file_url(remote), "branch": "main"})
    assert created.status_code == 201, created.get_data(as_text=True)
    repository = created.get_json()
    assert repository["webhookSecret"]
    assert "main" in client.get(f"/api/v1/repositories/{repository['id']}/branches", headers=auth(token)).get_json()["branches"]
    run = client.post(f"/api/v1/repositories/{repository['id']}/sync", headers=auth(token), json={})
    assert run.status_code == 202 and run.get_json()["status"] == "queued"
    from tests.support.sync_repos import run_worker

    run_worker(client.application)
    done = client.get(f"/api/v1/sync_runs/{run.get_json()['id']}", headers=auth(token)).get_json()
    assert done["status"] == "succeeded" and done["commit"]["sha"] and "fetch" in done["timings"]
    workflows = client.get("/api/v1/projects/ENG/workflows", headers=auth(token)).get_json()
    assert workflows["commitSha"] == done["commit"]["sha"]
    assert all(w["provenance"]["path"] for w in workflows["items"])
    boards = client.get("/api/v1/projects/ENG/boards", headers=auth(token)).get_json()["items"]
    assert boards and boards[0]["columns"]


def test_a_board_with_its_columns_and_cards(client, owner, token, project):
    from app.services.runtime import issues

    issues.create_issue(project, owner, issue_type="task", title="On the board")
    boards = client.get("/api/v1/projects/ENG/boards", headers=auth(token)).get_json()["items"]
    board = client.get(f"/api/v1/projects/ENG/boards/{boards[0]['id']}", headers=auth(token))
    assert board.status_code == 200, board.get_data(as_text=True)
    columns = board.get_json()["columns"]
    backlog = next(c for c in columns if "backlog" in c["states"])
    assert backlog["count"] == 1 and backlog["cards"][0]["title"] == "On the board"
    assert client.get("/api/v1/projects/ENG/boards/nope", headers=auth(token)).status_code == 404

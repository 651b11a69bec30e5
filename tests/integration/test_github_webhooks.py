"""`/hooks/github`: signatures, pings, pushes to the tracked branch, duplicates."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from app.services.sync.github_hooks import signature_for, verify_signature


def test_github_documented_test_vector_verifies():
    secret, body = "It's a Secret to Everybody", b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature_for(secret, body) == expected
    assert verify_signature(secret, body, expected)
    assert not verify_signature(secret, body, expected[:-1] + "0")
    assert not verify_signature(secret, body, "")
    assert not verify_signature(None, body, expected)


@pytest.fixture
def repository(app, make_user):
    from app.services import projects
    from app.services.sync import repositories

    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, "ENG", "Engineering", "", "kanban")
    repository, secret = repositories.add_repository(project, "https://github.com/Acme/eng-config.git", branch="main")
    return repository, secret


def deliver(client, secret, event, payload, *, delivery=None, signature=None, query=""):
    body = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": signature or signature_for(secret, body),
        "Content-Type": "application/json",
    }
    return client.post("/hooks/github" + query, data=body, headers=headers)


def push(ref="refs/heads/main", files=(".kiket/workflows/bug.yaml",), after="a" * 40):
    return {"ref": ref, "after": after, "repository": {"full_name": "acme/eng-config"},
            "commits": [{"id": "a" * 40, "added": [], "removed": [], "modified": list(files)}]}


def counts(app):
    from app.extensions import db
    from app.models import SyncRun
    from app.queue import get_queue

    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(SyncRun)), get_queue("configuration").count


def test_ping_is_answered(app, client, repository):
    _, secret = repository
    response = deliver(client, secret, "ping", {"zen": "Keep it logically awesome.",
                                                "repository": {"full_name": "acme/eng-config"}})
    assert response.status_code == 200
    assert response.get_json() == {"ok": True, "zen": "Keep it logically awesome."}


def test_push_to_the_tracked_branch_touching_the_config_requests_a_sync(app, client, repository):
    from app.extensions import db
    from app.models import GithubDelivery, SyncRun

    repo, secret = repository
    response = deliver(client, secret, "push", push(), delivery="d-1")
    assert response.status_code == 202
    run_id = response.get_json()["sync_run_ids"][0]
    assert counts(app) == (1, 1)
    run = db.session.get(SyncRun, run_id)
    assert run.trigger == "webhook" and run.repository_id == repo.id and run.status == "queued"
    logged = db.session.scalar(select(GithubDelivery).where(GithubDelivery.delivery_id == "d-1"))
    assert logged.outcome == "synced" and logged.sync_run_id == run_id


def deliveries(app) -> int:
    from app.extensions import db
    from app.models import GithubDelivery

    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(GithubDelivery))


def test_wrong_signature_gets_401_is_logged_but_not_stored(app, client, repository, caplog):
    _, secret = repository
    response = deliver(client, secret, "push", push(), signature=signature_for("not the secret", b"x"), delivery="d-2")
    assert response.status_code == 401
    assert counts(app) == (0, 0) and deliveries(app) == 0
    assert "github delivery refused: bad_signature" in caplog.text and "'d-2'" in caplog.text
    # The forged attempt did not burn the id: the real delivery still goes through.
    assert deliver(client, secret, "push", push(), delivery="d-2").status_code == 202


def test_unknown_repository_gets_401(app, client, repository):
    _, secret = repository
    payload = {**push(), "repository": {"full_name": "someone/else"}}
    assert deliver(client, secret, "push", payload).status_code == 401
    assert counts(app) == (0, 0) and deliveries(app) == 0


def test_a_flood_of_unsigned_requests_stores_nothing(app, client, repository):
    for n in range(40):
        response = client.post("/hooks/github", json=push(),
                               headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": f"flood-{n}"})
        assert response.status_code == 401
    assert deliveries(app) == 0 and counts(app) == (0, 0)


def test_the_hook_is_throttled_per_client_address(app, client, repository):
    _, secret = repository
    app.config["KIKET_GITHUB_HOOK_RATE_LIMIT"] = 5
    for _ in range(5):
        assert client.post("/hooks/github", json={}, headers={"X-GitHub-Event": "push"}).status_code == 400
    response = deliver(client, secret, "push", push())
    assert response.status_code == 429 and response.get_json()["ok"] is False
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert counts(app) == (0, 0) and deliveries(app) == 0
    # Another address is counted on its own.
    other = client.post("/hooks/github", data=json.dumps(push()).encode(), environ_base={"REMOTE_ADDR": "10.9.8.7"},
                        headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "other",
                                 "X-Hub-Signature-256": signature_for(secret, json.dumps(push()).encode())})
    assert other.status_code == 202


def _revision(repository, commit: str, status: str):
    from app.extensions import db
    from app.models import ConfigRevision

    revision = ConfigRevision(project_id=repository.project_id, repository_id=repository.id, commit_sha=commit,
                              branch="main", status=status, storage_path="/nonexistent")
    db.session.add(revision)
    db.session.flush()
    if status == "active":
        repository.active_revision_id = revision.id
    db.session.commit()
    return revision


def test_a_push_of_the_active_commit_starts_nothing(app, client, repository):
    repo, secret = repository
    _revision(repo, "b" * 40, "active")
    response = deliver(client, secret, "push", push(after="b" * 40))
    assert response.status_code == 200 and response.get_json()["ignored"] == "commit bbbbbbbbbbbb is already active"
    assert counts(app) == (0, 0)
    # Another commit is synced.
    assert deliver(client, secret, "push", push(after="c" * 40)).status_code == 202
    assert counts(app) == (1, 1)


@pytest.mark.parametrize("phase", ["validating", "loading", "pending revision"])
def test_a_replayed_push_of_a_commit_being_synced_starts_nothing(app, client, repository, phase):
    from app.extensions import db
    from app.models import SyncRun
    from app.queue import redis_connection
    from app.services.sync.runs import _followup_key

    repo, secret = repository
    if phase == "pending revision":
        _revision(repo, "d" * 40, "pending")
    else:
        db.session.add(SyncRun(repository_id=repo.id, branch="main", trigger="webhook", status=phase,
                               commit_sha="d" * 40, timings={}, diagnostics=[], summary={}))
        db.session.commit()
    before = counts(app)
    # GitHub's "redeliver", or an attacker replaying a captured body: a new delivery id, the same signed body.
    for delivery in ("replay-1", "replay-2"):
        response = deliver(client, secret, "push", push(after="d" * 40), delivery=delivery)
        assert response.status_code == 200
        assert response.get_json()["ignored"] == "commit dddddddddddd is already being synced"
    assert counts(app) == before
    assert redis_connection().get(_followup_key(repo.id)) is None


def test_a_replayed_push_joins_the_queued_run(app, client, repository):
    _, secret = repository
    first = deliver(client, secret, "push", push(after="e" * 40), delivery="first")
    again = deliver(client, secret, "push", push(after="e" * 40), delivery="again")
    assert first.status_code == again.status_code == 202
    assert first.get_json()["sync_run_ids"] == again.get_json()["sync_run_ids"]
    assert counts(app) == (1, 1)


def test_a_push_deleting_the_tracked_branch_starts_nothing(app, client, repository):
    _, secret = repository
    response = deliver(client, secret, "push", {**push(after="0" * 40), "deleted": True})
    assert response.status_code == 202 and "deletes" in response.get_json()["ignored"]
    assert counts(app) == (0, 0)


@pytest.mark.parametrize("payload", [
    push(ref="refs/heads/develop"),
    push(ref="refs/tags/v1"),
    push(files=("README.md", "src/app.py")),
])
def test_pushes_that_do_not_concern_the_config_enqueue_nothing(app, client, repository, payload):
    _, secret = repository
    response = deliver(client, secret, "push", payload)
    assert response.status_code == 202 and "ignored" in response.get_json()
    assert counts(app) == (0, 0)


def test_push_without_file_lists_is_assumed_to_touch_the_config(app, client, repository):
    _, secret = repository
    payload = {"ref": "refs/heads/main", "repository": {"full_name": "acme/eng-config"}, "commits": []}
    assert deliver(client, secret, "push", payload).status_code == 202
    assert counts(app) == (1, 1)


def test_duplicate_delivery_is_ignored(app, client, repository):
    _, secret = repository
    assert deliver(client, secret, "push", push(), delivery="same").status_code == 202
    response = deliver(client, secret, "push", push(), delivery="same")
    assert response.status_code == 200 and response.get_json()["ignored"] == "duplicate delivery"
    assert counts(app) == (1, 1)


def test_repository_can_be_named_in_the_query(app, client, repository):
    repo, secret = repository
    payload = {**push(), "repository": {"full_name": "mirror/elsewhere"}}
    assert deliver(client, secret, "push", payload, query=f"?repository={repo.id}").status_code == 202
    assert counts(app) == (1, 1)


def test_malformed_deliveries_are_refused(app, client, repository):
    assert client.post("/hooks/github", data=b"{}").status_code == 400
    response = client.post("/hooks/github", data=b"not json",
                           headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "x"})
    assert response.status_code == 400
    assert counts(app) == (0, 0)

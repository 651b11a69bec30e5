"""The Extension Gateway end to end: an example extension (written like the official SDKs, independent of our
code) installed from its manifest receives signed deliveries with a runtime token it verifies against the JWKS,
calls back, and replies with directives whose effects land on the issue as the extension's."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta

import jwt
import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import select
from werkzeug.serving import make_server

from app.extensions import db
from app.models import AuditEvent, Comment, Issue, IssueTransition, WebhookDelivery
from app.models.base import utcnow
from app.models.gateway import ExtensionInstallation, ExtensionLog
from app.services import projects as project_service
from app.services.runtime import events
from app.services.gateway import tokens
from jobs.webhooks import deliver_webhook
from tests.support.api import auth, project, run_webhooks, token  # noqa: F401  (fixtures)
from tests.support.example_extension import ExampleExtension

SECRET = "whsec_example-extension-secret"


@pytest.fixture
def live(app):
    """The app served over HTTP on this machine, where extensions call back and fetch the JWKS."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["KIKET_BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()


@pytest.fixture
def extension(live):
    ext = ExampleExtension(SECRET).start()
    yield ext
    ext.stop()


def install(client, token, extension, **extra) -> dict:
    response = client.post("/api/v1/extensions", headers=auth(token), json={
        "projectKey": "ENG", "manifest": extension.manifest(), "secret": SECRET,
        "secrets": {"VENDOR_TOKEN": "vendor-token-value"}, **extra})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def create_issue(client, token, title="Printer on fire") -> dict:
    response = client.post("/api/v1/issues", headers=auth(token), json={"projectKey": "ENG", "title": title})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_extension_receives_verifies_calls_back_and_its_directives_land(app, client, token, extension):
    installed = install(client, token, extension)
    installation = installed["installation"]
    assert installation["events"] == {"issue.created": "v1", "issue.transitioned": "v2"}
    assert set(installation["scopes"]) == {"issues:read", "comments:read", "comments:write", "issues:write",
                                           "issues:transition"}
    assert installed["apiKey"].startswith("kiket_ext_") and installed["webhookSecret"] == SECRET
    extension.replies["issue.created"] = {"actions": [
        {"kind": "add_comment", "body": "Triaged by the helper"},
        {"kind": "set_field", "field": "priority", "value": "high"},
        {"kind": "transition", "to": "in_progress"},
        {"kind": "notify", "title": "needs notifications:write"},
    ]}
    issue = create_issue(client, token)
    run_webhooks(app)

    (seen,) = extension.received
    assert extension.refused == []
    payload, claims = seen["payload"], seen["claims"]
    assert (seen["event"], seen["version"]) == ("issue.created", "v1")
    assert payload["type"] == payload["event"] == "issue.created" and payload["event_version"] == "v1"
    assert payload["id"].startswith("evt_") and payload["projectKey"] == "ENG"
    assert payload["issue"] == payload["data"]["issue"] and payload["issue"]["key"] == issue["key"]
    assert payload["api"] == {"base_url": app.config["KIKET_BASE_URL"]}
    assert payload["secrets"] == {"VENDOR_TOKEN": "vendor-token-value"}
    assert payload["authentication"]["token_type"] == "runtime"
    assert claims["iss"] == "kiket.dev" and claims["sub"] == f"installation:{installation['id']}"
    assert claims["pi_id"] == str(installation["id"]) and claims["ext_id"] == "com.example.triage"
    assert claims["src"] == "webhook" and claims["exp"] - claims["iat"] == 900
    assert sorted(claims["scopes"]) == sorted(installation["scopes"])
    headers = seen["headers"]
    assert headers["X-Kiket-Event"] == "issue.created" and headers["X-Kiket-Event-Version"] == "v1"
    assert headers["X-Kiket-Delivery"] and headers["Content-Type"] == "application/json"
    status, body = seen["rate_limit"]
    assert status == 200 and set(body["rate_limit"]) == {"limit", "remaining", "window_seconds", "reset_in"}
    assert all(isinstance(v, int) for v in body["rate_limit"].values())
    assert seen["log_status"] == 201

    row = db.session.scalar(select(Issue).where(Issue.key == issue["key"]))
    assert (row.priority, row.state) == ("high", "in_progress")
    bot = db.session.get(ExtensionInstallation, installation["id"]).bot_user
    comment = db.session.scalar(select(Comment).where(Comment.issue_id == row.id))
    assert comment.body == "Triaged by the helper" and comment.author_id == bot.id
    moved = db.session.scalar(select(IssueTransition).where(IssueTransition.issue_id == row.id,
                                                            IssueTransition.from_state.is_not(None)))
    assert (moved.actor_id, moved.actor_kind) == (bot.id, "extension")
    assert bot.display_name == "Triage helper (extension)"
    delivery = db.session.scalar(select(WebhookDelivery).where(WebhookDelivery.installation_id == installation["id"]))
    outcomes = [(d["kind"], d["status"]) for d in delivery.reply["directives"]]
    assert outcomes == [("add_comment", "applied"), ("set_field", "applied"), ("transition", "applied"),
                        ("notify", "refused")]
    assert "notifications:write" in delivery.reply["directives"][3]["detail"]
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.kind == "extension.replied")) is not None
    assert "vendor-token-value" not in delivery.request_body and "runtime_token" not in delivery.request_body
    logged = [r.message for r in db.session.scalars(select(ExtensionLog).order_by(ExtensionLog.id))]
    assert logged[0] == "handled issue.created" and logged[1].startswith("Reply:")
    # Its own changes are not sent back to it: only the v2 `issue.transitioned` it asked for would be, and that
    # one was caused by the extension itself.
    run_webhooks(app)
    assert len(extension.received) == 1


def test_a_tampered_or_expired_runtime_token_is_refused(app, client, token, extension, monkeypatch):
    installed = install(client, token, extension)
    installation = db.session.get(ExtensionInstallation, installed["installation"]["id"])
    good, _ = tokens.mint(installation)
    assert client.get("/api/v1/ext/rate_limit", headers={"X-Kiket-Runtime-Token": good}).status_code == 200
    head, body, signature = good.split(".")
    claims = json.loads(jwt.utils.base64url_decode(body))
    claims["scopes"] = ["*"]
    forged_body = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    tampered = client.get("/api/v1/ext/rate_limit", headers={"X-Kiket-Runtime-Token": f"{head}.{forged_body}.{signature}"})
    assert tampered.status_code == 401 and tampered.mimetype == "application/problem+json"
    # A token minted 16 minutes ago has expired.
    now = tokens.time.time()
    monkeypatch.setattr(tokens.time, "time", lambda: now - 16 * 60)
    old, _ = tokens.mint(installation)
    monkeypatch.undo()
    expired = client.get("/api/v1/ext/rate_limit", headers={"X-Kiket-Runtime-Token": old})
    assert expired.status_code == 401 and "expired" in expired.get_json()["detail"]
    # Signed by a key Kiket never published.
    from cryptography.hazmat.primitives.asymmetric import ec

    foreign = jwt.encode({**claims, "scopes": []}, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                         headers={"kid": jwt.get_unverified_header(good)["kid"]})
    assert client.get("/api/v1/ext/rate_limit", headers={"Authorization": f"Bearer {foreign}"}).status_code == 401
    # The extension refuses a delivery whose token was tampered with, even when the HMAC is right.
    import hashlib
    import hmac
    import time as clock

    payload = {"id": "evt_x", "authentication": {"runtime_token": f"{head}.{forged_body}.{signature}"},
               "api": {"base_url": app.config["KIKET_BASE_URL"]}}
    raw = json.dumps(payload).encode()
    stamp = str(int(clock.time()))
    status, _ = extension.handle("/v/v1/webhooks/issue.created", {
        "X-Kiket-Timestamp": stamp,
        "X-Kiket-Signature": "sha256=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + raw,
                                                  hashlib.sha256).hexdigest()}, raw)
    assert status == 401 and extension.refused[-1]["why"].startswith("runtime token refused")


def test_retries_follow_the_schedule_keep_the_event_id_and_redelivery_works(app, client, token, extension,
                                                                           monkeypatch):
    from app.services.webhooks import delivery as webhook_delivery

    installed = install(client, token, extension)
    extension.statuses = [500, 503]
    create_issue(client, token)
    events.drain()
    SimpleWorker([Queue("webhooks", connection=app.extensions["redis"])],
                 connection=app.extensions["redis"]).work(burst=True, max_jobs=1)
    delivery = db.session.scalar(select(WebhookDelivery).where(
        WebhookDelivery.installation_id == installed["installation"]["id"]))
    clock = [utcnow().replace(microsecond=0)]
    monkeypatch.setattr(webhook_delivery, "utcnow", lambda: clock[0])
    scheduled = []
    for interval in webhook_delivery.RETRY_INTERVALS[:2]:
        assert deliver_webhook(delivery.id) == "retrying"
        latest = webhook_delivery.attempts(delivery.id)[-1]
        assert latest.next_retry_at == clock[0] + timedelta(seconds=interval)
        scheduled.append(webhook_delivery.scheduled_retry(latest))
        clock[0] = latest.next_retry_at
    assert deliver_webhook(delivery.id) == "delivered"
    attempts = webhook_delivery.attempts(delivery.id)
    assert [(a.attempt, a.status) for a in attempts] == [(1, "retrying"), (2, "retrying"), (3, "delivered")]
    assert [s - a.next_retry_at for s, a in zip(scheduled, attempts)] == [timedelta(0), timedelta(0)]
    ids = {r["payload"]["id"] for r in extension.received}
    deliveries = {r["headers"]["X-Kiket-Delivery"] for r in extension.received}
    assert len(extension.received) == 3 and len(ids) == 1 and len(deliveries) == 3
    tokens_sent = {r["payload"]["authentication"]["runtime_token"] for r in extension.received}
    assert len(tokens_sent) == 3

    again = client.post(f"/api/v1/webhooks/deliveries/{attempts[-1].id}/redeliver", headers=auth(token))
    assert again.status_code == 202, again.get_data(as_text=True)
    assert again.get_json()["eventId"] == attempts[0].event_id
    monkeypatch.undo()
    run_webhooks(app)
    assert len(extension.received) == 4 and extension.received[-1]["payload"]["id"] in ids


def test_extension_callbacks_have_the_sdk_shapes(app, client, token, extension):
    installed = install(client, token, extension)
    installation = db.session.get(ExtensionInstallation, installed["installation"]["id"])
    runtime, _ = tokens.mint(installation)
    call = {"X-Kiket-Runtime-Token": runtime}
    assert client.post("/api/v1/extensions/logs", headers=call, json={"message": "hi", "metadata": {"a": 1}}).status_code == 201
    assert client.post("/api/v1/extensions/metrics", headers=call,
                       json={"name": "latency", "value": 12.5, "unit": "ms"}).status_code == 201
    denied = client.post("/api/v1/extensions/notifications", headers=call, json={"title": "t", "body": "b"})
    assert denied.status_code == 403 and denied.get_json()["missingScope"] == "notifications:write"
    base = "/api/v1/extensions/com.example.triage/secrets"
    listed = client.get(base, headers=call).get_json()
    assert isinstance(listed, list) and [s["key"] for s in listed] == ["VENDOR_TOKEN"]
    assert set(listed[0]) == {"key", "created_at", "updated_at"}
    assert client.post(base, headers=call, json={"secret": {"key": "OTHER", "value": "v2"}}).status_code == 201
    one = client.get(f"{base}/OTHER", headers=call).get_json()
    assert (one["key"], one["value"]) == ("OTHER", "v2") and "created_at" in one
    assert client.delete(f"{base}/OTHER", headers=call).status_code == 204
    assert client.get(f"{base}/OTHER", headers=call).status_code == 404
    assert client.get("/api/v1/extensions/com.other.ext/secrets", headers=call).status_code == 404
    assert client.post("/api/v1/ext/telemetry", headers=call, json={"event": "issue.created",
                                                                    "duration_ms": 3}).status_code == 202
    unsupported = client.get("/api/v1/ext/custom_data/widgets", headers=call)
    assert unsupported.status_code == 404 and "custom_data" in unsupported.get_json()["detail"]
    # A personal token is not an extension's credential.
    assert client.get("/api/v1/ext/rate_limit", headers=auth(token)).status_code == 403
    # The extension key works as a bearer token too; it reaches its own project only.
    key = {"Authorization": f"Bearer {installed['apiKey']}"}
    assert client.get("/api/v1/issues?projectKey=ENG", headers=key).status_code == 200
    project_service.create_project(db.session.get(type(installation.bot_user), installation.installed_by_id),
                                   "OPS", "Operations", "", "kanban")
    assert client.get("/api/v1/issues?projectKey=OPS", headers=key).status_code == 404
    assert client.get("/api/v1/projects/OPS", headers=key).get_json()["missingScope"] == "projects:read"


def test_oauth_client_credentials_and_expiry(app, client, token, extension, monkeypatch):
    installed = install(client, token, extension)
    form = {"grant_type": "client_credentials", "client_id": installed["clientId"],
            "client_secret": installed["clientSecret"], "scope": "issues:read"}
    response = client.post("/api/v1/oauth/token", data=form)
    assert response.status_code == 200, response.get_data(as_text=True)
    granted = response.get_json()
    assert (granted["token_type"], granted["expires_in"], granted["scope"]) == ("Bearer", 900, "issues:read")
    assert response.headers["Cache-Control"] == "no-store"
    bearer = {"Authorization": f"Bearer {granted['access_token']}"}
    assert client.get("/api/v1/issues?projectKey=ENG", headers=bearer).status_code == 200
    assert client.post("/api/v1/issues", headers=bearer, json={"projectKey": "ENG", "title": "x"}).status_code == 403
    wrong = client.post("/api/v1/oauth/token", data={**form, "client_secret": "nope"})
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_client"
    broad = client.post("/api/v1/oauth/token", data={**form, "scope": "webhooks:manage"})
    assert broad.status_code == 400 and broad.get_json()["error"] == "invalid_scope"
    now = tokens.time.time()
    monkeypatch.setattr(tokens.time, "time", lambda: now - 901)
    stale = client.post("/api/v1/oauth/token", data=form).get_json()["access_token"]
    monkeypatch.undo()
    assert client.get("/api/v1/issues", headers={"Authorization": f"Bearer {stale}"}).status_code == 401
    # Rotation: the old client secret stops working at once.
    rotated = client.post(f"/api/v1/extensions/{installed['installation']['id']}/rotate", headers=auth(token))
    assert rotated.status_code == 200
    assert client.post("/api/v1/oauth/token", data=form).status_code == 401
    assert client.get("/api/v1/issues", headers={"Authorization": f"Bearer {installed['apiKey']}"}).status_code == 401


def test_jwks_publishes_current_and_previous_keys(app, client, token, extension):
    installed = install(client, token, extension)
    installation = db.session.get(ExtensionInstallation, installed["installation"]["id"])
    first, _ = tokens.mint(installation)
    keys = client.get("/.well-known/jwks.json").get_json()["keys"]
    assert len(keys) == 1 and keys[0]["alg"] == "ES256" and keys[0]["crv"] == "P-256"
    tokens.rotate()
    keys = client.get("/.well-known/jwks.json").get_json()["keys"]
    assert len(keys) == 2 and keys[1]["kid"] == jwt.get_unverified_header(first)["kid"]
    call = {"X-Kiket-Runtime-Token": first}
    assert client.get("/api/v1/ext/rate_limit", headers=call).status_code == 200
    tokens.rotate()
    assert len(client.get("/.well-known/jwks.json").get_json()["keys"]) == 2
    assert client.get("/api/v1/ext/rate_limit", headers=call).status_code == 401


def test_removed_installations_lose_access(app, client, token, extension):
    installed = install(client, token, extension)
    installation = db.session.get(ExtensionInstallation, installed["installation"]["id"])
    runtime, _ = tokens.mint(installation)
    assert client.delete(f"/api/v1/extensions/{installation.id}", headers=auth(token)).status_code == 204
    assert client.get("/api/v1/ext/rate_limit", headers={"X-Kiket-Runtime-Token": runtime}).status_code == 401
    assert client.get("/api/v1/issues", headers={"Authorization": f"Bearer {installed['apiKey']}"}).status_code == 401


def test_manifest_problems_name_their_line(client, token, extension):
    response = client.post("/api/v1/extensions", headers=auth(token), json={
        "projectKey": "ENG", "manifest": "id: com.example.x\nevents: issue.created\n", "url": extension.url})
    assert response.status_code == 422
    assert "extension.yaml:2" in response.get_json()["errors"]["manifest"][0]


def test_a_due_date_from_a_reply_is_checked_like_the_issue_page(app, client, token, extension):
    install(client, token, extension)
    extension.replies["issue.created"] = {"actions": [
        {"kind": "set_field", "field": "dueDate", "value": "2027-02-30"},
        {"kind": "set_field", "field": "due_date", "value": "2027-03-01"},
    ]}
    issue = create_issue(client, token)
    run_webhooks(app)

    delivery = db.session.scalar(select(WebhookDelivery).where(WebhookDelivery.installation_id.is_not(None)))
    refused, applied = delivery.reply["directives"]
    assert refused["status"] == "failed" and "must be a date like 2026-01-31" in str(refused["detail"])
    assert applied["status"] == "applied", applied
    db.session.expire_all()
    row = db.session.scalar(select(Issue).where(Issue.key == issue["key"]))
    assert row.due_date == date(2027, 3, 1)

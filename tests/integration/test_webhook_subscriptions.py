"""Webhook subscriptions: the signed envelope through the one delivery service, deliveries, SSRF refusals."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket

import pytest

from app.extensions import db
from app.services.webhooks import delivery as webhook_delivery
from app.services.gateway import credentials
from app.services.runtime import issues
from tests.support.api import auth, project, run_webhooks, token  # noqa: F401  (fixtures)
from tests.support.receiver import receiver  # noqa: F401  (the fixture)

SECRET = "subscription-secret-0123456789"


def subscribe(client, token, url, events=("issue.created", "issue.transitioned"), **extra):
    return client.post("/api/v1/webhooks", headers=auth(token),
                       json={"url": url, "events": list(events), "projectKey": "ENG", **extra})


def test_envelope_signed_and_listed(app, client, token, receiver):
    app.config["KIKET_WEBHOOK_ALLOW_PRIVATE"] = True
    created = subscribe(client, token, receiver.url + "/hook", secret=SECRET)
    assert created.status_code == 201, created.get_data(as_text=True)
    subscription = created.get_json()
    assert "secret" not in subscription and subscription["events"] == ["issue.created", "issue.transitioned"]
    issue = client.post("/api/v1/issues", headers=auth(token), json={"projectKey": "ENG", "title": "Hello"}).get_json()
    moved = client.post(f"/api/v1/issues/{issue['key']}/transitions", headers=auth(token), json={"to": "in_progress"})
    assert moved.status_code == 200, moved.get_data(as_text=True)
    client.post(f"/api/v1/issues/{issue['key']}/comments", headers=auth(token), json={"body": "not subscribed"})
    run_webhooks(app)

    assert [r["path"] for r in receiver.requests] == ["/hook", "/hook"]
    bodies = [json.loads(r["body"]) for r in receiver.requests]
    assert [b["type"] for b in bodies] == ["issue.created", "issue.transitioned"]
    created_event = bodies[0]
    assert set(created_event) == {"id", "type", "createdAt", "organizationId", "projectKey", "data"}
    assert created_event["projectKey"] == "ENG" and created_event["data"]["issue"]["key"] == issue["key"]
    assert created_event["data"]["actor"]["email"] == "owner@example.com"
    assert bodies[1]["data"]["from"] == "backlog" and bodies[1]["data"]["to"] == "in_progress"
    headers = receiver.requests[0]["headers"]
    expected = hmac.new(SECRET.encode(), headers["X-Kiket-Timestamp"].encode() + b"." + receiver.requests[0]["body"],
                        hashlib.sha256).hexdigest()
    assert headers["X-Kiket-Signature"] == f"sha256={expected}"
    assert headers["X-Kiket-Event"] == "issue.created" and headers["X-Kiket-Delivery"]

    deliveries = client.get(f"/api/v1/webhooks/{subscription['id']}/deliveries", headers=auth(token)).get_json()
    assert [d["event"] for d in deliveries["items"]] == ["issue.transitioned", "issue.created"]
    first = deliveries["items"][1]
    assert first["status"] == "delivered" and first["eventId"] == created_event["id"]
    assert json.loads(first["request"]["body"])["id"] == created_event["id"] and SECRET not in json.dumps(first)
    assert first["response"]["statusCode"] == 200

    assert client.get("/api/v1/webhooks?projectKey=ENG", headers=auth(token)).get_json()["items"][0]["id"] == \
        subscription["id"]
    assert client.delete(f"/api/v1/webhooks/{subscription['id']}", headers=auth(token)).status_code == 204
    assert client.get(f"/api/v1/webhooks/{subscription['id']}/deliveries", headers=auth(token)).status_code == 404


def test_a_generated_secret_is_returned_once(client, token, app):
    app.config["KIKET_WEBHOOK_ALLOW_PRIVATE"] = True
    created = subscribe(client, token, "https://hooks.example.com/kiket").get_json()
    assert created["secret"].startswith("whsec_")
    listed = client.get("/api/v1/webhooks", headers=auth(token)).get_json()["items"]
    assert "secret" not in listed[0]


def test_unknown_events_are_422(client, token):
    response = subscribe(client, token, "https://hooks.example.com/kiket", events=["issue.exploded"])
    assert response.status_code == 422 and "events.0" in response.get_json()["errors"]


def test_members_cannot_manage_webhooks(client, make_user, project):
    from app.models import ProjectMembership

    member = make_user("member@example.com", "member")
    db.session.add(ProjectMembership(project_id=project.id, user_id=member.id, role="member"))
    db.session.commit()
    value = credentials.create_personal_token(member, "m", ["*"])[1]
    assert subscribe(client, value, "https://hooks.example.com/kiket").status_code == 403


@pytest.mark.parametrize("url,reason", [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://10.0.0.1/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://[::1]/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),
    ("http://0177.0.0.1/hook", "loopback"),
    ("http://0x7f.1/hook", "loopback"),
    ("http://hooks.innocent-looking.example/hook", "private"),
])
def test_private_targets_are_refused(client, token, monkeypatch, url, reason):
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "hooks.innocent-looking.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    response = subscribe(client, token, url)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert reason in response.get_json()["errors"]["url"][0]


def test_redirects_to_private_addresses_are_refused_at_delivery(app, client, token, receiver, monkeypatch):
    # The receiver stands in for a public host: only its exact address passes the guard.
    real = webhook_delivery.forbidden_reason
    monkeypatch.setattr(webhook_delivery, "forbidden_reason", lambda ip: None if ip == "127.0.0.1" else real(ip))
    subscription = subscribe(client, token, receiver.url + "/start", secret=SECRET).get_json()
    receiver.reply(302, {"Location": "http://169.254.169.254/latest/meta-data/"})
    client.post("/api/v1/issues", headers=auth(token), json={"projectKey": "ENG", "title": "Hello"})
    run_webhooks(app)
    (delivery,) = client.get(f"/api/v1/webhooks/{subscription['id']}/deliveries", headers=auth(token)).get_json()["items"]
    assert delivery["status"] == "failed" and "refused: redirect 1" in delivery["error"]
    assert len(receiver.requests) == 1


def test_subscription_pages(app, client, login, make_user, project, receiver):
    from app.models import ProjectMembership
    from tests.conftest import post_form

    app.config["KIKET_WEBHOOK_ALLOW_PRIVATE"] = True
    login()
    assert "/projects/ENG/webhooks" in client.get("/projects/ENG").get_data(as_text=True)
    assert client.get("/projects/ENG/webhooks").status_code == 200
    nul = post_form(client, "/projects/ENG/webhooks", {"url": "http://a\x00b/hook", "events": "issue.created"})
    assert nul.status_code == 422 and "NUL" in nul.get_data(as_text=True)
    refused = post_form(client, "/projects/ENG/webhooks", {"url": receiver.url + "/hook", "events": "issue.bogus"})
    assert refused.status_code == 422 and "issue.bogus" in refused.get_data(as_text=True)
    created = post_form(client, "/projects/ENG/webhooks",
                        {"url": receiver.url + "/hook", "events": ["issue.created", "issue.commented"]})
    assert created.status_code == 201, created.get_data(as_text=True)
    secret = re.search(r"(whsec_[\w-]+)", created.get_data(as_text=True)).group(1)
    page = client.get("/projects/ENG/webhooks").get_data(as_text=True)
    assert receiver.url in page and secret not in page
    (subscription_id,) = re.findall(r"/projects/ENG/webhooks/(\d+)", page)

    issue = issues.create_issue(project, project.memberships[0].user, issue_type="task", title="Hooked")
    run_webhooks(app)
    (first,) = receiver.requests
    body = first["body"]
    assert first["headers"]["X-Kiket-Signature"] == "sha256=" + hmac.new(
        secret.encode(), first["headers"]["X-Kiket-Timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert json.loads(body)["data"]["issue"]["key"] == issue.key
    detail = client.get(f"/projects/ENG/webhooks/{subscription_id}").get_data(as_text=True)
    assert "issue.created" in detail and "X-Kiket-Signature" not in detail
    (delivery_id,) = re.findall(rf"/webhooks/{subscription_id}/deliveries/(\d+)/redeliver", detail)
    again = post_form(client, f"/projects/ENG/webhooks/{subscription_id}/deliveries/{delivery_id}/redeliver")
    assert again.status_code == 303
    run_webhooks(app)
    assert json.loads(receiver.requests[1]["body"])["id"] == json.loads(body)["id"]
    assert "queued again" in client.get(again.headers["Location"]).get_data(as_text=True)

    member = make_user("member@example.com", "member")
    db.session.add(ProjectMembership(project_id=project.id, user_id=member.id, role="member"))
    db.session.commit()
    assert post_form(client, f"/projects/ENG/webhooks/{subscription_id}/delete").status_code == 303
    assert "No webhook subscriptions" in client.get("/projects/ENG/webhooks").get_data(as_text=True)
    post_form(client, "/logout")
    login("member@example.com")
    assert client.get("/projects/ENG/webhooks").status_code == 403

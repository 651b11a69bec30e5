"""Outbound webhooks: signed, sent by the `webhooks` queue, retried on 5xx/429/timeouts, refused to private targets."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from rq import Queue, SimpleWorker
from rq.job import Job

from app.extensions import db
from app.models import WebhookDelivery
from app.models.base import utcnow
from app.services.errors import Invalid
from app.services.projects import create_project
from app.services.webhooks import delivery as webhook_delivery, secrets
from jobs.webhooks import deliver_webhook
from tests.support.receiver import receiver  # noqa: F401  (the fixture)

SIGNING = "whsec-signing-key-123"
TOKEN = "tok-very-secret-value"


@pytest.fixture
def project(make_user):
    owner = make_user()
    project = create_project(owner, "ENG", "Engineering", "", "kanban")
    secrets.set_secret(project.id, "API_TOKEN", TOKEN, owner.id)
    return project


@pytest.fixture
def allow_private(app):
    app.config["KIKET_WEBHOOK_ALLOW_PRIVATE"] = True


def send(project, url, **kwargs):
    options = {"method": "POST", "headers": {"Authorization": f"Bearer {TOKEN}", "X-Trace": f"id={TOKEN}"},
               "body": {"issue": {"key": "ENG-1"}, "token": TOKEN}, "event": "issue.transitioned", "secret": SIGNING}
    options.update(kwargs)
    return webhook_delivery.deliver(project.id, url, options["method"], options["headers"], options["body"],
                                    options["event"], options["secret"], timeout=options.get("timeout"))


def stored_text(delivery_id):
    rows = webhook_delivery.attempts(delivery_id)
    return json.dumps([[r.url, r.request_headers, r.request_body, r.response_excerpt, r.error] for r in rows])


def test_signed_delivery_through_the_worker(app, project, receiver, allow_private):
    delivery = send(project, receiver.url + "/hook?x=1")
    assert delivery.status == "pending"
    job = Job.fetch(f"webhook-{delivery.delivery_uuid}", connection=app.extensions["redis"])
    assert job.origin == "webhooks" and job.func_name == "jobs.webhooks.deliver_webhook"

    SimpleWorker([Queue("webhooks", connection=app.extensions["redis"])], connection=app.extensions["redis"]).work(burst=True)

    db.session.expire_all()
    row = db.session.get(WebhookDelivery, delivery.id)
    assert (row.status, row.status_code, row.attempt) == ("delivered", 200, 1)
    assert row.delivered_at is not None and row.duration_ms is not None
    (request,) = receiver.requests
    headers = request["headers"]
    assert request["path"] == "/hook?x=1" and request["method"] == "POST"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Kiket-Event"] == "issue.transitioned" and headers["X-Kiket-Delivery"] == f"{delivery.delivery_uuid}.1"
    timestamp = headers["X-Kiket-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(SIGNING.encode(), f"{timestamp}.".encode() + request["body"], hashlib.sha256).hexdigest()
    assert headers["X-Kiket-Signature"] == f"sha256={expected}"
    assert json.loads(request["body"]) == {"issue": {"key": "ENG-1"}, "token": TOKEN}


def test_secrets_never_appear_in_the_stored_delivery(project, receiver, allow_private):
    delivery = send(project, receiver.url + f"/hook?token={TOKEN}")
    deliver_webhook(delivery.id)
    text = stored_text(delivery.id)
    assert TOKEN not in text and SIGNING not in text
    row = webhook_delivery.attempts(delivery.id)[0]
    assert row.request_headers == {"Authorization": "[redacted]", "X-Trace": "id=[redacted]", "Content-Type": "application/json"}
    assert "[redacted]" in row.response_excerpt and "[redacted]" in row.url
    assert TOKEN not in row.payload_encrypted


def test_callers_cannot_spoof_the_signature_headers(project, receiver, allow_private):
    delivery = send(project, receiver.url, headers={"X-Kiket-Signature": "sha256=forged", "Host": "evil"})
    deliver_webhook(delivery.id)
    headers = receiver.requests[0]["headers"]
    assert headers["X-Kiket-Signature"] != "sha256=forged"
    assert headers["Host"] == f"127.0.0.1:{receiver.port}"


def test_a_500_is_retried_then_delivered(project, receiver, allow_private):
    receiver.reply(500)
    receiver.reply(200)
    delivery = send(project, receiver.url)
    assert deliver_webhook(delivery.id) == "retrying"
    first = webhook_delivery.attempts(delivery.id)[0]
    assert (first.status, first.status_code, first.error) == ("retrying", 500, "HTTP 500")
    assert abs(first.next_retry_at - (utcnow() + timedelta(seconds=30))) < timedelta(seconds=10)
    # The next attempt waits in the worker's scheduler until then.
    assert webhook_delivery.scheduled_retry(first) == first.next_retry_at.replace(microsecond=0)

    assert deliver_webhook(delivery.id) == "delivered"
    rows = webhook_delivery.attempts(delivery.id)
    assert [(r.attempt, r.status, r.status_code) for r in rows] == [(1, "retrying", 500), (2, "delivered", 200)]
    # The second attempt is signed afresh, under its own delivery id; both reached the receiver.
    assert [r["headers"]["X-Kiket-Delivery"] for r in receiver.requests] == \
        [f"{delivery.delivery_uuid}.1", f"{delivery.delivery_uuid}.2"]
    # A stray extra run (RQ at-least-once) sends nothing more.
    assert deliver_webhook(delivery.id) == "delivered" and len(receiver.requests) == 2


def test_429_and_timeouts_are_retried(project, receiver, allow_private):
    receiver.reply(429)
    receiver.reply(200, delay=2.5)
    delivery = send(project, receiver.url, timeout=1)
    assert deliver_webhook(delivery.id) == "retrying"
    assert deliver_webhook(delivery.id) == "retrying"
    rows = webhook_delivery.attempts(delivery.id)
    assert [(r.status, r.status_code) for r in rows] == [("retrying", 429), ("retrying", None)]
    assert rows[1].error == "timeout after 1s"
    assert rows[1].next_retry_at > rows[0].next_retry_at


@pytest.mark.parametrize("retry_after,delay", [("120", 120), ("5", 30), ("999999", 30)])
def test_retry_after_is_honoured_when_longer(project, receiver, allow_private, retry_after, delay):
    receiver.reply(429, {"Retry-After": retry_after})
    delivery = send(project, receiver.url)
    before = utcnow()
    assert deliver_webhook(delivery.id) == "retrying"
    row = webhook_delivery.attempts(delivery.id)[0]
    assert timedelta(seconds=delay - 1) <= row.next_retry_at - before <= timedelta(seconds=delay + 5)


def test_a_4xx_fails_without_retry(project, receiver, allow_private):
    receiver.reply(404)
    delivery = send(project, receiver.url)
    assert deliver_webhook(delivery.id) == "failed"
    assert [(r.status, r.status_code) for r in webhook_delivery.attempts(delivery.id)] == [("failed", 404)]


def test_retries_stop_after_the_last_interval(project, receiver, allow_private):
    for _ in range(webhook_delivery.MAX_ATTEMPTS):
        receiver.reply(503)
    delivery = send(project, receiver.url)
    for _ in range(len(webhook_delivery.RETRY_INTERVALS)):
        assert deliver_webhook(delivery.id) == "retrying"
    assert deliver_webhook(delivery.id) == "failed"
    rows = webhook_delivery.attempts(delivery.id)
    assert [r.attempt for r in rows] == list(range(1, 8))
    assert rows[-1].next_retry_at is None


def test_redirects_are_followed_with_the_method_kept(project, receiver, allow_private):
    receiver.reply(307, {"Location": "/moved"})
    delivery = send(project, receiver.url + "/first")
    assert deliver_webhook(delivery.id) == "delivered"
    assert [(r["method"], r["path"]) for r in receiver.requests] == [("POST", "/first"), ("POST", "/moved")]
    assert receiver.requests[1]["body"] == receiver.requests[0]["body"]


def test_too_many_redirects_fail(project, receiver, allow_private):
    for n in range(5):
        receiver.reply(302, {"Location": f"/hop{n}"})
    delivery = send(project, receiver.url)
    assert deliver_webhook(delivery.id) == "failed"
    assert webhook_delivery.attempts(delivery.id)[0].error == "more than 3 redirects"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/hook",
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:{port}/hook",
    "http://localhost:{port}/hook",
    "http://[::ffff:127.0.0.1]:{port}/hook",
])
def test_private_targets_are_refused(app, project, receiver, url):
    assert app.config["KIKET_WEBHOOK_ALLOW_PRIVATE"] is False
    delivery = send(project, url.format(port=receiver.port))
    assert deliver_webhook(delivery.id) == "failed"
    (row,) = webhook_delivery.attempts(delivery.id)
    assert row.status_code is None and row.error.startswith("refused: ")
    assert receiver.requests == []


@pytest.mark.parametrize("location,reason", [
    ("http://10.0.0.1/internal", "10.0.0.1, a private address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a cloud metadata address"),
    ("http://[::1]:8080/", "::1, a loopback address"),
])
def test_redirects_to_private_targets_are_refused(project, receiver, monkeypatch, location, reason):
    # The receiver stands in for a public host: only its exact address is let through.
    real = webhook_delivery.forbidden_reason
    monkeypatch.setattr(webhook_delivery, "forbidden_reason", lambda ip: None if ip == "127.0.0.1" else real(ip))
    receiver.reply(302, {"Location": location})
    delivery = send(project, receiver.url + "/start")
    assert deliver_webhook(delivery.id) == "failed"
    row = webhook_delivery.attempts(delivery.id)[0]
    assert row.error.startswith(f"refused: redirect 1 to {location}") and reason in row.error
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("address,reason", [
    ("127.0.0.1", "loopback address"), ("10.1.2.3", "private address"), ("172.16.0.1", "private address"),
    ("192.168.1.1", "private address"), ("169.254.1.1", "link-local address"),
    ("169.254.169.254", "cloud metadata address"), ("fd00:ec2::254", "cloud metadata address"),
    ("::1", "loopback address"), ("fe80::1", "link-local address"), ("fc00::1", "private address"),
    ("0.0.0.0", "unspecified address"), ("224.0.0.1", "multicast address"), ("240.0.0.1", "reserved address"),
    ("::ffff:10.0.0.1", "private address"), ("100.64.0.1", "not a globally routable address"),
    ("8.8.8.8", None), ("2606:4700:4700::1111", None),
])
def test_address_classification(address, reason):
    assert webhook_delivery.forbidden_reason(address) == reason


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://example.com", "http:///nohost"])
def test_only_http_urls_are_accepted(project, url):
    with pytest.raises(Invalid):
        send(project, url)


def test_header_injection_is_refused(project):
    with pytest.raises(Invalid):
        send(project, "https://example.com/hook", headers={"X-Evil": "a\r\nHost: b"})


def test_redeliver_sends_again_as_a_new_delivery(project, receiver, allow_private):
    receiver.reply(404)
    first = send(project, receiver.url)
    assert deliver_webhook(first.id) == "failed"
    again = webhook_delivery.redeliver(first.id)
    assert again.delivery_uuid != first.delivery_uuid and again.attempt == 1
    assert deliver_webhook(again.id) == "delivered"
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]


def test_attempts_redis_lost_are_queued_again(app, project, receiver, allow_private):
    first = send(project, receiver.url + "/first")
    second = send(project, receiver.url + "/second")
    redis = app.extensions["redis"]
    assert webhook_delivery.requeue_lost(0) == 0
    redis.flushdb()
    assert webhook_delivery.requeue_lost(3600) == 0  # too young: it may be between its commit and its enqueue
    assert webhook_delivery.requeue_lost(0) == 2
    SimpleWorker([Queue("webhooks", connection=redis)], connection=redis).work(burst=True)
    db.session.expire_all()
    assert {db.session.get(WebhookDelivery, d.id).status for d in (first, second)} == {"delivered"}
    assert sorted(r["path"] for r in receiver.requests) == ["/first", "/second"]
    assert webhook_delivery.requeue_lost(0) == 0

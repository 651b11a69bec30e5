"""The one outbound webhook path: record, enqueue on `webhooks`, sign, send with an SSRF guard, retry.

Every outbound webhook (the workflow `webhook` action, gateway events to subscriptions and extensions)
goes through `deliver`. The job calls `attempt`, which sends one attempt and records it as its own row;
after a retryable failure (timeouts, connection errors, 5xx, 429) it schedules the next attempt on the
`webhooks` queue 30 s, 1 min, 5 min, 30 min, 2 h and 8 h later (or after the target's `Retry-After`,
when longer). A delivery made for a registered handler (the gateway's extensions) has its body and
headers prepared afresh for each attempt (a new runtime token), and the handler sees a 2xx reply.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import re
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Mapping
from urllib.parse import urljoin, urlsplit

from flask import current_app
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from app.extensions import db
from app.models.base import utcnow
from app.models.webhooks import WebhookDelivery
from app.queue import get_queue
from app.services import crypto, outbound
from app.services.outbound import forbidden_reason
from app.services.errors import Invalid, NotFound
from app.services.webhooks.secrets import secrets_for

log = logging.getLogger(__name__)

RETRY_INTERVALS = [30, 60, 300, 1800, 7200, 28800]
MAX_ATTEMPTS = len(RETRY_INTERVALS) + 1
MAX_REDIRECTS = 3
MAX_TIMEOUT = 60
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
REDIRECT_CODES = (301, 302, 303, 307, 308)
EXCERPT_BYTES = 2048
# What a handler's reply may be (an extension's directives); the rest is not read.
REPLY_BYTES = 256 * 1024
# A `Retry-After` longer than this is not honoured: the schedule's next interval applies.
MAX_RETRY_AFTER = 24 * 3600
PAYLOAD_PURPOSE = "webhook payloads"
REDACTED = "[redacted]"
# Header names whose values are credentials whatever they contain; dropped on a cross-origin redirect too.
SENSITIVE_HEADER = re.compile(r"authorization|cookie|token|secret|password|api[-_]?key|signature", re.IGNORECASE)
# Ours to set, or the transport's: a caller cannot spoof or override them.
RESERVED_HEADER = re.compile(r"^(x-kiket-.*|host|content-length|transfer-encoding|connection)$", re.IGNORECASE)
# Shorter secret values are not searched for in logs: redacting "a" would shred every text.
MIN_REDACTABLE = 4


class Refused(Exception):
    """The target is not allowed (scheme, credentials in URL, or a forbidden address)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    ip: str
    path: str


@dataclass
class _Outcome:
    status_code: int | None = None
    excerpt: str | None = None
    error: str | None = None
    retryable: bool = False
    retry_after: int | None = None
    reply: bytes = b""


@dataclass(frozen=True)
class Attempt:
    """What a handler makes of a delivery for one attempt: the body, extra `X-Kiket-*` headers, values to hide."""

    body: str
    headers: Mapping[str, str] = field(default_factory=dict)
    hidden: tuple[str, ...] = ()
    allow_loopback: bool = False


@dataclass(frozen=True)
class Handler:
    """Prepares each attempt (None: the target is gone, the delivery fails) and hears a 2xx reply."""

    prepare: Callable[[Mapping[str, Any], str], Attempt | None]
    on_reply: Callable[[WebhookDelivery, bytes], object]


_handlers: dict[str, Handler] = {}


def register_handler(name: str, handler: Handler) -> None:
    """Let deliveries made with `handler=name` be prepared and answered by it (`app.factory.connect_services`)."""
    _handlers[name] = handler


def deliver(project_id: int | None, url: str, method: str, headers: dict[str, str] | None, body: Any,
            event: str, secret: str | None, *, timeout: int | None = None, event_id: str | None = None,
            subscription_id: int | None = None, installation_id: int | None = None, handler: str | None = None,
            context: Mapping[str, Any] | None = None) -> WebhookDelivery:
    """Record a delivery and enqueue its first attempt on the `webhooks` queue.

    `body` may be text, bytes (UTF-8) or a JSON value (sent as application/json). With a
    `secret`, every attempt is signed: `X-Kiket-Signature: sha256=HMAC(secret, "<ts>.<body>")`.
    `handler` names a registered Handler, which gets `context` to prepare each attempt.
    """
    method = (method or "POST").upper()
    if method not in METHODS:
        raise Invalid({"method": f"must be one of {', '.join(METHODS)}"})
    scheme = urlsplit(url or "").scheme.lower()
    if scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise Invalid({"url": "must be an http(s) URL with a host"})
    clean: dict[str, str] = {}
    for name, value in (headers or {}).items():
        name, value = str(name).strip(), str(value)
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name) or "\r" in value or "\n" in value:
            raise Invalid({"headers": f"header {name[:40]!r} is not a valid header"})
        if not RESERVED_HEADER.match(name):
            clean[name] = value
    if isinstance(body, bytes):
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise Invalid({"body": "must be UTF-8"}) from None
    elif isinstance(body, str):
        text = body
    elif body is None:
        text = ""
    else:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        if not any(k.lower() == "content-type" for k in clean):
            clean["Content-Type"] = "application/json"
    timeout = min(int(timeout or current_app.config["KIKET_WEBHOOK_TIMEOUT"]), MAX_TIMEOUT)
    hidden = _redactable(project_id, secret)
    payload = {"url": url, "method": method, "headers": clean, "body": text, "secret": secret,
               "timeout": timeout, "hidden": hidden, "handler": handler, "context": dict(context or {})}
    row = WebhookDelivery(
        project_id=project_id, delivery_uuid=str(uuid.uuid4()), event=event, method=method,
        url=_redact(url, hidden), request_headers=redact_headers(clean, hidden), request_body=_redact(text, hidden),
        payload_encrypted=crypto.encrypt(json.dumps(payload), PAYLOAD_PURPOSE), attempt=1, status="pending",
        event_id=event_id, subscription_id=subscription_id, installation_id=installation_id,
    )
    db.session.add(row)
    db.session.commit()
    _enqueue(row, timeout)
    log.info("webhook queued delivery=%s event=%s project=%s host=%s", row.id, event, project_id, urlsplit(url).hostname)
    return row


def job_id(delivery_uuid: str, attempt: int) -> str:
    """The job of one attempt: the first at `webhook-<uuid>`, each retry at `webhook-<uuid>-<attempt>`."""
    return f"webhook-{delivery_uuid}" + (f"-{attempt}" if attempt > 1 else "")


def _enqueue(row: WebhookDelivery, timeout: int, at: datetime | None = None) -> None:
    """Queue the row's first attempt, or (`at`) schedule the one after it, which the worker's scheduler runs then."""
    options = dict(
        job_id=job_id(row.delivery_uuid, row.attempt + 1 if at is not None else row.attempt),
        # Each hop may use the timeout to connect, send and read.
        job_timeout=timeout * (MAX_REDIRECTS + 1) * 3 + 30,
        result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600,
    )
    queue = get_queue("webhooks")
    try:
        if at is None:
            queue.enqueue("jobs.webhooks.deliver_webhook", row.id, **options)
        else:
            queue.enqueue_at(at, "jobs.webhooks.deliver_webhook", row.id, **options)
    except RedisError as error:
        # The row stays pending and says why; `redeliver` can send it once Redis is back.
        row.error = "; ".join(filter(None, [row.error, f"could not enqueue: {type(error).__name__}"]))
        db.session.commit()
        raise


def requeue_lost(older_than_s: float) -> int:
    """Queue again the attempts Redis lost (restarted empty): pending or retrying rows older than `older_than_s`
    whose job is gone. Called by the workers' watch; a delivery already delivered or failed is not sent again (`attempt` checks)."""
    queue = get_queue("webhooks")
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    rows = db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.status.in_(("pending", "retrying")),
                                                            WebhookDelivery.created_at < cutoff)).all()
    requeued = 0
    for row in rows:
        retry = row.status == "retrying"
        if queue.fetch_job(job_id(row.delivery_uuid, row.attempt + 1 if retry else row.attempt)) is not None:
            continue
        timeout = json.loads(crypto.decrypt(row.payload_encrypted, PAYLOAD_PURPOSE)).get("timeout") or 10
        _enqueue(row, timeout, at=max(row.next_retry_at or utcnow(), utcnow()) if retry else None)
        requeued += 1
    db.session.rollback()
    if requeued:
        log.warning("webhook attempts lost by Redis queued again count=%d", requeued)
    return requeued


def redeliver(delivery_id: int) -> WebhookDelivery:
    """Send a past delivery again, as a new delivery with its own attempts."""
    source = db.session.get(WebhookDelivery, delivery_id)
    if source is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    row = _copy(source, uuid=str(uuid.uuid4()), attempt=1)
    db.session.add(row)
    db.session.commit()
    _enqueue(row, json.loads(crypto.decrypt(row.payload_encrypted, PAYLOAD_PURPOSE))["timeout"])
    return row


def _copy(source: WebhookDelivery, *, uuid: str, attempt: int) -> WebhookDelivery:
    """A new pending row sending what `source` sent (the same event id, target and payload)."""
    return WebhookDelivery(
        project_id=source.project_id, delivery_uuid=uuid, event=source.event, method=source.method,
        url=source.url, request_headers=source.request_headers, request_body=source.request_body,
        payload_encrypted=source.payload_encrypted, attempt=attempt, status="pending", event_id=source.event_id,
        subscription_id=source.subscription_id, installation_id=source.installation_id,
    )


def attempts(delivery_id: int) -> list[WebhookDelivery]:
    """Every attempt of the delivery that `delivery_id` (any of its attempts) belongs to, in order."""
    row = db.session.get(WebhookDelivery, delivery_id)
    if row is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    return list(db.session.execute(
        select(WebhookDelivery).where(WebhookDelivery.delivery_uuid == row.delivery_uuid).order_by(WebhookDelivery.attempt)
    ).scalars())


def attempt(delivery_id: int) -> WebhookDelivery:
    """Make the next attempt of a delivery and record it; when another is due, schedule it."""
    history = attempts(delivery_id)
    latest = history[-1]
    if latest.status in ("delivered", "failed"):
        log.info("webhook delivery=%s already %s; nothing to do", latest.id, latest.status)
        return latest
    row = latest
    if latest.status == "retrying":
        row = _copy(latest, uuid=latest.delivery_uuid, attempt=latest.attempt + 1)
        db.session.add(row)
    # Nothing stays pending in the session while the target answers: it may call back and write.
    db.session.commit()
    payload = json.loads(crypto.decrypt(row.payload_encrypted, PAYLOAD_PURPOSE))
    handler = _handlers.get(payload.get("handler") or "")
    started = time.monotonic()
    prepared = handler.prepare(payload.get("context") or {}, payload["body"]) if handler is not None else None
    if handler is not None and prepared is None:
        outcome = _Outcome(error="refused: its target no longer exists")
    else:
        if prepared is not None:
            payload["body"] = prepared.body
            payload["hidden"] = sorted({*payload.get("hidden", []), *(v for v in prepared.hidden if len(v) >= MIN_REDACTABLE)},
                                       key=len, reverse=True)
        outcome = _send(payload, f"{row.delivery_uuid}.{row.attempt}", row.event,
                        current_app.config["KIKET_WEBHOOK_ALLOW_PRIVATE"],
                        extra=prepared.headers if prepared else {}, allow_loopback=bool(prepared and prepared.allow_loopback),
                        reply=handler is not None)
    hidden = payload.get("hidden", [])
    row.duration_ms = int((time.monotonic() - started) * 1000)
    row.status_code = outcome.status_code
    row.response_excerpt = _redact(outcome.excerpt, hidden) if outcome.excerpt is not None else None
    row.error = _redact(outcome.error, hidden) if outcome.error else None
    if outcome.status_code is not None and 200 <= outcome.status_code < 300 and not outcome.error:
        row.status, row.delivered_at = "delivered", utcnow()
    elif outcome.retryable and row.attempt < MAX_ATTEMPTS:
        row.status = "retrying"
        delay = RETRY_INTERVALS[row.attempt - 1]
        if outcome.retry_after is not None and delay < outcome.retry_after <= MAX_RETRY_AFTER:
            delay = outcome.retry_after
        row.next_retry_at = utcnow() + timedelta(seconds=delay)
    else:
        row.status = "failed"
    db.session.commit()
    log.info("webhook delivery=%s attempt=%d status=%s code=%s ms=%d", row.id, row.attempt, row.status,
             row.status_code, row.duration_ms)
    if row.status == "retrying":
        _enqueue(row, payload["timeout"], at=row.next_retry_at)
    elif row.status == "delivered" and handler is not None:
        try:
            handler.on_reply(row, outcome.reply)
        except Exception:  # noqa: BLE001 - the delivery succeeded; what the reply asked for is the handler's to record
            db.session.rollback()
            log.exception("reply of webhook delivery=%s not handled", row.id)
    return row


def scheduled_retry(row: WebhookDelivery) -> datetime | None:
    """When the worker's scheduler will run the attempt after `row` (None: nothing scheduled)."""
    registry = ScheduledJobRegistry(queue=get_queue("webhooks"))
    try:
        return registry.get_scheduled_time(job_id(row.delivery_uuid, row.attempt + 1))
    except NoSuchJobError:
        return None


def _send(payload: dict, attempt_id: str, event: str, allow_private: bool, *, extra: Mapping[str, str],
          allow_loopback: bool, reply: bool) -> _Outcome:
    url, method, body = payload["url"], payload["method"], payload["body"].encode()
    headers = dict(payload["headers"])
    origin = _origin(url)
    for hop in range(MAX_REDIRECTS + 1):
        try:
            target = resolve_target(url, allow_private, allow_loopback=allow_loopback)
        except Refused as refusal:
            where = "" if hop == 0 else f"redirect {hop} to {url}: "
            return _Outcome(error=f"refused: {where}{refusal}")
        except OSError as error:
            return _Outcome(error=f"cannot resolve host: {error}", retryable=True)
        timestamp = str(int(time.time()))
        sent = {**headers, **extra, "User-Agent": "Kiket-Webhooks/1", "X-Kiket-Event": event,
                "X-Kiket-Delivery": attempt_id, "X-Kiket-Timestamp": timestamp}
        if payload.get("secret"):
            sent["X-Kiket-Signature"] = "sha256=" + sign(payload["secret"], timestamp, body)
        try:
            status, location, retry_after, content = _request(target, method, sent, body, payload["timeout"],
                                                              REPLY_BYTES if reply else EXCERPT_BYTES)
        except TimeoutError:
            return _Outcome(error=f"timeout after {payload['timeout']}s", retryable=True)
        except ssl.SSLError as error:
            return _Outcome(error=f"TLS error: {error.reason or error}", retryable=True)
        except (OSError, http.client.HTTPException) as error:
            return _Outcome(error=f"connection error: {type(error).__name__}: {error}", retryable=True)
        excerpt = content[:EXCERPT_BYTES].decode("utf-8", "replace")
        if status in REDIRECT_CODES and location:
            if hop == MAX_REDIRECTS:
                return _Outcome(status_code=status, excerpt=excerpt, error=f"more than {MAX_REDIRECTS} redirects")
            url = urljoin(url, location)
            if status == 303 or (status in (301, 302) and method not in ("GET", "HEAD")):
                method, body = "GET", b""
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            if _origin(url) != origin:
                # Credentials were meant for the first host, not wherever it points us.
                headers = {k: v for k, v in headers.items() if not SENSITIVE_HEADER.search(k)}
                origin = _origin(url)
            continue
        retryable = status == 429 or status >= 500
        error = None if 200 <= status < 300 else f"HTTP {status}"
        return _Outcome(status_code=status, excerpt=excerpt, error=error, retryable=retryable,
                        retry_after=_seconds(retry_after), reply=content if reply else b"")
    raise AssertionError("unreachable")


def _seconds(retry_after: str | None) -> int | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not retry_after:
        return None
    text = retry_after.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0, int((moment - utcnow()).total_seconds())) if moment.tzinfo else None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `"<timestamp>.<body>"`: what `X-Kiket-Signature: sha256=…` carries."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def resolve_target(url: str, allow_private: bool, *, allow_loopback: bool = False) -> Target:
    """Check the URL and resolve its host; every address must be public unless `allow_private`
    (or, with `allow_loopback`, on this machine).

    The request then connects to the checked address itself, so a DNS answer that changes
    between check and connect (rebinding) cannot redirect it.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused(f"scheme {scheme or '(none)'!r} is not http or https")
    if parts.username is not None or parts.password is not None:
        raise Refused("credentials in the URL are not supported; send them in a header")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise Refused("no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise Refused("invalid port") from None
    addresses = outbound.resolve(host, port)
    if not allow_private:
        for address in addresses:
            reason = forbidden_reason(address)
            if reason and not (allow_loopback and reason == "loopback address"):
                raise Refused(f"{host} resolves to {address}, a {reason}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme=scheme, host=host, port=port, ip=addresses[0], path=path)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a fixed IP, with the Host header of the name."""

    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._ip = target.ip

    def connect(self):
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed IP, with SNI and certificate checks against the name."""

    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._ip = target.ip

    def connect(self):
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _request(target: Target, method: str, headers: dict[str, str], body: bytes, timeout: float,
             limit: int) -> tuple[int, str | None, str | None, bytes]:
    """(status, Location, Retry-After, the first `limit` bytes of the body)."""
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout)
    try:
        connection.request(method, target.path, body=body if (body or method not in ("GET", "DELETE")) else None,
                           headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Location"), response.getheader("Retry-After"), response.read(limit)
    finally:
        connection.close()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _redactable(project_id: int | None, secret: str | None) -> list[str]:
    values = list(secrets_for(project_id).values()) if project_id is not None else []
    if secret:
        values.append(secret)
    # Longest first, so a secret containing another is replaced whole.
    return sorted({v for v in values if len(v) >= MIN_REDACTABLE}, key=len, reverse=True)


def _redact(text: str, hidden: list[str]) -> str:
    for value in hidden:
        text = text.replace(value, REDACTED)
    return text


def redact_headers(headers: dict[str, str], hidden: list[str]) -> dict[str, str]:
    """Headers for the log: credential-looking names fully hidden, known secret values replaced anywhere."""
    return {name: REDACTED if SENSITIVE_HEADER.search(name) else _redact(value, hidden) for name, value in headers.items()}

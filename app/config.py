"""Settings from the environment, with embedded defaults (no secrets in code)."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Mapping

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """An environment variable holds a value we cannot use."""


def parse_boolean(name: str, raw: str) -> bool:
    """Parse a yes/no setting strictly: junk is an error, not `False`."""
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


def parse_int(name: str, raw: str, *, minimum: int = 0) -> int:
    """Parse a whole-number setting strictly."""
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


def database_url(raw: str | None, instance_path: str) -> str:
    """The SQLAlchemy URL: SQLite under instance/ by default; `postgres://` rewritten for psycopg 3."""
    if not raw:
        return "sqlite:///" + os.path.join(instance_path, "kiket.sqlite3")
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix):]
    return raw


def parse_live_url(name: str, raw: str) -> str | None:
    """A ws:// or wss:// URL (or a path starting with /), or None when unset."""
    raw = raw.strip()
    if not raw:
        return None
    if not (raw.startswith(("ws://", "wss://", "http://", "https://")) and "//" in raw or raw.startswith("/")):
        raise SettingsError(f"{name} must be a ws:// or wss:// URL such as ws://127.0.0.1:5001/live, or a path like /live")
    return raw


SMTP_SCHEMES = ("smtp", "smtps", "smtp+starttls")


def parse_smtp_url(name: str, raw: str) -> str | None:
    """An `smtp://`, `smtp+starttls://` or `smtps://` URL with a host, or None when unset."""
    raw = raw.strip()
    if not raw:
        return None
    scheme, _, rest = raw.partition("://")
    host = rest.rpartition("@")[2].split("/", 1)[0].split("?", 1)[0]
    if scheme not in SMTP_SCHEMES or not host:
        raise SettingsError(f"{name} must look like smtp://[user:password@]host[:port][?from=address] (or smtps://, smtp+starttls://)")
    return raw


def parse_base_url(name: str, raw: str) -> str:
    """An http(s) root URL without a trailing slash."""
    url = raw.strip().rstrip("/")
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest or rest.startswith("/") or any(c in rest for c in "?# "):
        raise SettingsError(f"{name} must be an http(s) URL like https://kiket.example.com")
    return url


def parse_host_list(name: str, raw: str) -> tuple[str, ...]:
    """Comma- or space-separated host names, addresses and CIDRs (`git.internal.example, 10.0.0.0/8`)."""
    from app.services.outbound import AllowList

    entries = tuple(e for e in raw.replace(",", " ").split() if e)
    try:
        AllowList.parse(entries)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None
    return entries


def load_settings(environ: Mapping[str, str], instance_path: str) -> dict:
    """Build the app settings from environment variables. Pure: reads nothing but `environ`."""
    env = environ.get
    embedded_port = parse_int("KIKET_EMBEDDED_REDIS_PORT", env("KIKET_EMBEDDED_REDIS_PORT", "6390"), minimum=1)
    redis_url = env("REDIS_URL") or None
    production = env("KIKET_ENV", "development") == "production"
    port = parse_int("PORT", env("PORT", "5000"), minimum=1)
    # Under `make run` every process gets its own PORT from honcho; KIKET_WEB_PORT is the web process's.
    web_port = parse_int("KIKET_WEB_PORT", env("KIKET_WEB_PORT") or str(port), minimum=1)
    return {
        "SQLALCHEMY_DATABASE_URI": database_url(env("DATABASE_URL"), instance_path),
        "REDIS_URL": redis_url or f"redis://127.0.0.1:{embedded_port}/0",
        "KIKET_REDIS_EMBEDDED": redis_url is None,
        "KIKET_EMBEDDED_REDIS_PORT": embedded_port,
        "SECRET_KEY": env("SECRET_KEY") or None,
        "STORAGE_DIR": os.path.abspath(env("STORAGE_DIR", "storage")),
        "PORT": port,
        "KIKET_ENV": "production" if production else "development",
        "KIKET_UP_MAX_QUEUE_DEPTH": parse_int("KIKET_UP_MAX_QUEUE_DEPTH", env("KIKET_UP_MAX_QUEUE_DEPTH", "50")),
        "KIKET_UP_MAX_QUEUE_AGE": parse_int("KIKET_UP_MAX_QUEUE_AGE", env("KIKET_UP_MAX_QUEUE_AGE", "120")),
        # A worker heartbeats every ttl - 15 s; anything older than this is gone.
        "KIKET_WORKER_TTL": parse_int("KIKET_WORKER_TTL", env("KIKET_WORKER_TTL", "60"), minimum=20),
        # Workers beat a few times per period; /up counts those that beat within it (app/services/health.py).
        "KIKET_WORKER_HEARTBEAT": parse_int("KIKET_WORKER_HEARTBEAT", env("KIKET_WORKER_HEARTBEAT", "10"), minimum=2),
        "KIKET_INVITATION_MAX_AGE": parse_int("KIKET_INVITATION_MAX_AGE", env("KIKET_INVITATION_MAX_AGE", str(7 * 24 * 3600)), minimum=60),
        "KIKET_REVISION_RETENTION": parse_int("KIKET_REVISION_RETENTION", env("KIKET_REVISION_RETENTION", "50"), minimum=1),
        # A GitHub Enterprise (or test stand-in) API root; github.com when unset.
        "KIKET_GITHUB_API_URL": env("KIKET_GITHUB_API_URL") or None,
        # Local (file://) remotes read the server's own disk: off unless set, and then for organization admins only.
        "KIKET_ALLOW_LOCAL_REMOTES": parse_boolean("KIKET_ALLOW_LOCAL_REMOTES", env("KIKET_ALLOW_LOCAL_REMOTES", "0")),
        # Git remotes at loopback, private, link-local or metadata addresses are refused unless listed here.
        "KIKET_GIT_ALLOWED_HOSTS": parse_host_list("KIKET_GIT_ALLOWED_HOSTS", env("KIKET_GIT_ALLOWED_HOSTS", "")),
        "KIKET_MAX_ATTACHMENT_BYTES": parse_int("KIKET_MAX_ATTACHMENT_BYTES", env("KIKET_MAX_ATTACHMENT_BYTES", str(10 * 1024 * 1024)), minimum=1),
        # Request bodies (app/request_limits.py): ordinary forms, and the overrides/defaults editor's YAML files.
        "KIKET_MAX_FORM_BYTES": parse_int("KIKET_MAX_FORM_BYTES", env("KIKET_MAX_FORM_BYTES", str(1024 * 1024)), minimum=64 * 1024),
        "KIKET_MAX_CONFIG_FORM_BYTES": parse_int("KIKET_MAX_CONFIG_FORM_BYTES", env("KIKET_MAX_CONFIG_FORM_BYTES", str(2 * 1024 * 1024)), minimum=64 * 1024),
        # Unset: emails stay in the outbox (admins read them there) instead of being sent.
        "KIKET_SMTP_URL": parse_smtp_url("KIKET_SMTP_URL", env("KIKET_SMTP_URL", "")),
        # Outbound webhooks to loopback, private, link-local and metadata addresses are refused unless set.
        "KIKET_WEBHOOK_ALLOW_PRIVATE": parse_boolean("KIKET_WEBHOOK_ALLOW_PRIVATE", env("KIKET_WEBHOOK_ALLOW_PRIVATE", "0")),
        # Automation runs per minute, per project and action type (spec §10 safety).
        "KIKET_AUTOMATION_RATE_LIMIT": parse_int("KIKET_AUTOMATION_RATE_LIMIT", env("KIKET_AUTOMATION_RATE_LIMIT", "60"), minimum=1),
        "KIKET_WEBHOOK_TIMEOUT": parse_int("KIKET_WEBHOOK_TIMEOUT", env("KIKET_WEBHOOK_TIMEOUT", "10"), minimum=1),
        # Where extensions call back and find the JWKS; the worker has no request to learn it from.
        "KIKET_BASE_URL": parse_base_url("KIKET_BASE_URL", env("KIKET_BASE_URL") or f"http://127.0.0.1:{web_port}"),
        # The `iss` of runtime tokens; the official SDKs expect kiket.dev.
        "KIKET_TOKEN_ISSUER": env("KIKET_TOKEN_ISSUER") or "kiket.dev",
        # /hooks/github requests per minute and client address (GitHub sends from shared addresses: keep it generous).
        "KIKET_GITHUB_HOOK_RATE_LIMIT": parse_int("KIKET_GITHUB_HOOK_RATE_LIMIT", env("KIKET_GITHUB_HOOK_RATE_LIMIT", "120"), minimum=1),
        # API requests per minute and credential.
        "KIKET_API_RATE_LIMIT": parse_int("KIKET_API_RATE_LIMIT", env("KIKET_API_RATE_LIMIT", "1200"), minimum=1),
        # Extensions installed at loopback addresses get deliveries in development (make run), never in production.
        "KIKET_EXTENSIONS_ALLOW_LOOPBACK": parse_boolean(
            "KIKET_EXTENSIONS_ALLOW_LOOPBACK", env("KIKET_EXTENSIONS_ALLOW_LOOPBACK", "0" if production else "1")),
        # Proxies in front of the app whose X-Forwarded-For (and -Proto) are trusted: the client address
        # log-in throttling counts is then the one the outermost trusted proxy saw. 0: the socket's peer.
        "KIKET_PROXY_COUNT": parse_int("KIKET_PROXY_COUNT", env("KIKET_PROXY_COUNT", "0")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        # Lax: a cross-site form post must not arrive signed in (the session cookie is Lax too).
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_DURATION": timedelta(days=parse_int("KIKET_REMEMBER_DAYS", env("KIKET_REMEMBER_DAYS", "14"), minimum=1)),
        "WTF_CSRF_TIME_LIMIT": None,
        "SOCK_SERVER_OPTIONS": {"ping_interval": 25},
        # Where pages open their live socket. Unset: `/live` of the page's own origin (served by the web
        # process, or by the live process when a proxy routes /live to it). `make run` points it at the
        # live process's port, e.g. ws://127.0.0.1:5001/live.
        "KIKET_LIVE_URL": parse_live_url("KIKET_LIVE_URL", env("KIKET_LIVE_URL", "")),
    }


def instance_secret_key(instance_path: str) -> str:
    """Read the generated secret key under instance/, creating it once (mode 0600)."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key

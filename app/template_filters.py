"""Small Jinja filters, tests and globals for display: ages, durations, short SHAs, safe links, diagnostics."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlsplit

from flask import Flask

from app.kiket.diagnostics import group_diagnostics, severity_counts


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """`5s ago`, `3m ago`, `2h ago`, `4d ago`; empty for None."""
    if moment is None:
        return ""
    seconds = int(((now or datetime.now(timezone.utc)) - moment).total_seconds())
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def milliseconds(value: int | float | None) -> str:
    """`850 ms`, `1.2 s`; an em dash for unknown."""
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.1f} s"


def utc(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def web_url(value: object) -> bool:
    """True for an absolute http(s) URL with a host: the only values rendered as links (never javascript:, data:)."""
    if not isinstance(value, str) or any(ch.isspace() or ord(ch) < 32 for ch in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def register(app: Flask) -> None:
    app.jinja_env.filters["ago"] = ago
    app.jinja_env.filters["ms"] = milliseconds
    app.jinja_env.filters["utc"] = utc
    app.jinja_env.tests["web_url"] = web_url
    app.jinja_env.globals["diagnostic_groups"] = group_diagnostics
    app.jinja_env.globals["severity_counts"] = severity_counts

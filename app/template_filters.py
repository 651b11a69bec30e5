"""Small Jinja filters, tests and globals for display: ages, durations, short SHAs, safe links, diagnostics."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Flask

from app.kiket.diagnostics import group_diagnostics, severity_counts
from app.kiket.issue_types import web_url  # the only values rendered as links: never javascript:, data:


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


def markdown_link(url: str) -> bool:
    """Links Markdown may render (after markdown-it's normalizing): http(s) URLs with a host, `mailto:`, and links
    within this site (`/path`, `#anchor`, `?query`, `page`). Anything else with a scheme, or with something that
    could pass for one (`java%09script:`), stays text: never javascript:, data:, vbscript: or file:."""
    if not isinstance(url, str):
        return False
    head = url.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if ":" not in head:
        return not url.startswith("//") or web_url("https:" + url)
    scheme = head.split(":", 1)[0].lower()
    if scheme == "mailto":
        return len(url) > len("mailto:")
    return scheme in ("http", "https") and web_url(url)


def register(app: Flask) -> None:
    app.jinja_env.filters["ago"] = ago
    app.jinja_env.filters["ms"] = milliseconds
    app.jinja_env.filters["utc"] = utc
    app.jinja_env.tests["web_url"] = web_url
    app.jinja_env.globals["diagnostic_groups"] = group_diagnostics
    app.jinja_env.globals["severity_counts"] = severity_counts

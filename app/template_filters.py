"""Small Jinja filters for display: ages, durations, short SHAs."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Flask


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


def register(app: Flask) -> None:
    app.jinja_env.filters["ago"] = ago
    app.jinja_env.filters["ms"] = milliseconds
    app.jinja_env.filters["utc"] = utc

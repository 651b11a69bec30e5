"""Security headers on every response: a strict Content-Security-Policy, no framing, no sniffing, HSTS in production.

Pages load script and style only from our own origin: no inline `<script>`, no `on…=` handlers, no `hx-on`
(htmx evaluates it), no `style="…"` attributes. JavaScript lives in app/static/js/.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, g

HSTS = "max-age=63072000; includeSubDomains"


def websocket_origins(url: str | None) -> list[str]:
    """The origins a live-updates server at `url` is reached on (http(s) and ws(s) alike); none when unset."""
    if not url:
        return []
    parts = urlsplit(url)
    if not parts.netloc:
        return []
    secure = parts.scheme in ("https", "wss")
    return [f"{'wss' if secure else 'ws'}://{parts.netloc}", f"{'https' if secure else 'http'}://{parts.netloc}"]


def content_security_policy(*, connect: list[str], nonce: str | None = None, relaxed: bool = False) -> str:
    """The policy; `relaxed` is for the RQ dashboard, whose templates are compiled in the browser with eval."""
    script = ["'self'"] + ([f"'nonce-{nonce}'"] if nonce else []) + (["'unsafe-eval'"] if relaxed else [])
    style = ["'self'"] + (["'unsafe-inline'"] if relaxed else [])
    directives = {
        "default-src": ["'self'"],
        "script-src": script,
        "style-src": style,
        "img-src": ["'self'"],
        "connect-src": ["'self'", *connect],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def csp_nonce() -> str:
    """A nonce for this response's one inline script (only the RQ dashboard's own template needs one)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def relax_policy_for_this_request() -> None:
    """Let this page eval script and use inline styles (third-party pages we cannot rewrite)."""
    g.csp_relaxed = True


def init_app(app: Flask) -> None:
    connect = websocket_origins(app.config.get("KIKET_LIVE_URL"))
    production = app.config["KIKET_ENV"] == "production"
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        # A view may set a stricter policy of its own (attachments are sandboxed downloads).
        headers.setdefault("Content-Security-Policy", content_security_policy(
            connect=connect, nonce=g.get("csp_nonce"), relaxed=g.get("csp_relaxed", False)))
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if production:  # browsers ignore it over plain HTTP, so behind a TLS proxy it is always right
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response

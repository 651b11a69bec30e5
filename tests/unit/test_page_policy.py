"""The Content-Security-Policy and what templates may contain under it."""

import re
from pathlib import Path

import pytest

from app.security_headers import content_security_policy, websocket_origins
from app.template_filters import web_url

TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "templates"
# rq-dashboard's own page, copied with a nonce on its one inline script (it runs under a relaxed policy).
THIRD_PARTY = {"rq_dashboard/base.html"}

FORBIDDEN = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>\s*[^<\s]", re.I),
    "inline event handler": re.compile(r"<[^>]+\son[a-z]+\s*=", re.I),
    "hx-on (htmx evaluates it)": re.compile(r"\bhx-on", re.I),
    "style attribute": re.compile(r"<[^>]+\sstyle\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
    "js: value (htmx evaluates it)": re.compile(r"hx-vals\s*=\s*['\"]\s*js:", re.I),
}


def template_files():
    return sorted(p for p in TEMPLATES.rglob("*.html") if str(p.relative_to(TEMPLATES)) not in THIRD_PARTY)


@pytest.mark.parametrize("path", template_files(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_need_nothing_the_policy_refuses(path):
    text = path.read_text()
    found = [what for what, pattern in FORBIDDEN.items() if pattern.search(text)]
    assert not found, f"{path.relative_to(TEMPLATES)}: {', '.join(found)}; put script in app/static/js and styles in classes"


def test_the_checks_catch_what_they_name():
    samples = {
        "inline script": "<script>alert(1)</script>",
        "inline event handler": '<button onclick="go()">',
        "hx-on (htmx evaluates it)": '<div hx-on::after-swap="x()">',
        "style attribute": '<span style="width: 3%">',
        "javascript: URL": '<a href="javascript:go()">',
        "js: value (htmx evaluates it)": "<a hx-vals='js:{a: 1}'>",
    }
    for what, sample in samples.items():
        assert FORBIDDEN[what].search(sample), what
    assert not FORBIDDEN["inline script"].search('<script src="/static/js/kiket.js" defer></script>')


def test_policy_is_strict_by_default():
    policy = dict(part.split(" ", 1) for part in content_security_policy(connect=[]).split("; "))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert "unsafe" not in content_security_policy(connect=[])


def test_relaxed_policy_keeps_inline_handlers_out():
    policy = content_security_policy(connect=[], nonce="abc", relaxed=True)
    assert "script-src 'self' 'nonce-abc' 'unsafe-eval';" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]


@pytest.mark.parametrize(("url", "origins"), [
    (None, []),
    ("", []),
    ("http://live.example:8001", ["ws://live.example:8001", "http://live.example:8001"]),
    ("wss://live.example/ws", ["wss://live.example", "https://live.example"]),
])
def test_live_server_origins_join_connect_src(url, origins):
    assert websocket_origins(url) == origins


@pytest.mark.parametrize(("value", "linked"), [
    ("https://example.com/a?b=c", True),
    ("http://example.com", True),
    ("javascript:alert(document.domain)", False),
    ("JavaScript:alert(1)", False),
    (" javascript:alert(1)", False),
    ("java\tscript:alert(1)", False),
    ("data:text/html,<script>alert(1)</script>", False),
    ("vbscript:msgbox(1)", False),
    ("//evil.example/x", False),
    ("/relative", False),
    ("http://[::1", False),
    ("https:///no-host", False),
    (None, False),
    (42, False),
])
def test_only_http_links_render_as_links(value, linked):
    assert web_url(value) is linked


@pytest.mark.parametrize(("source", "link"), [
    ("[a](https://example.com/x)", '<a href="https://example.com/x">'),
    ("<https://example.com>", '<a href="https://example.com">'),
    ("[a](mailto:ada@example.com)", '<a href="mailto:ada@example.com">'),
    ("[a](/projects/ENG/issues/1)", '<a href="/projects/ENG/issues/1">'),
    ("[a](#comments)", '<a href="#comments">'),
    ("[a](javascript:alert(1))", None),
    ("[a](JaVaScRiPt:alert(1))", None),
    ("[a](&#x6A;avascript:alert(1))", None),
    ("[a](java&#09;script:alert(1))", None),
    ("[a](<java\tscript:alert(1)>)", None),
    ("<javascript:alert(1)>", None),
    ("[a](data:text/html,x)", None),
    ("![a](data:image/png;base64,AAAA)", None),
    ("[a](vbscript:msgbox(1))", None),
    ("[a](file:///etc/passwd)", None),
    ("[a](ftp://example.com/)", None),
    ("[a](https:no-host)", None),
])
def test_markdown_links_only_for_http_mailto_and_this_site(source, link):
    from app.blueprints.issues.views import render_markdown

    html = str(render_markdown(source))
    if link is None:
        assert "<a " not in html and "<img" not in html, html
    else:
        assert link in html, html

"""Oversized request bodies: every route that takes a body refuses one past its limit without reading it.

The request's `wsgi.input` is a tripwire that counts what the app reads, so "refused unread" is measured,
not assumed. Declared lengths are refused from the header alone; chunked bodies (no Content-Length) are
read through a stream that stops at the route's limit.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.routing import IntegerConverter, PathConverter

from tests.conftest import csrf_token, post_form

GIB = 1024 ** 3
MIB = 1024 * 1024
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class Tripwire(io.RawIOBase):
    """A request body of `size` bytes that counts how many of them were read."""

    def __init__(self, size: int, fill: bytes = b"a") -> None:
        self.size, self.fill, self.read_bytes = size, fill, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.size - self.read_bytes)
        buffer[:n] = self.fill * n
        self.read_bytes += n
        return n


class PrefixedTripwire(Tripwire):
    """`prefix` followed by filler, `size` bytes in all."""

    def __init__(self, prefix: bytes, size: int) -> None:
        super().__init__(size, b"b")
        self.prefix = prefix

    def readinto(self, buffer) -> int:
        start = self.read_bytes
        n = super().readinto(buffer)
        head = self.prefix[start:start + n]
        buffer[:len(head)] = head
        return n


def body_routes(app) -> list[tuple[str, str, str]]:
    """(method, url, endpoint) of every rule that takes a body, its arguments filled with plausible values."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.methods & set(BODY_METHODS):
            continue
        values = dict(rule.defaults or {})
        for name in rule.arguments - set(values):
            converter = rule._converters[name]
            values[name] = 1 if isinstance(converter, IntegerConverter) else \
                "workflows/a.yaml" if isinstance(converter, PathConverter) else "X"
        url = rule.build(values)[1]
        routes.extend((method, url, rule.endpoint) for method in sorted(rule.methods & set(BODY_METHODS)))
    return sorted(routes)


def row_counts(app) -> dict[str, int]:
    from app.extensions import db

    db.session.rollback()
    return {table.name: db.session.scalar(select(func.count()).select_from(table))
            for table in db.metadata.sorted_tables}


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def send(client, method: str, url: str, body: Tripwire, *, declared: int | None, headers: dict | None = None,
         content_type: str = "multipart/form-data; boundary=xyz"):
    environ = {"wsgi.input": body, "CONTENT_TYPE": content_type}
    if declared is None:
        environ["wsgi.input_terminated"] = True
    else:
        environ["CONTENT_LENGTH"] = str(declared)
    return client.open(url, method=method, headers=headers or {}, environ_overrides=environ)


@pytest.fixture
def project(app, make_user, tmp_path):
    from app.services.projects import create_project
    from app.services.runtime import issues

    app.config["STORAGE_DIR"] = str(tmp_path / "storage")
    owner = make_user("owner@example.com", "owner")
    project = create_project(owner, "LEG", "Legal", "", "kanban")
    issues.create_issue(project, owner, issue_type="task", title="Sign the NDA")
    return project


def test_the_route_list_covers_the_app(app):
    routes = body_routes(app)
    endpoints = {endpoint for _, _, endpoint in routes}
    assert {"hooks.github", "issues.attachments", "auth.login", "projects.override_save", "api.create_issue"} <= endpoints
    assert len(routes) >= 70


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_a_declared_gigabyte_is_refused_unread_on_every_route(app, client, login, project, signed_in):
    if signed_in:
        login()
    before = row_counts(app)
    storage = Path(app.config["STORAGE_DIR"])
    stored = files_under(storage)
    failures = []
    for method, url, endpoint in body_routes(app):
        body = Tripwire(GIB)
        response = send(client, method, url, body, declared=GIB)
        refused = response.status_code == 413 or (
            not signed_in and (response.status_code in (401, 403) or
                               (response.status_code in (302, 303) and "/login" in response.location)))
        if not refused or body.read_bytes:
            failures.append((method, url, response.status_code, body.read_bytes))
    assert failures == []
    assert row_counts(app) == before
    assert files_under(storage) == stored


def test_anonymous_uploads_to_an_attachment_url_get_the_form_limit(app, client, project):
    body = Tripwire(2 * MIB)
    response = send(client, "POST", "/projects/LEG/issues/1/attachments", body, declared=2 * MIB)
    assert response.status_code == 413 and body.read_bytes == 0
    assert "at most 1 MiB" in response.get_data(as_text=True)


def test_chunked_bodies_stop_at_the_limit(app, client, login, project):
    login()
    before = row_counts(app)
    # An ordinary form: read up to its limit, then 413.
    body = Tripwire(64 * MIB)
    response = send(client, "POST", "/projects/LEG/issues/1/comments", body, declared=None)
    assert response.status_code == 413 and body.read_bytes <= MIB + 64 * 1024
    # A urlencoded form is refused too, not handled cut short at the limit.
    token = csrf_token(client)
    prefix = f"csrf_token={token}&body=".encode()
    response = send(client, "POST", "/projects/LEG/issues/1/comments", PrefixedTripwire(prefix, 8 * MIB),
                    declared=None, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    # An attachment: up to the attachment limit, and nothing lands in storage.
    app.config["KIKET_MAX_ATTACHMENT_BYTES"] = 256 * 1024
    body = Tripwire(64 * MIB)
    response = send(client, "POST", "/projects/LEG/issues/1/attachments", body, declared=None)
    assert response.status_code == 413 and body.read_bytes <= 256 * 1024 + 128 * 1024
    assert "Attachments are limited to 256 KiB" in response.get_data(as_text=True)
    assert files_under(Path(app.config["STORAGE_DIR"]) / "attachments") == []
    # The GitHub hook: 25 MiB, answered in JSON.
    body = Tripwire(64 * MIB)
    response = send(client, "POST", "/hooks/github", body, declared=None,
                    headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"})
    assert response.status_code == 413 and body.read_bytes <= 25 * MIB + 64 * 1024
    assert response.get_json()["ok"] is False and "too large" in response.get_json()["error"]
    assert row_counts(app) == before


def test_limits_per_route(app, client, login, project):
    login()
    # Ordinary forms: 1 MiB.
    response = send(client, "POST", "/projects/LEG/issues/1/comments", Tripwire(MIB + 1), declared=MIB + 1)
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "This form accepts at most 1 MiB" in page and "<html" in page
    # HTMX gets the fragment.
    response = send(client, "POST", "/projects/LEG/issues/1/comments", Tripwire(MIB + 1), declared=MIB + 1,
                    headers={"HX-Request": "true"})
    assert response.status_code == 413 and "<html" not in response.get_data(as_text=True)
    # The overrides editor takes YAML files up to 2 MiB: 1.5 MiB passes the limit (and fails the CSRF check).
    body = Tripwire(3 * MIB // 2)
    response = send(client, "POST", "/projects/LEG/configuration/overrides", body, declared=3 * MIB // 2)
    assert response.status_code != 413 and body.read_bytes == 3 * MIB // 2
    response = send(client, "POST", "/projects/LEG/configuration/overrides", Tripwire(2 * MIB + 1),
                    declared=2 * MIB + 1)
    assert response.status_code == 413
    assert "Configuration files saved in the editor are limited to 2 MiB" in response.get_data(as_text=True)
    # The GitHub hook: 25 MiB.
    response = send(client, "POST", "/hooks/github", Tripwire(25 * MIB + 1), declared=25 * MIB + 1)
    assert response.status_code == 413 and response.is_json


def test_an_attachment_within_its_limit_is_stored(app, client, login, project):
    from app.extensions import db
    from app.models import Attachment

    app.config["KIKET_MAX_ATTACHMENT_BYTES"] = 3 * MIB
    login()
    data = b"%PDF" + b"x" * (3 * MIB - 4)
    response = post_form(client, "/projects/LEG/issues/1/attachments",
                         {"file": (io.BytesIO(data), "contract.pdf")}, content_type="multipart/form-data")
    assert response.status_code in (200, 303), response.get_data(as_text=True)[:300]
    assert db.session.scalar(select(Attachment.size)) == len(data)


def test_large_editor_saves_are_taken(app, client, login, project):
    """A YAML file at the configuration's file limit (512 KiB), percent-encoded to three times that, is past the
    form limit but reaches the editor (whose own checks apply)."""
    login()
    text = "#:{}\n" * (100 * 1024) + "workflow:\n  id: x\n"
    response = post_form(client, "/projects/LEG/configuration/overrides",
                         {"path": "workflows/big.yaml", "yaml_text": text, "version": "0"})
    assert response.status_code != 413, response.get_data(as_text=True)[:300]


def test_a_throttled_hook_request_is_refused_unread(app, client):
    app.config["KIKET_GITHUB_HOOK_RATE_LIMIT"] = 1
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"}
    assert send(client, "POST", "/hooks/github", Tripwire(10), declared=10, headers=headers).status_code == 400
    body = Tripwire(MIB)
    response = send(client, "POST", "/hooks/github", body, declared=MIB, headers=headers)
    assert response.status_code == 429 and "Retry-After" in response.headers and body.read_bytes == 0

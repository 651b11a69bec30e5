"""Security headers, cookies and the RQ dashboard's cross-site guard, through the app."""

import re
from datetime import datetime, timezone

import pytest
from rq import Queue

from tests.conftest import csrf_token, post_form


def policy_of(response) -> dict[str, str]:
    return dict(part.split(" ", 1) for part in response.headers["Content-Security-Policy"].split("; "))


@pytest.mark.parametrize("path", ["/login", "/projects", "/no-such-page", "/up", "/repositories/"])
def test_every_response_carries_the_headers(client, owner, login, path):
    login()
    response = client.get(path)
    policy = policy_of(response)
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # development


def test_production_adds_hsts_and_the_live_server_to_connect_src(settings):
    from app.factory import create_app

    app = create_app({**settings, "KIKET_ENV": "production", "KIKET_LIVE_URL": "https://live.example:8443"})
    response = app.test_client().get("/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert policy_of(response)["connect-src"] == "'self' wss://live.example:8443 https://live.example:8443"


def test_remember_cookie_is_lax_http_only_and_short_lived(client, owner):
    response = post_form(client, "/login", {"email": "owner@example.com", "password": "correct horse battery",
                                            "remember": "1"})
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token="))
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie
    assert "Max-Age=1209600" in cookie or "Expires=" in cookie


def test_rq_dashboard_runs_its_script_by_nonce_only(client, owner, login):
    login()
    response = client.get("/rq/")
    policy = policy_of(response)
    nonce = re.search(r"'nonce-([^']+)'", policy["script-src"]).group(1)
    assert f'nonce="{nonce}"' in response.get_data(as_text=True)
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["frame-ancestors"] == "'none'"
    assert "nonce" not in policy_of(client.get("/projects"))["script-src"]


@pytest.fixture
def scheduled_job(app):
    queue = Queue("default", connection=app.extensions["redis"])
    queue.enqueue_at(datetime(2100, 1, 1, tzinfo=timezone.utc), "jobs.default.sweep")
    return queue


@pytest.mark.parametrize(("headers", "allowed"), [
    ({"Origin": "https://evil.example"}, False),
    ({"Referer": "https://evil.example/page"}, False),
    ({"Origin": "null"}, False),
    ({}, False),
    ({"Origin": "http://localhost"}, True),
    ({"Referer": "http://localhost/rq/"}, True),
])
def test_rq_dashboard_actions_need_this_sites_origin(client, owner, login, scheduled_job, headers, allowed):
    login()
    response = client.post("/rq/queue/default/scheduled/empty", headers=headers)
    assert response.status_code == (200 if allowed else 403), response.get_data(as_text=True)
    assert scheduled_job.scheduled_job_registry.count == (0 if allowed else 1)


def test_rq_dashboard_actions_accept_the_csrf_token_without_an_origin(client, owner, login, scheduled_job):
    login()
    response = client.post("/rq/queue/default/scheduled/empty", headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 200
    assert scheduled_job.scheduled_job_registry.count == 0

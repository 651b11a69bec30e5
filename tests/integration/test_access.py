"""Authorization on every route: anonymous requests are refused unless explicitly public."""

import pytest
from werkzeug.routing import IntegerConverter

PUBLIC = {"/login", "/signup", "/join/<token>", "/up", "/static/<path:filename>",
          # Public by design: the API's document and reference page, the keys that verify runtime tokens, and
          # the OAuth token endpoint (its client credentials are the authentication).
          "/api/v1/openapi.json", "/api/docs", "/.well-known/jwks.json", "/api/v1/oauth/token"}


def concrete(rule) -> str:
    """A URL matching the rule, with 0 for numbers and "x" for the rest."""
    values = {name: 0 if isinstance(conv, IntegerConverter) else "x" for name, conv in rule._converters.items()}
    return rule.build(values)[1]


def test_every_non_public_route_refuses_anonymous_requests(app, client, make_user):
    make_user("ada@example.com")  # past the empty-installation sign-up state
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.rule in PUBLIC:
            continue
        # A websocket rule only matches a handshake (the live socket): ask for one.
        upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="} if rule.websocket else {}
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(concrete(rule), method=method, headers={"X-CSRFToken": "", **upgrade})
            if response.status_code in (301, 308):  # werkzeug's canonical-URL redirect: follow it
                response = client.open(response.headers["Location"], method=method, headers={"X-CSRFToken": ""})
            if method == "GET":
                assert response.status_code in (302, 401), (rule.rule, method, response.status_code)
                if response.status_code == 302:
                    assert "/login" in response.headers["Location"], rule.rule
            else:
                # CSRF refuses first for forms; either way nothing runs.
                assert response.status_code in (302, 400, 401, 405), (rule.rule, method, response.status_code)
            checked += 1
    assert checked > 20


@pytest.mark.parametrize("path", ["/projects", "/admin/", "/repositories/", "/rq/"])
def test_htmx_requests_get_401_with_a_redirect_to_login(client, make_user, path):
    make_user("ada@example.com")
    response = client.get(path, headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


def test_rq_dashboard_is_for_admins_only(client, make_user, login):
    from tests.conftest import post_form

    make_user("ada@example.com", "owner")
    make_user("bob@example.com", "member")
    login("bob@example.com")
    assert client.get("/rq/").status_code == 403
    assert client.get("/admin/").status_code == 403
    post_form(client, "/logout")
    login("ada@example.com")
    response = client.get("/rq/")
    assert response.status_code == 200 and "RQ" in response.get_data(as_text=True)
    assert client.get("/rq/requeue/configuration").status_code == 405


def test_anonymous_visitor_to_rq_gets_the_login_page(client, make_user):
    make_user("ada@example.com")
    response = client.get("/rq/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]

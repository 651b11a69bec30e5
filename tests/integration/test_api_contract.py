"""Details of the wire contract an API client meets: camelCase names in every error text, bodiless
responses without a content type, and RFC 6749 §5.2 errors from the OAuth token endpoint."""

from __future__ import annotations

from tests.support.api import auth, project, token  # noqa: F401  (fixtures)
from tests.integration.test_extension_gateway import extension, install, live  # noqa: F401  (fixtures)


def test_service_errors_name_fields_in_camel_case(client, token):
    response = client.post("/api/v1/issues", headers=auth(token),
                           json={"projectKey": "ENG", "title": "Typed", "issueType": "no_such_type"})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert list(body["errors"]) == ["issueType"]
    assert body["detail"].startswith("issueType: ") and "issue_type" not in body["detail"]


def test_bodiless_responses_have_no_content_type(client, token):
    created = client.post("/api/v1/webhooks", headers=auth(token), json={
        "url": "https://example.com/hook", "events": ["issue.created"], "projectKey": "ENG"})
    assert created.status_code == 201, created.get_data(as_text=True)
    deleted = client.delete(f"/api/v1/webhooks/{created.get_json()['id']}", headers=auth(token))
    assert deleted.status_code == 204 and deleted.data == b""
    assert "Content-Type" not in deleted.headers


def test_token_endpoint_errors_follow_rfc_6749(client, token, extension):
    installed = install(client, token, extension)
    form = {"client_id": installed["clientId"], "client_secret": installed["clientSecret"]}
    for data, error in (({**form, "grant_type": "password"}, "unsupported_grant_type"),
                        (form, "invalid_request")):
        response = client.post("/api/v1/oauth/token", data=data)
        assert response.status_code == 400, response.get_data(as_text=True)
        body = response.get_json()
        assert body["error"] == error and body["error_description"] and "grant_type" in body["errors"]
    refused = client.post("/api/v1/oauth/token", data={**form, "grant_type": "client_credentials",
                                                        "client_secret": "wrong"})
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_client"
    assert refused.headers["WWW-Authenticate"].startswith("Basic ")
    telemetry = client.post("/api/v1/ext/telemetry", json={"event": "issue.created"},
                            headers=auth(installed["apiKey"]))
    assert telemetry.status_code == 202 and "Content-Type" not in telemetry.headers
    document = client.get("/api/v1/openapi.json").get_json()
    assert "422" not in document["paths"]["/api/v1/oauth/token"]["post"]["responses"]


def test_an_empty_body_is_an_empty_object(client, token):
    for headers in ({}, {"Content-Type": "application/x-www-form-urlencoded"}):
        response = client.post("/api/v1/projects", headers={**auth(token), **headers})
        assert response.status_code == 422, response.get_data(as_text=True)
        assert {"key", "name"} <= set(response.get_json()["errors"])
    assert client.post("/api/v1/projects", headers=auth(token), data="key=OPS").status_code == 415


def test_every_response_counts_against_the_rate_limit(client, token):
    big = client.post("/api/v1/projects", headers=auth(token), data="x" * (1024 * 1024 + 1),
                      content_type="application/json")
    assert big.status_code == 413 and big.headers["X-RateLimit-Remaining"]
    wrong = client.put("/api/v1/projects", headers=auth(token), json={})
    assert wrong.status_code == 405 and wrong.headers["X-RateLimit-Limit"]


def test_text_no_column_can_hold_is_422_naming_where(client, token):
    """PostgreSQL refuses NUL in text and UTF-8 has no lone surrogates: both were a 500 before."""
    body = '{"projectKey": "ENG", "title": "a\\u0000b", "labels": ["ok", "\\udb4d"], "fields": {"x\\u0000": 1}}'
    response = client.post("/api/v1/issues", headers={**auth(token), "Content-Type": "application/json"}, data=body)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert set(response.get_json()["errors"]) == {"title", "labels.1", "fields"}
    assert client.get("/api/v1/issues?q=%00", headers=auth(token)).get_json()["errors"] == {
        "q": ["Text may not contain NUL characters or unpaired surrogates."]}
    assert client.get("/api/v1/issues/ENG-%00", headers=auth(token)).status_code == 404
    assert client.get("/api/v1/issues?projectKey=ENG", headers=auth(token)).status_code == 200


def test_a_transition_with_a_stale_lock_version_is_409(client, token):
    issue = client.post("/api/v1/issues", headers=auth(token), json={"projectKey": "ENG", "title": "Locked"}).get_json()
    path = f"/api/v1/issues/{issue['key']}/transitions"
    stale = client.post(path, headers=auth(token), json={"to": "in_progress", "lockVersion": issue["lockVersion"] + 1})
    assert stale.status_code == 409 and stale.mimetype == "application/problem+json"
    moved = client.post(path, headers=auth(token), json={"to": "in_progress", "lockVersion": issue["lockVersion"]})
    assert moved.status_code == 200 and moved.get_json()["lockVersion"] == issue["lockVersion"] + 1


def test_a_connection_answered_413_serves_the_next_request(process_env, token):
    """Under gunicorn, as the Procfile runs it: the keep-alive connection survives an oversized body."""
    import http.client

    from tests.support.live_servers import server, web_command

    with server(web_command, process_env) as base:
        connection = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=30)
        connection.request("POST", "/api/v1/issues", body=b"x" * (2 * 1024 * 1024),
                           headers={**auth(token), "Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 413 and response.getheader("Content-Type") == "application/problem+json"
        response.read()
        connection.request("GET", "/api/v1/issues?projectKey=ENG", headers=auth(token))
        assert connection.getresponse().status == 200
        connection.close()

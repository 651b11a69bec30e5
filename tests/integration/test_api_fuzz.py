"""A property-based run against the OpenAPI document (schemathesis): no 5xx, and no response that contradicts
the document (status codes, content types, bodies, headers). Bounded: derandomized, few examples each.
Path parameters name existing things and the credential is always ours, so requests get past 401 and 404."""

from __future__ import annotations

import os
import threading

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance, not_a_server_error, response_headers_conformance, response_schema_conformance,
    status_code_conformance,
)
from werkzeug.serving import make_server

from app.services import projects as project_service
from app.services.gateway import credentials, extensions, subscriptions
from app.services.webhooks import delivery as webhook_delivery
from app.services.runtime import issues

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
# CI runs a few derandomized examples; `KIKET_FUZZ_EXAMPLES=200` explores longer and with fresh randomness.
EXAMPLES = int(os.environ.get("KIKET_FUZZ_EXAMPLES") or 8)
MANIFEST = """\
id: com.example.fuzz
version: 1.0.0
scopes: {read: [issue, comment], write: [comment, notification]}
configuration: {properties: {TOKEN: {secret: true}}}
"""


def test_api_matches_its_document(app, owner):
    project = project_service.create_project(owner, "ENG", "Engineering", "", "kanban")
    for n in range(3):
        issues.create_issue(project, owner, issue_type="task", title=f"Seed {n}")
    app.config["KIKET_API_RATE_LIMIT"] = 1_000_000
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["KIKET_BASE_URL"] = base
    person = {"Authorization": f"Bearer {credentials.create_personal_token(owner, 'fuzz', ['*'])[1]}"}
    # The callbacks answer only an extension's credentials: they get its key (every scope of the manifest).
    installed = extensions.install(owner, project, MANIFEST, url="https://ext.example.com")
    extension = {"Authorization": f"Bearer {installed.api_key}"}
    # Path parameters name things that exist (random ones would stop every request at 404); a second
    # installation is the one rotated, so the first one's key keeps working.
    other = extensions.install(owner, project, MANIFEST.replace("com.example.fuzz", "com.example.other"),
                               url="https://ext.example.com")
    subscription, _ = subscriptions.create(owner, project, "https://hooks.example.com/kiket", ["issue.created"])
    delivery = webhook_delivery.deliver(project.id, subscription.url, "POST", {}, {"id": "evt_1"}, "issue.created",
                                        "whsec_fuzz-secret-value", subscription_id=subscription.id, event_id="evt_1")
    board = requests.get(f"{base}/api/v1/projects/ENG/boards", headers=person, timeout=10).json()["items"][0]["id"]
    existing = {"board_id": board, "subscription_id": delivery.subscription_id, "delivery_id": delivery.id,
                "installation_id": other.installation.id, "extension_id": "com.example.fuzz", "secret_key": "TOKEN"}
    # DELETE would remove what the other operations work on; deletion has its own tests.
    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json").exclude(method="DELETE")
    failures: dict[str, str] = {}
    statuses: dict[str, set[int]] = {}
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            headers = extension if "Extension callbacks" in (operation.tags or ()) else person

            @settings(max_examples=EXAMPLES, derandomize=EXAMPLES == 8, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def check(case):
                # The credential is ours: a generated runtime token header would win over it (and be refused).
                case.headers = {k: v for k, v in (case.headers or {}).items()
                                if k.lower() not in ("authorization", "x-kiket-runtime-token")}
                for name in case.path_parameters or {}:
                    if name == "key":
                        case.path_parameters[name] = "ENG-1" if "/issues/" in case.path else "ENG"
                    elif name in existing:
                        case.path_parameters[name] = existing[name]
                response = case.call_and_validate(headers=headers, checks=CHECKS)
                statuses.setdefault(case.operation.label, set()).add(response.status_code)

            try:
                check()
            except Exception as error:  # noqa: BLE001 - every operation is run; failures are reported together
                failures[operation.label] = str(error)[:2000]
    finally:
        server.shutdown()
    assert not failures, f"{sorted(failures)}\n\n" + "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    # The run reached past the credential checks: extensions' callbacks and people's reads answer 2xx.
    for label in ("GET /api/v1/ext/rate_limit", "GET /api/v1/extensions/{extension_id}/secrets",
                  "GET /api/v1/issues/{key}", "GET /api/v1/projects/{key}/boards/{board_id}",
                  "GET /api/v1/webhooks/{subscription_id}/deliveries"):
        assert any(200 <= code < 300 for code in statuses[label]), (label, statuses[label])

"""The `/api/v1` machinery: one declaration per endpoint (`endpoint`) gives its route, credential, scope,
input and output schemas, idempotency, and its entry in the OpenAPI document.

Every request is authenticated from its bearer key or runtime token and counted against its credential's
rate limit (anonymous ones against their address); every error is RFC 7807 `application/problem+json`.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import dataclass
from functools import wraps
from typing import Any, Callable

from flask import Blueprint, Flask, Response, current_app, g, request
from marshmallow import Schema, ValidationError, fields

from app.extensions import csrf, db
from app.kiket.extensions import SCOPES
from app.queue import redis_connection
from app.services import ratelimits
from app.services.errors import Invalid, ServiceError
from app.services.gateway import credentials, idempotency
from app.services.gateway.credentials import Credential, Unauthorized
from app.services.gateway.representations import CamelSchema, camel

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__)
csrf.exempt(bp)

PREFIX = "/api/v1"
MAX_BODY = 1024 * 1024
RATE_WINDOW_S = 60
JSON_TYPES = ("application/json",)
PROBLEM_TYPE = "application/problem+json"
# Problem `type`s beyond plain HTTP statuses, documented on the reference page.
PROBLEM_TYPES = {
    "invalid": "Some input is invalid; `errors` names each field and what is wrong with it.",
    "transition-blocked": "A gate refused the transition; `gates` lists each gate's verdict and reasons.",
    "insufficient-scope": "The credential lacks the scope the endpoint needs; `missingScope` names it.",
    "rate-limited": "Too many requests from this credential; wait `Retry-After` seconds.",
    "idempotency-key-reused": "The Idempotency-Key was used before with a different request.",
    "conflict": "The resource changed meanwhile, or a request with this Idempotency-Key is in flight.",
}


def problem_type(slug: str) -> str:
    return f"/api/docs#problem-{slug}"


@dataclass
class Endpoint:
    """What the OpenAPI document and the request handling know of one operation."""

    rule: str
    method: str
    name: str
    summary: str
    tags: tuple[str, ...]
    scope: str | None = None
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    status: int = 200
    many: bool = False
    paginated: bool = False
    public: bool = False
    extension_only: bool = False
    form: bool = False
    # Input errors as RFC 6749 §5.2 says (400 with `error`), for OAuth client libraries.
    oauth: bool = False
    errors: tuple[int, ...] = ()
    description: str = ""
    response_description: str = ""
    # Left out of the OpenAPI document (catch-alls).
    hidden: bool = False


ENDPOINTS: list[Endpoint] = []


def problem(status: int, title: str, detail: str = "", *, slug: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """An RFC 7807 response."""
    body = {"type": problem_type(slug) if slug else "about:blank", "title": title, "status": status,
            "detail": detail or title, **extra}
    response = Response(json.dumps(body, ensure_ascii=False, default=str), status, mimetype=PROBLEM_TYPE)
    response.headers.update(headers or {})
    return response


# Services name fields as the models do; the API's names are camelCase and its own.
FIELD_NAMES = {"custom_fields": "fields", "assignee_id": "assignee", "parent_id": "parentKey"}


def api_field(name: str) -> str:
    """`custom_fields.severity` -> `fields.severity`, `issue_type` -> `issueType`."""
    head, dot, rest = str(name).partition(".")
    return (FIELD_NAMES.get(head) or camel(head)) + dot + rest


def _errors(problems: dict[str, Any]) -> dict[str, list[str]]:
    return {api_field(name): [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
            for name, msgs in problems.items()}


def _api_detail(error: Invalid) -> str:
    """The service's own summary names fields as the models do (`custom_fields.severity`); say `fields.severity`."""
    if error.detail != "; ".join(f"{k}: {v}" for k, v in error.problems.items()):
        return error.detail
    return "; ".join(f"{api_field(k)}: {v}" for k, v in error.problems.items())


def service_problem(error: ServiceError) -> Response:
    """The problem response of an error a service raised."""
    from app.services.runtime.transitions import TransitionBlocked

    if isinstance(error, TransitionBlocked):
        gates = [{"gate": g.gate, "passed": g.passed, "reasons": list(g.reasons)} for g in error.verdict.gates]
        return problem(422, "Transition blocked", error.detail, slug="transition-blocked",
                       errors=_errors(error.problems), gates=gates)
    if isinstance(error, idempotency.KeyReused):
        return problem(422, "Idempotency-Key reused", error.detail, slug="idempotency-key-reused",
                       errors=_errors(error.problems))
    if isinstance(error, Invalid):
        return problem(422, "Invalid input", _api_detail(error), slug="invalid", errors=_errors(error.problems))
    if isinstance(error, Unauthorized):
        oauth = getattr(error, "error", None)
        extra = {"error": oauth, "error_description": error.detail} if oauth else {}
        # RFC 6749 §5.2: a refused client is challenged with the scheme it authenticates with.
        scheme = "Basic" if oauth == "invalid_client" else "Bearer"
        headers = {"WWW-Authenticate": f'{scheme} realm="kiket"'} if error.status == 401 else {}
        return problem(error.status, "Unauthorized" if error.status == 401 else "Bad request", error.detail,
                       headers=headers, **extra)
    slug = "conflict" if error.status == 409 else None
    return problem(error.status, error.title, error.detail, slug=slug)


def validation_problem(error: ValidationError, where: str = "") -> Response:
    messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    flat: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            flat.setdefault(prefix or "_schema", []).extend(str(v) for v in (value if isinstance(value, list) else [value]))

    walk("", messages)
    detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in flat.items())
    return problem(422, "Invalid input", f"{where}{detail}", slug="invalid", errors=flat)


def credential() -> Credential | None:
    return g.get("api_credential")


def _authenticate() -> None:
    """Resolve the credential and count the request against its rate limit (before routing)."""
    g.api_credential, g.api_auth_error = None, None
    header = request.headers.get("Authorization", "")
    bearer = header[7:].strip() if header[:7].lower() == "bearer " else None
    try:
        g.api_credential = credentials.authenticate(bearer, request.headers.get("X-Kiket-Runtime-Token"))
    except Unauthorized as error:
        g.api_auth_error = error
    cred = g.api_credential
    key = cred.name if cred is not None else f"ip:{request.remote_addr}"
    g.api_rate = ratelimits.hit(redis_connection(), f"api:{key}", current_app.config["KIKET_API_RATE_LIMIT"],
                                RATE_WINDOW_S)


def _rate_headers(window: ratelimits.Window) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(window.limit), "X-RateLimit-Remaining": str(window.remaining),
            "X-RateLimit-Reset": str(window.reset_in)}


def _is_api() -> bool:
    return request.path.startswith(PREFIX + "/") or request.path == "/.well-known/jwks.json"


# gunicorn drains at most 64 KiB of a body the app left unread, then closes the connection it had just
# answered as keep-alive: the client's next request on it fails. Bodies up to this size are read here instead.
DRAIN_MAX = 4 * MAX_BODY


def _drain(length: int) -> None:
    if length > DRAIN_MAX:
        return
    stream = request.environ["wsgi.input"]
    while length > 0:
        chunk = stream.read(min(65536, length))
        if not chunk:
            return
        length -= len(chunk)


def init_app(app: Flask) -> None:
    @app.before_request
    def api_before():
        if not _is_api():
            return None
        # Headers only: the body is not read yet, so an oversized one costs nothing here.
        _authenticate()
        window = g.api_rate
        if not window.allowed:
            return problem(429, "Too many requests",
                           f"This credential may make {window.limit} requests a minute; wait {window.reset_in} s.",
                           slug="rate-limited", headers={"Retry-After": str(window.reset_in)})
        if (request.content_length or 0) > MAX_BODY:
            _drain(request.content_length)
            return problem(413, "Payload too large", f"Request bodies are limited to {MAX_BODY // 1024} KiB.")
        request.max_content_length = MAX_BODY
        return None

    @app.after_request
    def api_after(response: Response) -> Response:
        window = g.get("api_rate")
        if window is not None and _is_api():
            response.headers.update(_rate_headers(window))
        return response


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_TEXT = "Text may not contain NUL characters or unpaired surrogates."


def unstorable(value: Any, path: str = "") -> dict[str, list[str]]:
    """The places (`title`, `metadata.x`) of text no database column can hold: NUL, lone surrogates."""
    found: dict[str, list[str]] = {}
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            found[path or "_schema"] = [UNSTORABLE_TEXT]
    elif isinstance(value, dict):
        for key, inner in value.items():
            where = f"{path}.{key}" if path else str(key)
            if _UNSTORABLE.search(str(key)):
                found[path or "_schema"] = [UNSTORABLE_TEXT]
            else:
                found.update(unstorable(inner, where))
    elif isinstance(value, list):
        for n, inner in enumerate(value):
            found.update(unstorable(inner, f"{path}.{n}" if path else str(n)))
    return found


def _unstorable_problem(found: dict[str, list[str]]) -> Response:
    return problem(422, "Invalid input", "; ".join(f"{k}: {' '.join(v)}" for k, v in found.items()),
                   slug="invalid", errors=found)


@functools.cache
def _schema(schema: type[Schema], many: bool = False) -> Schema:
    """One instance per schema: building a marshmallow schema costs more than using it."""
    return schema(many=many)


def _parse_body(ep: Endpoint) -> dict | Response:
    if ep.form:
        data: Any = request.form.to_dict()
        if not data and request.is_json:
            data = request.get_json(silent=True) or {}
    else:
        mimetype = request.mimetype or ""
        raw = request.get_data(cache=True)
        if not raw:
            data = {}  # `curl -X POST …/sync`: no body is an empty object (then required fields are 422)
        elif mimetype not in JSON_TYPES:
            return problem(415, "Unsupported media type", "Send the body as application/json.")
        else:
            try:
                data = json.loads(raw or b"null")
            except ValueError as error:
                return problem(400, "Malformed JSON", f"The body is not valid JSON: {error}.")
        if not isinstance(data, dict):
            return problem(422, "Invalid input", "The body must be a JSON object.", slug="invalid",
                           errors={"_schema": ["Must be a JSON object."]})
    found = unstorable(data)
    if found:
        if ep.oauth:
            return problem(400, "Bad request", UNSTORABLE_TEXT, error="invalid_request",
                           error_description=UNSTORABLE_TEXT, errors=found)
        return _unstorable_problem(found)
    try:
        return _schema(ep.body).load(data)
    except ValidationError as error:
        if ep.oauth:
            return oauth_problem(error, data)
        return validation_problem(error)


def oauth_problem(error: ValidationError, data: Any) -> Response:
    """A token request's invalid input: 400 with the RFC 6749 §5.2 `error` code (and the per-field `errors`)."""
    flat = validation_problem(error).get_json()["errors"]
    unsupported = isinstance(data, dict) and data.get("grant_type") and "grant_type" in flat
    code = "unsupported_grant_type" if unsupported else "invalid_request"
    detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in flat.items())
    return problem(400, "Bad request", detail, error=code, error_description=detail, errors=flat)


def _parse_query(ep: Endpoint) -> dict | Response:
    schema = _schema(ep.query)
    args = {k: v for k, v in request.args.items() if k in {f.data_key or n for n, f in schema.fields.items()}}
    unknown = sorted(set(request.args) - set(args))
    found = unstorable(args)
    if found:
        return _unstorable_problem(found)
    try:
        data = schema.load(args)
    except ValidationError as error:
        return validation_problem(error)
    if unknown:
        return problem(422, "Invalid input", f"Unknown query parameter(s): {', '.join(unknown)}.", slug="invalid",
                       errors={name: ["Unknown parameter."] for name in unknown})
    return data


def _render(ep: Endpoint, result: Any) -> Response:
    if isinstance(result, Response):
        return result
    payload, status, headers = (*result, {})[:3] if isinstance(result, tuple) else (result, ep.status, {})
    if ep.response is not None and payload is not None:
        payload = _schema(ep.response, ep.many).dump(payload)
    body = b"" if payload is None else json.dumps(payload, ensure_ascii=False, default=str).encode()
    response = Response(body, status, mimetype="application/json")
    if payload is None:
        del response.headers["Content-Type"]
    response.headers.update(headers)
    return response


MAX_ID = 2**31 - 1


def _run(ep: Endpoint, fn: Callable, kwargs: dict) -> Response:
    cred = credential()
    if any(isinstance(v, int) and v > MAX_ID for v in kwargs.values()) or unstorable(kwargs):
        return problem(404, "Not found", "No such resource.")
    if not ep.public:
        if cred is None:
            error = g.get("api_auth_error") or Unauthorized(
                "Send an API key or runtime token: `Authorization: Bearer …` or `X-Kiket-Runtime-Token: …`.")
            return service_problem(error)
        if ep.extension_only and cred.installation is None:
            return problem(403, "Forbidden", "Only an extension's credentials can call this endpoint.")
        if ep.scope and not cred.allows(ep.scope):
            return problem(403, "Insufficient scope", f"This credential lacks the scope {ep.scope}.",
                           slug="insufficient-scope", missingScope=ep.scope,
                           headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{ep.scope}"'})
    args: dict[str, Any] = {}
    if ep.query is not None:
        parsed = _parse_query(ep)
        if isinstance(parsed, Response):
            return parsed
        args["query"] = parsed
    if ep.body is not None:
        parsed = _parse_body(ep)
        if isinstance(parsed, Response):
            return parsed
        args["data"] = parsed
    record_id = None
    key = request.headers.get("Idempotency-Key")
    if key is not None and cred is not None and request.method in ("POST", "PATCH"):
        fingerprint = idempotency.request_hash(request.method, request.path, request.query_string,
                                               request.get_data(cache=True))
        try:
            claimed = idempotency.begin(cred.name, key, fingerprint)
        except ServiceError as error:
            return service_problem(error)
        if isinstance(claimed, idempotency.Replay):
            response = Response(claimed.body, claimed.status)
            response.headers.update(claimed.headers)
            response.headers["Idempotent-Replayed"] = "true"
            return response
        record_id = claimed
    try:
        response = _render(ep, fn(cred, **args, **kwargs))
    except ServiceError as error:
        db.session.rollback()
        response = service_problem(error)
    except Exception:
        if record_id is not None:
            idempotency.abandon(record_id)
        raise
    if record_id is not None:
        idempotency.finish(record_id, response.status_code, dict(response.headers), response.get_data())
    return response


def endpoint(rule: str, method: str, *, summary: str, tags: tuple[str, ...] | str, scope: str | None = None,
             name: str | None = None, **options: Any) -> Callable:
    """Declare an API operation: the view gets the credential, then `query`/`data` when declared, then URL values."""
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def decorate(fn: Callable) -> Callable:
        ep = Endpoint(rule=rule, method=method, name=name or fn.__name__, summary=summary,
                      tags=(tags,) if isinstance(tags, str) else tuple(tags), scope=scope,
                      description=(fn.__doc__ or "").strip(), **options)

        @wraps(fn)
        def view(**kwargs):
            return _run(ep, fn, kwargs)

        bp.add_url_rule(rule, endpoint=ep.name, view_func=view, methods=[method])
        ENDPOINTS.append(ep)
        return fn

    return decorate


# Pagination

_pages: dict[type, type] = {}


def page_of(schema: type[Schema]) -> type[Schema]:
    """`{items: [...], nextCursor}` of a schema (one class per item schema, for the OpenAPI components)."""
    if schema not in _pages:
        name = schema.__name__.removesuffix("Schema") + "PageSchema"
        _pages[schema] = type(name, (CamelSchema,), {
            "items": fields.List(fields.Nested(schema), required=True),
            "next_cursor": fields.String(required=True, allow_none=True,
                                         metadata={"description": "Pass as `cursor` for the next page; null at the end"}),
        })
    return _pages[schema]

"""Request body limits, checked from `Content-Length` before anything reads the body.

Every request gets the limit of its route (below), before CSRF or login checks run:

- a declared `Content-Length` above it is answered 413 at once, nothing read, nothing written;
- a body without `Content-Length` (chunked) is read through a stream capped at the limit (413 when it passes);
- requests from nobody signed in get the ordinary form limit on every route but `/hooks/github`, so an
  anonymous upload to an attachment URL is refused before a byte of it is parsed.

Limits (settings in `app/config.py`): attachment uploads `KIKET_MAX_ATTACHMENT_BYTES` plus multipart
overhead; `/hooks/github` 25 MiB (GitHub caps its payloads at 25 MB); the overrides/defaults editor
`KIKET_MAX_CONFIG_FORM_BYTES` (YAML files); every other form `KIKET_MAX_FORM_BYTES`. `MAX_CONTENT_LENGTH`
is the largest of them, a backstop for anything that would read a body before this check. The API
(`/api/`) applies its own limit (app/blueprints/api/core.py). Multipart file parts of every route but
attachments stay in memory (they are bounded by the form limit) instead of spooling to a temporary file.
"""

from __future__ import annotations

from flask import Flask, current_app, jsonify, request
from flask.wrappers import Request
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream, get_input_stream

MIB = 1024 * 1024
GITHUB_HOOK_BYTES = 25 * MIB
# Multipart boundaries, part headers, the CSRF token and the document key around an attachment's bytes.
MULTIPART_OVERHEAD_BYTES = 64 * 1024

ATTACHMENT_ENDPOINTS = frozenset({"issues.attachments"})
HOOK_ENDPOINTS = frozenset({"hooks.github"})
# The overrides/defaults editor (`projects.override_*`, `admin.default_*`) posts whole YAML files.
CONFIG_ENDPOINT_PREFIXES = ("projects.override_", "admin.default_")


def backstop(settings: dict) -> int:
    """`MAX_CONTENT_LENGTH`: the largest route limit."""
    return max(settings["KIKET_MAX_ATTACHMENT_BYTES"] + MULTIPART_OVERHEAD_BYTES, GITHUB_HOOK_BYTES,
               settings["KIKET_MAX_CONFIG_FORM_BYTES"], settings["KIKET_MAX_FORM_BYTES"])


def route_limit(endpoint: str | None, *, signed_in: bool) -> tuple[str, int]:
    """(kind, bytes) a request to `endpoint` may carry: kind is attachment, hook, config or form."""
    config = current_app.config
    form = ("form", config["KIKET_MAX_FORM_BYTES"])
    if endpoint in HOOK_ENDPOINTS:
        return "hook", GITHUB_HOOK_BYTES
    if not signed_in:
        return form
    if endpoint in ATTACHMENT_ENDPOINTS:
        return "attachment", config["KIKET_MAX_ATTACHMENT_BYTES"] + MULTIPART_OVERHEAD_BYTES
    if endpoint and endpoint.startswith(CONFIG_ENDPOINT_PREFIXES):
        return "config", config["KIKET_MAX_CONFIG_FORM_BYTES"]
    return form


def human_size(size: int) -> str:
    """`10 MiB`, `1.5 MiB`, `512 KiB`."""
    if size >= MIB:
        return f"{size / MIB:.1f}".removesuffix(".0") + " MiB"
    return f"{max(1, size // 1024)} KiB"


def too_large(kind: str, limit: int):
    """The 413 answer: JSON for the GitHub hook, the error page (or HTMX fragment) otherwise."""
    if kind == "hook":
        return jsonify({"ok": False, "error": f"payload too large (limit {human_size(limit)})"}), 413
    from app.blueprints.errors import respond

    if kind == "attachment":
        detail = f"Attachments are limited to {human_size(current_app.config['KIKET_MAX_ATTACHMENT_BYTES'])}."
    elif kind == "config":
        detail = f"Configuration files saved in the editor are limited to {human_size(limit)}."
    else:
        detail = f"This form accepts at most {human_size(limit)}."
    return respond(413, "Too large", detail + " Nothing was saved.")


class StrictMaxStream(LimitedStream):
    """A body capped at a maximum whose `read()` of everything refuses one that goes on past it.

    werkzeug's `readall` stops quietly at the maximum, so a chunked urlencoded form (or JSON) past the
    limit would be handled cut short; here it is a 413 like every other read past the limit.
    """

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted and self._stream.read(1):
            raise RequestEntityTooLarge()
        return data


class LimitedRequest(Request):
    """Bodies capped strictly at the route's limit; multipart file parts stay in memory unless the route takes
    attachments (the form limit bounds them), so no other route writes a temporary file."""

    @cached_property
    def stream(self):
        if self.shallow:
            raise RuntimeError("This request was created with 'shallow=True', reading from the input stream is disabled.")
        stream = get_input_stream(self.environ, max_content_length=self.max_content_length)
        if isinstance(stream, LimitedStream) and stream._limit_is_max:
            return StrictMaxStream(stream._stream, stream.limit, is_max=True)
        return stream

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        if getattr(self, "_kiket_limit_kind", None) == "attachment":
            return super()._get_file_stream(total_content_length, content_type, filename, content_length)
        import io

        return io.BytesIO()


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def return_large_buffers_to_the_system() -> None:
    """Make glibc serve every allocation above 1 MiB with its own mmap, unmapped again when freed.

    A large body is read in large blocks. By default glibc raises its mmap threshold after the first such
    block is freed (up to 32 MiB) and then keeps later ones in the thread's heap for reuse: one hostile
    25 MiB hook body per worker thread would leave the process that much bigger for good. A fixed
    threshold turns that off. Elsewhere (not glibc) nothing happens.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, MIB)
    except (OSError, AttributeError):
        pass


def _is_api() -> bool:
    from app.blueprints.api.core import _is_api as is_api

    return is_api()


def limit_body():
    """before_request, first of all: apply the route's limit; refuse a declared oversized body unread."""
    if request.method in ("GET", "HEAD", "OPTIONS") and not request.content_length:
        return None
    if _is_api():
        return None  # the API's own before_request does the same with RFC 7807 answers
    signed_in = request.endpoint in HOOK_ENDPOINTS or bool(current_user.is_authenticated)
    kind, limit = route_limit(request.endpoint, signed_in=signed_in)
    request._kiket_limit_kind = kind
    request.max_content_length = limit  # chunked bodies: the stream stops at the limit with a 413
    request.max_form_memory_size = limit
    declared = request.content_length
    if declared is not None and declared > limit:
        current_app.logger.warning("refused %s %s: declared body of %s bytes, limit %s (%s)", request.method,
                                   request.path, declared, limit, kind)
        return too_large(kind, limit)
    return None


def init_app(app: Flask) -> None:
    return_large_buffers_to_the_system()
    app.request_class = LimitedRequest
    app.config["MAX_CONTENT_LENGTH"] = backstop(app.config)
    # First of all before_request functions: CSRF protection reads the form, so it must come after.
    app.before_request_funcs.setdefault(None, []).insert(0, limit_body)

    @app.errorhandler(RequestEntityTooLarge)
    def body_too_large(error: RequestEntityTooLarge):
        if _is_api():
            from app.blueprints.api.core import MAX_BODY, problem

            return problem(413, "Payload too large", f"Request bodies are limited to {MAX_BODY // 1024} KiB.")
        kind = getattr(request, "_kiket_limit_kind", "form")
        return too_large(kind, request.max_content_length or app.config["MAX_CONTENT_LENGTH"])

"""App-wide error handlers: RFC 7807 JSON for the API, a fragment for HTMX, a page otherwise.

A failing database must not take the error page down with it: database outages answer 503 with
`Retry-After` from a page that needs no database, and any page that cannot render falls back to it.
"""

import logging

from flask import Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from app.extensions import db
from app.htmx import is_htmx
from app.services.errors import ServiceError

log = logging.getLogger(__name__)

RETRY_AFTER_S = 30


def _respond(status: int, title: str, detail: str, headers: dict | None = None, *, standalone: bool = False):
    headers = headers or {}
    if request.path.startswith(("/api/", "/.well-known/")):
        from app.blueprints.api.core import problem

        return problem(status, title, detail, headers=headers)
    if not standalone:
        try:
            template = "errors/_problem.html" if is_htmx() else "errors/page.html"
            return render_template(template, status=status, title=title, detail=detail), status, headers
        except Exception:  # noqa: BLE001 - the layout reads the signed-in user: the database may be what failed
            _rollback()
            log.warning("error page for %s could not render; answering with the standalone page", status, exc_info=True)
    return _standalone(status, title, detail), status, headers


respond = _respond  # other modules' error answers (request_limits: 413)


def _standalone(status: int, title: str, detail: str) -> str:
    """The error page or fragment rendered without context processors: flask-login's loads the user."""
    template = "errors/_problem.html" if is_htmx() else "errors/standalone.html"
    return current_app.jinja_env.get_template(template).render(status=status, title=title, detail=detail)


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - a dead connection cannot roll back; the pool replaces it
        log.debug("rollback failed", exc_info=True)


def init_app(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        db.session.rollback()
        return _respond(error.status, error.title, error.detail)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _respond(400, "Form expired", "The form was missing its security token or it has expired. Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        # 405 keeps its Allow header.
        allow = {name: value for name, value in error.get_headers() if name == "Allow"}
        return _respond(error.code or 500, error.name, error.description or "", allow)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def database_unavailable(error: Exception):
        _rollback()
        log.error("database unavailable on %s %s: %s", request.method, request.path, error.__class__.__name__)
        return _respond(503, "Temporarily unavailable", "The database is not answering. Try again in a moment.",
                        {"Retry-After": str(RETRY_AFTER_S)}, standalone=True)

    @app.errorhandler(Exception)
    def server_error(error: Exception):
        _rollback()
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=error)
        return _respond(500, "Something went wrong", "The error has been logged. Try again in a moment.", standalone=True)

"""App-wide error handlers: RFC 7807 JSON for the API, a fragment for HTMX, a page otherwise."""

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.extensions import db
from app.htmx import is_htmx
from app.services.errors import ServiceError

log = logging.getLogger(__name__)


def _respond(status: int, title: str, detail: str):
    if request.path.startswith("/api/"):
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        return jsonify(body), status, {"Content-Type": "application/problem+json"}
    template = "errors/_problem.html" if is_htmx() else "errors/page.html"
    return render_template(template, status=status, title=title, detail=detail), status


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
        return _respond(error.code or 500, error.name, error.description or "")

    @app.errorhandler(Exception)
    def server_error(error: Exception):
        db.session.rollback()
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=error)
        return _respond(500, "Something went wrong", "The error has been logged. Try again in a moment.")

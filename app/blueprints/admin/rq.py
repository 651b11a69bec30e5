"""The RQ dashboard at /rq, for organization owners and admins only."""

from urllib.parse import urlsplit

import rq_dashboard
from flask import Flask, abort, request
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from app.extensions import csrf, login_manager
from app.security_headers import relax_policy_for_this_request

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def same_origin() -> bool:
    """The request names this site in `Origin` (or, without one, `Referer`).

    Hosts are compared, not schemes: behind a TLS-terminating proxy the app sees http while the browser says https.
    """
    source = request.headers.get("Origin") or request.headers.get("Referer")
    return bool(source) and source != "null" and urlsplit(source).netloc == request.host


def carries_csrf_token() -> bool:
    try:
        validate_csrf(request.headers.get("X-CSRFToken") or request.form.get("csrf_token"))
    except ValidationError:
        return False
    return True


def require_admin():
    """Runs before rq-dashboard's own hooks (app-level hooks come first), so strangers reach none of its code."""
    if request.blueprint != rq_dashboard.blueprint.name:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_org_admin:
        abort(403)
    # The dashboard requeues a whole queue on GET; only its POST form is allowed.
    if request.method == "GET" and request.path.startswith("/rq/requeue/"):
        abort(405)
    # Its actions carry no CSRF token: a cross-site form must not be able to empty a queue.
    if request.method not in SAFE_METHODS and not same_origin() and not carries_csrf_token():
        abort(403, "This request did not come from this site's pages.")
    # Its pages compile their HTML templates with eval and use inline styles; its one inline script gets a nonce.
    relax_policy_for_this_request()


def init_app(app: Flask) -> None:
    # An app-level hook, not one on the dashboard's module-level blueprint: Flask refuses
    # setup calls on a blueprint after its first registration, and tests build many apps.
    app.before_request(require_admin)
    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["REDIS_URL"]
    with app.app_context():
        rq_dashboard.web.setup_rq_connection(app)
    # Its actions carry no CSRF token; the guard above limits them to admins on this site's pages.
    csrf.exempt(rq_dashboard.blueprint)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/rq")

"""The RQ dashboard at /rq, for organization owners and admins only."""

import rq_dashboard
from flask import Flask, abort, request
from flask_login import current_user

from app.extensions import csrf, login_manager


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


def init_app(app: Flask) -> None:
    # An app-level hook, not one on the dashboard's module-level blueprint: Flask refuses
    # setup calls on a blueprint after its first registration, and tests build many apps.
    app.before_request(require_admin)
    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["REDIS_URL"]
    with app.app_context():
        rq_dashboard.web.setup_rq_connection(app)
    # Its actions carry no CSRF token; the guard above limits them to admins.
    csrf.exempt(rq_dashboard.blueprint)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/rq")

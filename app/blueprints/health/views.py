"""`/up`: health for load balancers and monitors."""

from flask import Blueprint, current_app, jsonify

from app.queue import redis_connection
from app.services import health

bp = Blueprint("health", __name__)


@bp.route("/up")
def up():
    settings = current_app.config
    checks = health.run_checks(
        redis_connection(),
        max_depth=settings["KIKET_UP_MAX_QUEUE_DEPTH"],
        max_age=settings["KIKET_UP_MAX_QUEUE_AGE"],
        heartbeat=settings["KIKET_WORKER_HEARTBEAT"],
    )
    ok = all(check.ok for check in checks)
    body = {
        "status": "ok" if ok else "unavailable",
        "failing": [check.name for check in checks if not check.ok],
        "checks": {check.name: check.to_dict() for check in checks},
    }
    response = jsonify(body)
    response.status_code = 200 if ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response

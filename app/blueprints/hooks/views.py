"""Inbound webhooks from git hosts: `/hooks/github` (no login; every delivery is signed per repository).

Throttled per client address (KIKET_GITHUB_HOOK_RATE_LIMIT a minute) before the body is read; the body's
size was checked before that (app/request_limits.py: 25 MiB, GitHub's own cap).
"""

import logging

from flask import Blueprint, current_app, jsonify, request

from app.extensions import csrf
from app.queue import redis_connection
from app.services import ratelimits
from app.services.sync import github_hooks

bp = Blueprint("hooks", __name__, url_prefix="/hooks")
log = logging.getLogger(__name__)

WINDOW_S = 60


@bp.post("/github")
@csrf.exempt  # GitHub signs deliveries with the repository's secret instead of sending a CSRF token.
def github():
    limit = current_app.config["KIKET_GITHUB_HOOK_RATE_LIMIT"]
    window = ratelimits.hit(redis_connection(), f"github-hook:{request.remote_addr}", limit, WINDOW_S)
    if not window.allowed:
        if window.used == limit + 1:
            log.warning("github hook throttled: client=%s passed %s requests a minute", request.remote_addr, limit)
        return jsonify({"ok": False, "error": f"too many requests from this address; retry in {window.reset_in} s"}), \
            429, {"Retry-After": str(window.reset_in)}
    result = github_hooks.handle_delivery(
        event=request.headers.get("X-GitHub-Event", ""),
        delivery_id=request.headers.get("X-GitHub-Delivery", ""),
        signature=request.headers.get("X-Hub-Signature-256", ""),
        body=request.get_data(cache=False),
        repository_id=request.args.get("repository", type=int),
        client=request.remote_addr,
    )
    return jsonify(result.body), result.status

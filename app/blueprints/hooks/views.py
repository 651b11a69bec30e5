"""Inbound webhooks from git hosts: `/hooks/github` (no login; every delivery is signed per repository)."""

from flask import Blueprint, jsonify, request

from app.extensions import csrf
from app.services.sync import github_hooks

bp = Blueprint("hooks", __name__, url_prefix="/hooks")


@bp.post("/github")
@csrf.exempt  # GitHub signs deliveries with the repository's secret instead of sending a CSRF token.
def github():
    result = github_hooks.handle_delivery(
        event=request.headers.get("X-GitHub-Event", ""),
        delivery_id=request.headers.get("X-GitHub-Delivery", ""),
        signature=request.headers.get("X-Hub-Signature-256", ""),
        body=request.get_data(cache=False),
        repository_id=request.args.get("repository", type=int),
    )
    return jsonify(result.body), result.status

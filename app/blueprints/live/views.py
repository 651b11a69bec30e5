"""The live socket, `/live`: one per open page, carrying the fragments that changed (htmx's ws extension
swaps them by id). The page says what it shows in the query string: `project` and `board` (plus the
board's filters), `issue`, `repository`, `repos`; every socket also carries the bell.

Served by the `live` process (gunicorn's gevent worker: many idle sockets cost no thread each) and, as a
fallback when KIKET_LIVE_URL is unset, by the web process itself.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, current_app, request, session, url_for
from flask_login import current_user
from simple_websocket import ConnectionClosed

from app.blueprints.live.hub import CLOSE_POLICY, Subscription, Viewer, hub_of
from app.extensions import db, sock

log = logging.getLogger(__name__)

bp = Blueprint("live", __name__)


@bp.before_request
def require_login():
    """Anonymous handshakes are refused before they become sockets."""
    if not current_user.is_authenticated:
        return "Sign in first.", 401


@bp.app_context_processor
def live_url() -> dict:
    """Where pages open their live socket: KIKET_LIVE_URL (the live process), else this process's `/live`."""
    return {"live_url": current_app.config.get("KIKET_LIVE_URL") or url_for("live.socket")}


def live_since(project_id: int) -> str:
    """`project:<id>=<seq>`: the project channel's number when a page starts rendering. The socket's first
    message sends the issue again only if the number moved since, so a page that is current is not swapped
    under the first click. Empty (always swap) when Redis cannot tell."""
    from redis.exceptions import RedisError

    from app.services.live import current_seq

    channel = f"project:{int(project_id)}"
    try:
        return f"{channel}={current_seq(current_app.extensions['redis'], channel)}"
    except RedisError:
        return ""


def allowed_origin(origin: str | None, host: str | None) -> bool:
    """The handshake must come from a page of this host (any port: the live process listens on its own one,
    and the session cookie it reads is shared by every port of the host anyway)."""
    if not origin or not host:
        return False
    return urlsplit(origin).hostname == urlsplit(f"//{host}").hostname


def _subscription() -> Subscription:
    args = request.args
    from app.blueprints.boards.views import view_params

    return Subscription(project_key=(args.get("project") or "").upper()[:10] or None, board=args.get("board") or None,
                        params=view_params(args), issue=args.get("issue", type=int),
                        repository=args.get("repository", type=int), repos=args.get("repos") == "1")


@sock.route("/live", bp=bp, endpoint="socket")
def socket(ws):
    """Register the viewer, send what the page shows now (so a reconnect heals), then wait for it to leave."""
    if not allowed_origin(request.headers.get("Origin"), request.host):
        ws.close(CLOSE_POLICY, "Sign in again.")
        return
    hub = hub_of(current_app._get_current_object())
    viewer = Viewer(ws=ws, user_id=current_user.id, session_version=current_user.session_version,
                    organization_id=current_user.membership.organization_id if current_user.membership else None,
                    csrf=session.get("csrf_token"), subscription=_subscription())
    try:
        if not hub.connect(viewer):
            ws.close(CLOSE_POLICY, "You cannot see this page.")
            return
    finally:
        db.session.remove()
    try:
        while viewer.open:
            text = ws.receive(timeout=60)
            if text == "resync":
                hub.resync(viewer)
    except ConnectionClosed:
        pass
    finally:
        hub.disconnect(viewer)

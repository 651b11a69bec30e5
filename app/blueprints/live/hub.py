"""The live hub of one process: its sockets, grouped by what they show, and its one Redis subscriber.

Messages on Redis carry ids (`app.services.live`); the hub turns each into fragments. A board's
fragments are rendered once per group of viewers seeing the same thing (project, board, filters, the
viewer for `@me` filters, and whether cards can be moved), encoded into one WebSocket frame and written
to every socket of the group; the issue page, the bell and the dashboard are rendered per viewer.
Access is checked for every message (one query for all the project's viewers); a viewer who lost it
is disconnected with close code 1008, which htmx's ws extension does not retry.

Every message starts with `<!--live CHANNEL=SEQ-->`; the first one after a (re)connect lists every
channel of the socket with `init`. `app/static/js/live.js` asks for a resync when a number is skipped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, render_template, session
from flask_login import login_user
from app.extensions import db
from app.services import live as bus

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008
RECONNECT_DELAY_S = 0.5


@dataclass(frozen=True)
class Subscription:
    """What a page shows: a board (with its view parameters), an issue, a repository, the repositories."""

    project_key: str | None = None
    board: str | None = None
    params: Any = None
    issue: int | None = None
    repository: int | None = None
    repos: bool = False


def text_frame(text: str) -> bytes:
    """An unmasked WebSocket text frame (server to client), encoded once and written to many sockets."""
    data = text.encode("utf-8")
    size = len(data)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + data


@dataclass(eq=False)
class Viewer:
    """One open socket and the person behind it."""

    ws: Any
    user_id: int
    session_version: int
    organization_id: int | None
    csrf: str | None
    subscription: Subscription
    project_id: int | None = None
    group: "BoardGroup | None" = None
    open: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def channels(self) -> list[str]:
        names = [f"user:{self.user_id}"]
        if self.project_id is not None:
            names.append(f"project:{self.project_id}")
        if self.subscription.repos or self.subscription.repository:
            names.append(f"org:{self.organization_id}")
        return names

    def send(self, frame: bytes) -> None:
        if not self.open:
            return
        with self.lock:
            try:
                self.ws.sock.sendall(frame)
            except OSError:
                self.open = False

    def close(self, reason: str) -> None:
        self.open = False
        try:
            self.ws.close(CLOSE_POLICY, reason)
        except Exception:  # noqa: BLE001 - already gone
            pass


@dataclass(eq=False)
class BoardGroup:
    """Viewers of one board seeing the same cards, and what they were last sent."""

    key: tuple
    project_id: int
    board_id: str
    params: Any
    user_id: int
    viewers: set = field(default_factory=set)
    cells: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    lane_counts: dict = field(default_factory=dict)
    full: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Hub:
    """The sockets of this process and the subscriber feeding them."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.lock = threading.RLock()
        self.viewers: set[Viewer] = set()
        self.groups: dict[tuple, BoardGroup] = {}
        self.thread: threading.Thread | None = None

    # Connections

    def connect(self, viewer: Viewer) -> bool:
        """Register a viewer if it may see what it asks for, and send it the page's live parts as they are now."""
        from app.blueprints.live import render

        sub = viewer.subscription
        if sub.project_key or sub.issue:
            project = render.project_for(viewer)
            if project is None:
                return False
            viewer.project_id = project.id
            if sub.board:
                key = render.group_key(viewer, project)
                if key is None:
                    return False
                with self.lock:
                    group = self.groups.get(key)
                    if group is None:
                        group = self.groups[key] = BoardGroup(key, project.id, sub.board, sub.params, viewer.user_id)
                    group.viewers.add(viewer)
                    viewer.group = group
        with self.lock:
            self.viewers.add(viewer)
        self._ensure_subscriber()
        self._send_initial(viewer)
        return True

    def disconnect(self, viewer: Viewer) -> None:
        viewer.open = False
        with self.lock:
            self.viewers.discard(viewer)
            group = viewer.group
            if group is not None:
                group.viewers.discard(viewer)
                if not group.viewers:
                    self.groups.pop(group.key, None)
                elif group.user_id == viewer.user_id:
                    group.user_id = next(iter(group.viewers)).user_id

    def resync(self, viewer: Viewer) -> None:
        """The client saw a gap: send everything again."""
        try:
            self._send_initial(viewer)
        finally:
            db.session.remove()

    def _send_initial(self, viewer: Viewer) -> None:
        from app.blueprints.live import render

        redis = self.app.extensions["redis"]
        seqs = " ".join(f"{ch}={bus.current_seq(redis, ch)}" for ch in viewer.channels())
        with self.app.test_request_context("/"):
            parts = [f"<!--live init {seqs}-->", render.bell(viewer)]
            if viewer.group is not None:
                parts.append(self._group_full(viewer.group))
            elif viewer.subscription.issue:
                parts.append(render.issue(viewer, viewer.subscription.issue, None))
            if viewer.subscription.repository:
                parts.append(render.sync_status(viewer, viewer.subscription.repository))
            viewer.send(text_frame("\n".join(p for p in parts if p)))

    def _group_full(self, group: BoardGroup) -> str:
        """Every part of the board as it is now (cached until the next change)."""
        from app.blueprints.live import render

        with group.lock:
            if group.full is None:
                view = render.group_view(group)
                if view is None:
                    return ""
                group.full = render.board_parts(view)
                # Changes are computed against what the group's viewers were last sent: a viewer joining
                # later got a newer picture, on which the same changes apply again harmlessly.
                if not group.cells:
                    group.cells, group.counts, group.lane_counts = render.snapshot(view)
            return group.full

    # The subscriber

    def _ensure_subscriber(self) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="kiket-live-subscriber", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        redis = self.app.extensions["redis"]
        first = True
        while True:
            try:
                pubsub = redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(bus.redis_channel(redis))
                if not first:
                    # Messages published while we were away are lost: every viewer gets everything again.
                    self._resync_all()
                first = False
                while True:
                    item = pubsub.get_message(timeout=30)
                    if item is not None and item.get("type") == "message":
                        self.handle(json.loads(item["data"]))
            except Exception as error:  # noqa: BLE001 - Redis away, or a rendering bug: log, resubscribe
                log.warning("live subscriber restarts: %s", error, exc_info=not _is_redis_error(error))
                time.sleep(RECONNECT_DELAY_S)

    def _resync_all(self) -> None:
        with self.lock:
            viewers = list(self.viewers)
            for group in self.groups.values():
                group.full, group.cells = None, {}
        with self.app.app_context():
            for viewer in viewers:
                self._send_initial(viewer)
            db.session.remove()

    # Messages

    def handle(self, message: dict) -> None:
        """Send what one published change means to every viewer it concerns."""
        channel = message.get("ch", "")
        kind, _, ident = channel.partition(":")
        started = time.perf_counter()
        with self.app.app_context():
            try:
                with self.app.test_request_context("/"):
                    if kind == "project":
                        self._project(int(ident), message)
                    elif kind == "user":
                        self._user(int(ident), message)
                    elif kind == "org":
                        self._org(int(ident), message)
            finally:
                db.session.remove()
        log.debug("live message ch=%s kind=%s seq=%s handled in %.1f ms", channel, message.get("kind"),
                  message.get("seq"), (time.perf_counter() - started) * 1000)

    def _header(self, message: dict, flag: str = "") -> str:
        return f"<!--live {flag + ' ' if flag else ''}{message['ch']}={message.get('seq', 0)}-->"

    def _project(self, project_id: int, message: dict) -> None:
        from app.blueprints.live import render

        with self.lock:
            viewers = [v for v in self.viewers if v.project_id == project_id]
            groups = [g for g in self.groups.values() if g.project_id == project_id]
        if not viewers:
            return
        denied = render.without_access(project_id, viewers)
        for viewer in denied:
            viewer.close("You no longer have access to this project.")
            self.disconnect(viewer)
        kind = message.get("kind")
        if kind == "access":
            header = text_frame(self._header(message))
            for viewer in viewers:
                if viewer not in denied:
                    viewer.send(header)
            return
        if kind == "config":
            frame = text_frame(self._header(message, "reload"))
            for group in groups:
                group.full = None
            for viewer in viewers:
                if viewer not in denied:
                    viewer.send(frame)
            return
        issue_id = message.get("issue")
        for group in groups:
            live = [v for v in group.viewers if v not in denied]
            if not live:
                continue
            flag, body = self._group_update(group, issue_id)
            frame = text_frame(self._header(message, flag) + body)
            for viewer in live:
                viewer.send(frame)
        for viewer in viewers:
            # The person who made the change has the page's own reply already; others get the issue again.
            if viewer.group is None and viewer.subscription.issue == issue_id and viewer not in denied \
                    and viewer.user_id != message.get("actor"):
                viewer.send(text_frame(self._header(message) + render.issue(viewer, issue_id, message.get("actor"))))
            elif viewer.group is None and viewer not in denied:
                # Same channel, nothing to show: the number keeps the client's sequence whole.
                viewer.send(text_frame(self._header(message)))

    def _group_update(self, group: BoardGroup, issue_id: int | None) -> tuple[str, str]:
        """("", fragments) for the group's viewers, or ("reload", "") when the board must be fetched again."""
        from app.blueprints.live import render

        if not group.cells or issue_id is None:
            with group.lock:
                group.full, group.cells = None, {}
            return "", self._group_full(group)
        with group.lock:
            group.full = None
            view = render.group_view(group, issue_id)
            if view is None:
                return "", ""
            try:
                body, group.cells, group.counts, group.lane_counts = render.board_changes(
                    view, issue_id, group.cells, group.counts, group.lane_counts)
            except render.NeedsReload:
                group.cells = {}
                return "reload", ""
        return "", body

    def _user(self, user_id: int, message: dict) -> None:
        from app.blueprints.live import render

        with self.lock:
            viewers = [v for v in self.viewers if v.user_id == user_id]
        if viewers:
            frame = text_frame(self._header(message) + render.bell(viewers[0]))
            for viewer in viewers:
                viewer.send(frame)

    def _org(self, organization_id: int, message: dict) -> None:
        from app.blueprints.live import render

        with self.lock:
            viewers = [v for v in self.viewers if v.organization_id == organization_id
                       and (v.subscription.repos or v.subscription.repository)]
        if not viewers:
            return
        if message.get("kind") == "access":
            for viewer in render.without_org_access(organization_id, viewers):
                viewer.close("You no longer belong to this organization.")
                self.disconnect(viewer)
            return
        repository = message.get("repository")
        for viewer in viewers:
            parts = [self._header(message)]
            if viewer.subscription.repos:
                parts.append(render.overview_row(viewer, repository))
            if viewer.subscription.repository == repository:
                parts.append(render.sync_status(viewer, repository))
            viewer.send(text_frame("".join(parts)))


def _is_redis_error(error: Exception) -> bool:
    from redis.exceptions import RedisError

    return isinstance(error, (RedisError, OSError))


def hub_of(app: Flask) -> Hub:
    """The process's hub (one per app)."""
    hub = app.extensions.get("live_hub")
    if hub is None:
        hub = app.extensions["live_hub"] = Hub(app)
    return hub


def as_viewer(viewer: Viewer):
    """Enter the viewer's identity in the current request context: current_user and its CSRF token."""
    from app.models import User

    user = db.session.get(User, viewer.user_id)
    if user is None:
        return None
    login_user(user)
    if viewer.csrf:
        session["csrf_token"] = viewer.csrf
    return user



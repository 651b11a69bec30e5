"""GitHub push webhooks: verify the signature, log the delivery, and sync when the tracked config changes.

Only verified deliveries are stored (`GithubDelivery`); unsigned or forged requests are logged and answered
401, never written. A push whose head commit is already active, or already being synced (a queued or
running run that resolved it, a pending revision of it), starts nothing: a replay under a new delivery id
included. The web view throttles `/hooks/github` per client address before reading the body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import ConfigRevision, GithubDelivery, SyncRun, WorkflowRepository
from app.models.repositories import SYNC_IN_FLIGHT
from app.services.sync.repositories import webhook_secret
from app.services.sync.runs import request_sync

log = logging.getLogger(__name__)

_SHA = re.compile(r"[0-9a-f]{40}")

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB; app/request_limits.py refuses bigger bodies unread


@dataclass(frozen=True)
class HookResult:
    """HTTP status and JSON body to answer GitHub with."""

    status: int
    body: dict[str, Any]


def signature_for(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body` signed with `secret`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | None, body: bytes, header: str) -> bool:
    """True when `header` is the HMAC-SHA256 of `body` with `secret` (compared in constant time)."""
    if not secret or not header:
        return False
    return hmac.compare_digest(signature_for(secret, body).encode(), header.strip().encode())


def _candidates(payload: dict, repository_id: int | None) -> list[WorkflowRepository]:
    if repository_id is not None:
        repository = db.session.get(WorkflowRepository, repository_id)
        return [repository] if repository is not None else []
    full_name = (payload.get("repository") or {}).get("full_name") if isinstance(payload.get("repository"), dict) \
        else None
    if not isinstance(full_name, str) or "/" not in full_name:
        return []
    owner, name = full_name.split("/", 1)
    return list(db.session.scalars(select(WorkflowRepository).where(
        func.lower(WorkflowRepository.github_owner) == owner.lower(),
        func.lower(WorkflowRepository.github_name) == name.lower())))


def touches_config(payload: dict, config_path: str) -> bool:
    """True when a push changes files under the config path (or when GitHub left the file lists out)."""
    commits = payload.get("commits")
    if not isinstance(commits, list) or not commits:
        return True
    prefix = config_path.strip("/") + "/"
    for commit in commits:
        if not isinstance(commit, dict):
            return True
        lists = [commit.get(key) for key in ("added", "modified", "removed")]
        if all(item is None for item in lists):
            return True
        for paths in lists:
            if any(isinstance(p, str) and p.startswith(prefix) for p in paths or ()):
                return True
    return False


def handle_delivery(*, event: str, delivery_id: str, signature: str, body: bytes,
                    repository_id: int | None = None, client: str | None = None) -> HookResult:
    """Handle one GitHub delivery: 401 on a bad signature, pong, ignore, or request a sync (trigger `webhook`)."""
    if not event or not delivery_id or len(delivery_id) > 100:
        return HookResult(400, {"ok": False, "error": "X-GitHub-Event and X-GitHub-Delivery headers are required"})
    if len(body) > MAX_BODY_BYTES:
        return HookResult(413, {"ok": False, "error": "payload too large"})
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict):
        return HookResult(400, {"ok": False, "error": "the payload is not a JSON object (use application/json)"})
    candidates = _candidates(payload, repository_id)
    verified = [r for r in candidates if verify_signature(webhook_secret(r), body, signature)]
    if not verified:
        # Logged, not stored: anyone can send these, and a row each would let them fill the table.
        outcome = "bad_signature" if candidates else "unknown_repository"
        log.warning("github delivery refused: %s (claimed delivery=%.100r event=%.50r repositories=%s client=%s)",
                    outcome, delivery_id, event, [r.id for r in candidates][:5], client)
        return HookResult(401, {"ok": False, "error": "signature does not match any repository's webhook secret"})
    repository = verified[0]
    record = GithubDelivery(delivery_id=delivery_id, event=event, repository_id=repository.id, outcome="received")
    db.session.add(record)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        log.info("github delivery=%s is a duplicate; ignored", delivery_id)
        return HookResult(200, {"ok": True, "ignored": "duplicate delivery"})
    result = _dispatch(event, payload, verified, record)
    db.session.commit()
    log.info("github delivery=%s event=%s repo=%s outcome=%s", delivery_id, event, repository.id, record.outcome)
    return result


def _dispatch(event: str, payload: dict, repositories: list[WorkflowRepository], record: GithubDelivery) -> HookResult:
    if event == "ping":
        record.outcome = "pong"
        return HookResult(200, {"ok": True, "zen": payload.get("zen")})
    if event != "push":
        record.outcome = "ignored_event"
        return HookResult(202, {"ok": True, "ignored": f"event {event} is not handled"})
    ref = payload.get("ref")
    head = payload.get("after") if isinstance(payload.get("after"), str) and _SHA.fullmatch(payload["after"]) else None
    runs = []
    outcome = "ignored_branch"
    for repository in repositories:
        if ref != f"refs/heads/{repository.branch}":
            continue
        if payload.get("deleted") is True:
            outcome = "ignored_deleted"
            continue
        if not touches_config(payload, repository.config_path):
            outcome = "ignored_path"
            continue
        already = _already_handled(repository, head)
        if already is not None:
            outcome = already
            continue
        runs.append(request_sync(repository.id, trigger="webhook"))
    if not runs:
        record.outcome = outcome
        why = _IGNORED[outcome].format(commit=(head or "")[:12])
        return HookResult(200 if outcome.startswith("already_") else 202, {"ok": True, "ignored": why})
    record.outcome = "synced"
    record.sync_run_id = runs[0].id
    return HookResult(202, {"ok": True, "sync_run_ids": [run.id for run in runs]})


_IGNORED = {
    "ignored_branch": "the push is not to the tracked branch",
    "ignored_deleted": "the push deletes the tracked branch",
    "ignored_path": "the push does not touch the config path",
    "already_active": "commit {commit} is already active",
    "already_syncing": "commit {commit} is already being synced",
}


def _already_handled(repository: WorkflowRepository, head: str | None) -> str | None:
    """`already_active` or `already_syncing` when a sync of `head` would start nothing new, else None.

    Being synced: a run in flight that resolved `head`, or a revision of it still pending activation. A run
    still queued (no commit yet) is joined by `request_sync` as before; it will fetch the branch's tip.
    """
    if head is None:
        return None
    if repository.active_revision_id is not None:
        active = db.session.get(ConfigRevision, repository.active_revision_id)
        if active is not None and active.status == "active" and active.commit_sha == head:
            return "already_active"
    syncing = db.session.scalar(select(SyncRun.id).where(
        SyncRun.repository_id == repository.id, SyncRun.status.in_(SYNC_IN_FLIGHT), SyncRun.commit_sha == head)
        .limit(1))
    if syncing is None:
        syncing = db.session.scalar(select(ConfigRevision.id).where(
            ConfigRevision.repository_id == repository.id, ConfigRevision.status == "pending",
            ConfigRevision.commit_sha == head).limit(1))
    return "already_syncing" if syncing is not None else None

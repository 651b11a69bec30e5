"""GitHub push webhooks: verify the signature, log the delivery, and sync when the tracked config changes."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import GithubDelivery, WorkflowRepository
from app.services.sync.repositories import webhook_secret
from app.services.sync.runs import request_sync

log = logging.getLogger(__name__)

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
                    repository_id: int | None = None) -> HookResult:
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
        outcome = "bad_signature" if candidates else "unknown_repository"
        _log_unverified(event, delivery_id, candidates, outcome)
        log.warning("github delivery=%s event=%s refused: %s", delivery_id, event, outcome)
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
    runs = []
    outcome = "ignored_branch"
    for repository in repositories:
        if ref != f"refs/heads/{repository.branch}":
            continue
        if not touches_config(payload, repository.config_path):
            outcome = "ignored_path"
            continue
        runs.append(request_sync(repository.id, trigger="webhook"))
    if not runs:
        record.outcome = outcome
        why = "the push does not touch the config path" if outcome == "ignored_path" else \
            "the push is not to the tracked branch"
        return HookResult(202, {"ok": True, "ignored": why})
    record.outcome = "synced"
    record.sync_run_id = runs[0].id
    return HookResult(202, {"ok": True, "sync_run_ids": [run.id for run in runs]})


def _log_unverified(event: str, delivery_id: str, candidates: list[WorkflowRepository], outcome: str) -> None:
    # The claimed delivery id is kept as detail only, so a forged request cannot burn a real delivery's id.
    db.session.add(GithubDelivery(delivery_id=None, event=event[:50], outcome=outcome,
                                  repository_id=candidates[0].id if len(candidates) == 1 else None,
                                  detail=f"claimed delivery {delivery_id}"[:255]))
    db.session.commit()

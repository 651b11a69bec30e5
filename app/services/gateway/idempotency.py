"""Idempotency-Key: the first response to a key of one credential is stored and replayed for 24 hours.

The key is claimed (a row without a response) and committed before the request runs, so a concurrent
retry with the same key waits for no lock: it gets 409 until the first one finishes, then the replay.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models.base import utcnow
from app.models.gateway import IdempotencyRecord
from app.services.errors import Conflict, Invalid

KEEP = timedelta(hours=24)
MAX_KEY = 255
# Response headers replayed with the body; the rest (rate limits, dates) describe the new response.
REPLAYED_HEADERS = ("Content-Type", "Location")


class KeyReused(Invalid):
    """The same Idempotency-Key with a different request."""


@dataclass(frozen=True)
class Replay:
    status: int
    headers: dict[str, str]
    body: bytes


def request_hash(method: str, path: str, query: bytes, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def begin(credential: str, key: str, fingerprint: str) -> Replay | int:
    """Claim the key (its record id), or the stored response to replay; raises on reuse or while in flight."""
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise Invalid({"Idempotency-Key": f"Use a printable key of at most {MAX_KEY} characters (a UUID)."})
    now = utcnow()
    for _ in range(2):
        db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - KEEP))
        record = IdempotencyRecord(credential=credential, key=key, request_hash=fingerprint, status_code=None,
                                   headers={}, body=b"", created_at=now)
        db.session.add(record)
        try:
            db.session.commit()
            return record.id
        except IntegrityError:
            db.session.rollback()
        existing = db.session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.credential == credential,
                                                                     IdempotencyRecord.key == key))
        if existing is None:
            continue  # expired and purged meanwhile: claim it again
        if existing.request_hash != fingerprint:
            raise KeyReused({"Idempotency-Key": "This key was used with a different request; use a new key."},
                            detail="The Idempotency-Key was already used with a different request.")
        if existing.status_code is None:
            raise Conflict("A request with this Idempotency-Key is still in progress; retry later.")
        return Replay(existing.status_code, dict(existing.headers), bytes(existing.body))
    raise Conflict("The Idempotency-Key could not be claimed; retry.")


def finish(record_id: int, status: int, headers: dict[str, str], body: bytes) -> None:
    """Store the response; a 5xx is not stored (the key can be retried)."""
    db.session.rollback()
    if status >= 500:
        abandon(record_id)
        return
    kept = {name: headers[name] for name in REPLAYED_HEADERS if name in headers}
    db.session.execute(update(IdempotencyRecord).where(IdempotencyRecord.id == record_id)
                       .values(status_code=status, headers=kept, body=body))
    db.session.commit()


def abandon(record_id: int) -> None:
    db.session.rollback()
    db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
    db.session.commit()

"""API credentials: personal tokens, extension keys, runtime and OAuth tokens, resolved to who acts and with what.

A key is `<prefix><itsdangerous-signed id>.<secret>`: the signature rejects made-up keys without a database
read, the secret is stored only as its SHA-256 hash (it is 256 random bits, so a slow hash adds nothing) and
compared in constant time. Every credential acts as a user (a person, or an installation's extension user),
so the services' own permission checks apply; scopes only narrow what that user may do.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from app.extensions import db
from app.kiket.extensions import ALL_SCOPES, SCOPES
from app.models import OrganizationMembership, User
from app.models.base import utcnow
from app.models.gateway import ApiKey, ExtensionInstallation
from app.services.errors import Forbidden, Invalid, NotFound, ServiceError
from app.services.prepared import Prepared

log = logging.getLogger(__name__)

PERSONAL_PREFIX = "kiket_pat_"
EXTENSION_PREFIX = "kiket_ext_"
PREFIXES = {PERSONAL_PREFIX: "personal", EXTENSION_PREFIX: "extension"}
SALT = "kiket.api-key"
# last_used_at is written at most this often per key: a write per request would cost more than the request.
LAST_USED_EVERY = timedelta(seconds=60)
MAX_NAME = 120


class Unauthorized(ServiceError):
    status = 401
    title = "Unauthorized"


@dataclass(frozen=True)
class Credential:
    """Who a request acts as, with which scopes; `name` keys its rate limit and Idempotency-Keys."""

    kind: str
    user: User
    scopes: frozenset[str]
    name: str
    key_id: int | None = None
    installation: ExtensionInstallation | None = None

    def allows(self, scope: str) -> bool:
        return ALL_SCOPES in self.scopes or scope in self.scopes

    @property
    def project_id(self) -> int | None:
        """The one project an extension credential may reach (None: the user's projects)."""
        return self.installation.project_id if self.installation is not None else None


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: list[str] | tuple[str, ...], *, allow_all: bool) -> list[str]:
    """Known scopes, deduplicated and in vocabulary order; `*` alone when allowed and asked for."""
    wanted = {s.strip() for s in scopes if s and s.strip()}
    if ALL_SCOPES in wanted:
        if not allow_all:
            raise Invalid({"scopes": "`*` is for personal tokens only."})
        return [ALL_SCOPES]
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise Invalid({"scopes": f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(SCOPES)}, or *."})
    if not wanted:
        raise Invalid({"scopes": "Choose at least one scope."})
    return [s for s in SCOPES if s in wanted]


def issue_key(kind: str, user_id: int, *, name: str = "", scopes: list[str] | None = None,
              installation_id: int | None = None) -> tuple[ApiKey, str]:
    """Add a key to the session (the caller commits) and return it with its token, the only time it exists."""
    secret = secrets.token_urlsafe(32)
    key = ApiKey(kind=kind, user_id=user_id, installation_id=installation_id, name=name[:MAX_NAME],
                 scopes=list(scopes or []), secret_hash=digest(secret))
    db.session.add(key)
    db.session.flush()
    prefix = PERSONAL_PREFIX if kind == "personal" else EXTENSION_PREFIX
    token = f"{prefix}{_serializer().dumps(key.id)}.{secret}"
    key.hint = token[:len(prefix) + 6]
    return key, token


def create_personal_token(user: User, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """A personal token of `user`; `*` grants whatever the user may do. Returns the token once."""
    if user.kind != "person":
        raise Forbidden("Only people have personal tokens.")
    name = (name or "").strip()
    if not name:
        raise Invalid({"name": "Name the token after what uses it (a script, a CI job)."})
    key, token = issue_key("personal", user.id, name=name, scopes=check_scopes(scopes, allow_all=True))
    db.session.commit()
    log.info("personal token created user=%s key=%s scopes=%s", user.id, key.id, ",".join(key.scopes))
    return key, token


def personal_tokens(user: User) -> list[ApiKey]:
    """The user's personal tokens, newest first (revoked ones too: they show when they stopped)."""
    return list(db.session.scalars(select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.kind == "personal")
                                   .order_by(ApiKey.id.desc())))


def revoke_personal_token(user: User, key_id: int) -> ApiKey:
    """Revoke one of the user's own personal tokens (idempotent)."""
    key = db.session.get(ApiKey, key_id)
    if key is None or key.user_id != user.id or key.kind != "personal":
        raise NotFound("No such token of yours.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        db.session.commit()
        log.info("personal token revoked user=%s key=%s", user.id, key.id)
    return key


class _Key(NamedTuple):
    id: int
    kind: str
    installation_id: int | None
    scopes: list[str]
    secret_hash: str
    last_used_at: datetime | None
    revoked_at: datetime | None


_KEY_COLUMNS = ("id", "kind", "installation_id", "scopes", "secret_hash", "last_used_at", "revoked_at")


@functools.cache
def _key_statement() -> Prepared:
    """A key with its user and the user's membership: every request reads all three, in one round trip."""
    keys, users, members = ApiKey.__table__, User.__table__, OrganizationMembership.__table__
    return Prepared(
        select(*(keys.c[name] for name in _KEY_COLUMNS), *(c.label(f"u_{c.key}") for c in users.c),
               *(c.label(f"m_{c.key}") for c in members.c))
        .select_from(keys.join(users, users.c.id == keys.c.user_id)
                     .outerjoin(members, members.c.user_id == users.c.id))
        .where(keys.c.id == bindparam("key_id")))


def _attach(model: type, values: dict) -> Any:
    """The row as a persistent object of the session, without a query (the session's own one if it has it)."""
    found = db.session.identity_map.get(db.session.identity_key(model, (values["id"],)))
    if found is not None:
        return found
    obj = model(**values)
    make_transient_to_detached(obj)
    db.session.add(obj)
    return obj


def _key_from(token: str) -> tuple[_Key, User]:
    prefix = next((p for p in PREFIXES if token.startswith(p)), None)
    if prefix is None:
        raise Unauthorized("The credential is not a Kiket API key or runtime token.")
    signed, _, secret = token[len(prefix):].rpartition(".")
    try:
        key_id = _serializer().loads(signed)
    except BadSignature:
        raise Unauthorized("The API key is not valid.") from None
    statement = _key_statement()
    rows, _ = statement.execute({"key_id": key_id}) if isinstance(key_id, int) else ([], 0)
    if not rows:
        raise Unauthorized("The API key is not valid.")
    values = [dict(zip(statement.names, row)) for row in rows]
    key = _Key(*(values[0][name] for name in _KEY_COLUMNS))
    if key.kind != PREFIXES[prefix] or not hmac.compare_digest(key.secret_hash, digest(secret)):
        raise Unauthorized("The API key is not valid.")
    if key.revoked_at is not None:
        raise Unauthorized("The API key was revoked.")
    user = _attach(User, {k[2:]: v for k, v in values[0].items() if k.startswith("u_")})
    if "memberships" not in user.__dict__:
        set_committed_value(user, "memberships", [
            _attach(OrganizationMembership, {k[2:]: v for k, v in row.items() if k.startswith("m_")})
            for row in values if row["m_id"] is not None])
    return key, user


def _touch(key: _Key) -> None:
    now = utcnow()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_EVERY:
        return
    # Its own small transaction: a GET never commits, and the request's work must not ride along.
    db.session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    db.session.commit()


def from_api_key(token: str) -> Credential:
    """The credential of a personal or extension key."""
    key, user = _key_from(token)
    _touch(key)
    if key.kind == "personal":
        return Credential("personal", user, frozenset(key.scopes), f"key:{key.id}", key_id=key.id)
    installation = db.session.get(ExtensionInstallation, key.installation_id)
    if installation is None:
        raise Unauthorized("The extension of this key is no longer installed.")
    return Credential("extension", user, frozenset(installation.scopes), f"ext:{installation.id}", key_id=key.id,
                      installation=installation)


def authenticate(bearer: str | None, runtime_token: str | None) -> Credential | None:
    """The request's credential: the runtime token header wins over `Authorization`; None when neither is sent."""
    from app.services.gateway import tokens

    token = (runtime_token or bearer or "").strip()
    if not token:
        return None
    if token.startswith(tuple(PREFIXES)):
        return from_api_key(token)
    claims = tokens.verify(token)
    installation = db.session.get(ExtensionInstallation, claims.installation_id)
    if installation is None or installation.bot_user_id is None:
        raise Unauthorized("The extension of this token is no longer installed.")
    user = db.session.get(User, installation.bot_user_id)
    # A token carries the scopes granted when it was minted, never more than the installation has now.
    scopes = frozenset(claims.scopes) & frozenset(installation.scopes)
    return Credential(claims.source, user, scopes, f"ext:{installation.id}", installation=installation)

"""Runtime tokens (protocol spec §3): ES256 JWTs for one installation, verified by extensions against the JWKS.

Signing keys are P-256 keys generated on first use and kept encrypted in the database. `rotate` makes a new
current key; the previous one stays published (and accepted) until the next rotation, so tokens in flight
keep verifying. The same tokens, with `src: oauth`, are what the client-credentials grant hands out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models.base import utcnow
from app.models.gateway import ExtensionInstallation, SigningKey
from app.queue import redis_connection
from app.services import crypto
from app.services.gateway.credentials import Unauthorized

log = logging.getLogger(__name__)

TTL_S = 15 * 60
PURPOSE = "runtime token signing keys"
ALGORITHM = "ES256"
# Public keys change only on rotation; a process re-reads which ones are published this often.
PUBLISHED_TTL_S = 30.0

_private: dict[str, ec.EllipticCurvePrivateKey] = {}
_published: dict[str, object] = {}
_published_at = 0.0


@dataclass(frozen=True)
class Claims:
    installation_id: int
    scopes: tuple[str, ...]
    source: str
    expires_at: datetime


def issuer() -> str:
    return current_app.config["KIKET_TOKEN_ISSUER"]


def _b64(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode()


def _public_jwk(private: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = private.public_key().public_numbers()
    jwk = {"crv": "P-256", "kty": "EC", "x": _b64(numbers.x), "y": _b64(numbers.y)}
    # RFC 7638 thumbprint: the kid names the key itself.
    thumbprint = hashlib.sha256(json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()).digest()
    return {**jwk, "kid": base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()[:32], "use": "sig",
            "alg": ALGORITHM}


def _new_key() -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    jwk = _public_jwk(private)
    return SigningKey(kid=jwk["kid"], status="current", private_key_encrypted=crypto.encrypt(pem, PURPOSE),
                      public_jwk=jwk)


def _current() -> SigningKey | None:
    return db.session.scalar(select(SigningKey).where(SigningKey.status == "current").order_by(SigningKey.id.desc())
                             .limit(1))


def current_key() -> SigningKey:
    """The key that signs new tokens, generated on first use (once, whichever process gets there first)."""
    key = _current()
    if key is not None:
        return key
    with redis_connection().lock("kiket:lock:signing-keys", timeout=30, blocking_timeout=30):
        db.session.commit()  # see what another process committed while we waited
        key = _current()
        if key is None:
            key = _new_key()
            db.session.add(key)
            db.session.commit()
            log.info("runtime token signing key generated kid=%s", key.kid)
    return key


def rotate() -> SigningKey:
    """A new current key; the current one becomes previous (still published), the previous one retires."""
    global _published_at
    with redis_connection().lock("kiket:lock:signing-keys", timeout=30, blocking_timeout=30):
        db.session.commit()
        now = utcnow()
        for key in db.session.scalars(select(SigningKey).where(SigningKey.status.in_(("current", "previous")))):
            if key.status == "previous":
                key.status, key.retired_at = "retired", now
            else:
                key.status = "previous"
        key = _new_key()
        db.session.add(key)
        db.session.commit()
    _published_at = 0.0
    log.info("runtime token signing keys rotated; current kid=%s", key.kid)
    return key


def jwks() -> dict:
    """The published keys: current first, then the previous one."""
    current_key()
    rows = db.session.scalars(select(SigningKey).where(SigningKey.status.in_(("current", "previous")))
                              .order_by(SigningKey.id.desc()))
    return {"keys": [dict(row.public_jwk) for row in rows]}


def _signer(key: SigningKey) -> ec.EllipticCurvePrivateKey:
    private = _private.get(key.kid)
    if private is None:
        pem = crypto.decrypt(key.private_key_encrypted, PURPOSE).encode()
        private = _private[key.kid] = serialization.load_pem_private_key(pem, password=None)
    return private


def mint(installation: ExtensionInstallation, *, source: str = "webhook",
         scopes: list[str] | tuple[str, ...] | None = None) -> tuple[str, datetime]:
    """A token for the installation, valid TTL_S seconds; (token, expiry)."""
    key = current_key()
    now = int(time.time())
    granted = list(installation.scopes if scopes is None else scopes)
    claims = {
        "iss": issuer(), "sub": f"installation:{installation.id}",
        "org_id": str(installation.project.organization_id), "ext_id": installation.extension_id,
        "proj_id": str(installation.project_id), "pi_id": str(installation.id), "scopes": granted,
        "src": source, "iat": now, "exp": now + TTL_S, "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, _signer(key), algorithm=ALGORITHM, headers={"kid": key.kid})
    return token, datetime.fromtimestamp(now + TTL_S, tz=timezone.utc)


def _public_keys(kid: str | None) -> dict[str, object]:
    global _published, _published_at
    # An unknown kid may be a key another process just made: look again (a query of a few rows).
    if time.monotonic() - _published_at > PUBLISHED_TTL_S or kid not in _published:
        rows = db.session.scalars(select(SigningKey).where(SigningKey.status.in_(("current", "previous"))))
        _published = {row.kid: jwt.PyJWK(dict(row.public_jwk), ALGORITHM).key for row in rows}
        _published_at = time.monotonic()
    return _published


def verify(token: str) -> Claims:
    """Check a runtime or OAuth token: our signature (current or previous key), issuer, expiry."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise Unauthorized("The credential is neither a Kiket API key nor a runtime token.") from None
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    public = _public_keys(kid).get(kid)
    if public is None:
        raise Unauthorized("The runtime token was not signed by a key Kiket publishes.")
    try:
        claims = jwt.decode(token, public, algorithms=[ALGORITHM], issuer=issuer(),
                            options={"require": ["exp", "iat", "iss", "sub", "pi_id"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The runtime token has expired; use the one of a newer delivery, or ask "
                           "POST /api/v1/oauth/token for a new one.") from None
    except jwt.InvalidTokenError as error:
        raise Unauthorized(f"The runtime token is not valid: {error}.") from None
    try:
        installation_id = int(claims["pi_id"])
    except (TypeError, ValueError):
        raise Unauthorized("The runtime token names no installation.") from None
    scopes = claims.get("scopes") if isinstance(claims.get("scopes"), list) else []
    return Claims(installation_id, tuple(str(s) for s in scopes), str(claims.get("src") or "webhook"),
                  datetime.fromtimestamp(int(claims["exp"]), tz=timezone.utc))


class OAuthError(Unauthorized):
    """A token request refused, with its RFC 6749 §5.2 error code."""

    def __init__(self, error: str, detail: str, status: int = 400):
        super().__init__(detail)
        self.error, self.status = error, status


def grant_client_credentials(client_id: str, client_secret: str, scope: str | None) -> tuple[str, list[str]]:
    """RFC 6749 §4.4: a short-lived bearer token with the installation's granted scopes (or fewer)."""
    from app.services.gateway.credentials import digest

    installation = db.session.scalar(select(ExtensionInstallation)
                                     .where(ExtensionInstallation.oauth_client_id == (client_id or "")))
    if installation is None or not client_secret or \
            not hmac.compare_digest(installation.oauth_secret_hash, digest(client_secret)):
        raise OAuthError("invalid_client", "Unknown client or wrong client secret.", 401)
    scopes = list(installation.scopes)
    if scope:
        wanted = scope.split()
        extra = sorted(set(wanted) - set(scopes))
        if extra:
            raise OAuthError("invalid_scope", f"Not granted to this installation: {', '.join(extra)}.")
        scopes = [s for s in scopes if s in wanted]
    token, _ = mint(installation, source="oauth", scopes=scopes)
    return token, scopes

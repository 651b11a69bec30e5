"""Log-in and invitation throttling: failed attempts counted per account and per client address in Redis.

Once an account (an email address, whether or not it has an account, so the throttle tells nothing
about which exist) or an invitation has `ACCOUNT_LIMIT` failures in its window, or a client address has
`ADDRESS_LIMIT`, every further attempt is refused until the window resets, the right password included;
the page says so and `Retry-After` says when. A successful log-in clears its account's count (not the
address's: one known account must not buy an address more guesses).

Counts live in Redis (app/services/ratelimits.py), shared by every web process. A count's window runs
from its first failure; the failure that reaches the limit restarts it, so a lockout lasts `WINDOW_S`. When Redis cannot be
reached the attempt goes through uncounted and a warning is logged: logging in keeps working through a
Redis restart.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from app.services import ratelimits

log = logging.getLogger(__name__)

WINDOW_S = 15 * 60
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20


@dataclass(frozen=True)
class Lockout:
    """Why attempts are refused, and for how long."""

    scope: str  # "account", "invitation" or "address"
    retry_after: int

    @property
    def message(self) -> str:
        wait = _duration(self.retry_after)
        who = {"account": "for this account", "invitation": "for this invitation",
               "address": "from your network address"}[self.scope]
        right = "the right email address" if self.scope == "invitation" else "the right password"
        return f"Too many failed attempts {who}. Try again in {wait}; until then every attempt is refused, even with {right}."


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


Subject = tuple[str, str]  # (scope, name): what one person's attempts are about


def account(email: str) -> Subject:
    return ("account", email.strip().lower())


def invitation(ident: int | str) -> Subject:
    return ("invitation", str(ident))


def client_network(address: str) -> str:
    """What one client's address counts as: the IPv4 address, or its IPv6 /64 (one host gets a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _keys(subject: Subject | None, address: str | None) -> list[tuple[str, str, int]]:
    """(scope, Redis key, limit) for the subject and the address; names are hashed (no emails in Redis)."""
    keys = []
    if subject is not None:
        keys.append((subject[0], f"auth:{subject[0]}:{_digest(subject[1])}", ACCOUNT_LIMIT))
    if address:
        keys.append(("address", f"auth:address:{client_network(address)}", ADDRESS_LIMIT))
    return keys


def check(redis: Redis, subject: Subject | None, address: str | None) -> Lockout | None:
    """The lockout in force for this subject or address, else None (counts nothing)."""
    try:
        for scope, key, limit in _keys(subject, address):
            window = ratelimits.failures(redis, key, limit, WINDOW_S)
            if window.used >= limit:
                return Lockout(scope, window.reset_in)
    except RedisError as error:
        log.warning("log-in throttle unavailable (Redis: %s); attempt not checked", error)
    return None


def failed(redis: Redis, subject: Subject | None, address: str | None) -> Lockout | None:
    """Count a failed attempt; the lockout it starts, if it was the last one allowed."""
    lockout = None
    try:
        for scope, key, limit in _keys(subject, address):
            window = ratelimits.fail(redis, key, limit, WINDOW_S)
            if window.used >= limit and lockout is None:
                lockout = Lockout(scope, window.reset_in)
    except RedisError as error:
        log.warning("log-in throttle unavailable (Redis: %s); failure not counted", error)
    return lockout


def succeeded(redis: Redis, subject: Subject) -> None:
    """A successful attempt clears the subject's failures (the address keeps its count)."""
    _, key, _ = _keys(subject, None)[0]
    try:
        ratelimits.clear(redis, key)
    except RedisError as error:
        log.warning("log-in throttle unavailable (Redis: %s); failures not cleared", error)

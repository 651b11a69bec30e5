"""Rate limits in Redis: fixed windows counted with INCR, shared by every process (API credentials), and
failure counts (log-ins, app/services/throttle.py).

A window is `window_s` seconds aligned to the epoch, so every process agrees on when it resets; its
counter expires with it. One round trip per hit: a script counts and, on the window's first hit, sets
the expiry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis import Redis

PREFIX = "kiket:ratelimit:"
_HIT = """
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if used == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return used
"""


@dataclass(frozen=True)
class Window:
    """Where a key stands in its current window after a hit (or a peek)."""

    limit: int
    used: int
    window_s: int
    reset_in: int

    @property
    def allowed(self) -> bool:
        return self.used <= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def reset_at(self) -> int:
        """Unix time at which the window resets."""
        return int(time.time()) + self.reset_in


def _slot(key: str, window_s: int, now: float) -> tuple[str, int]:
    start = int(now) - int(now) % window_s
    return f"{PREFIX}{key}:{start}", start + window_s - int(now)


def hit(redis: Redis, key: str, limit: int, window_s: int, *, cost: int = 1, now: float | None = None) -> Window:
    """Count `cost` against `key`'s current window; `allowed` is False once the count passes `limit`."""
    name, reset_in = _slot(key, window_s, time.time() if now is None else now)
    script = getattr(redis, "_kiket_rate_script", None)
    if script is None:
        script = redis._kiket_rate_script = redis.register_script(_HIT)
    used = script(keys=[name], args=[cost, window_s + 1])
    return Window(limit=limit, used=int(used), window_s=window_s, reset_in=max(1, reset_in))


def peek(redis: Redis, key: str, limit: int, window_s: int, *, now: float | None = None) -> Window:
    """The current window's count without counting."""
    name, reset_in = _slot(key, window_s, time.time() if now is None else now)
    return Window(limit=limit, used=int(redis.get(name) or 0), window_s=window_s, reset_in=max(1, reset_in))


def reset(redis: Redis, key: str, window_s: int, *, now: float | None = None) -> None:
    """Forget the current window's count (a successful login clears its failures)."""
    redis.delete(_slot(key, window_s, time.time() if now is None else now)[0])


# Failure counting (log-ins): the window starts at the first hit, and the hit that reaches the limit restarts
# it, so a lockout lasts a whole window from the failure that caused it whenever that fell.
_FAIL = """
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if used == tonumber(ARGV[1]) or used >= tonumber(ARGV[3]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return {used, redis.call('TTL', KEYS[1])}
"""


def fail(redis: Redis, key: str, limit: int, window_s: int) -> Window:
    """Count a failure against `key`: its window runs from the first failure, or from the one reaching `limit`."""
    script = getattr(redis, "_kiket_fail_script", None)
    if script is None:
        script = redis._kiket_fail_script = redis.register_script(_FAIL)
    used, ttl = script(keys=[PREFIX + key], args=[1, window_s, limit])
    return Window(limit=limit, used=int(used), window_s=window_s, reset_in=max(1, int(ttl)))


def failures(redis: Redis, key: str, limit: int, window_s: int) -> Window:
    """Where `key`'s failures stand, without counting."""
    pipe = redis.pipeline(transaction=False)
    pipe.get(PREFIX + key)
    pipe.ttl(PREFIX + key)
    used, ttl = pipe.execute()
    return Window(limit=limit, used=int(used or 0), window_s=window_s, reset_in=max(1, int(ttl)))


def clear(redis: Redis, key: str) -> None:
    """Forget `key`'s failures (a successful log-in)."""
    redis.delete(PREFIX + key)

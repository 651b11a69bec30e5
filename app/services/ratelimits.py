"""Rate limits in Redis: fixed windows counted with INCR, shared by every process (API credentials, logins).

A window is `window_s` seconds aligned to the epoch, so every process agrees on when it resets; its
counter expires with it. One round trip per hit (INCR and EXPIRE in one transaction).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis import Redis

PREFIX = "kiket:ratelimit:"


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
    with redis.pipeline() as pipe:
        pipe.incrby(name, cost)
        pipe.expire(name, window_s + 1)
        used, _ = pipe.execute()
    return Window(limit=limit, used=int(used), window_s=window_s, reset_in=max(1, reset_in))


def peek(redis: Redis, key: str, limit: int, window_s: int, *, now: float | None = None) -> Window:
    """The current window's count without counting."""
    name, reset_in = _slot(key, window_s, time.time() if now is None else now)
    return Window(limit=limit, used=int(redis.get(name) or 0), window_s=window_s, reset_in=max(1, reset_in))


def reset(redis: Redis, key: str, window_s: int, *, now: float | None = None) -> None:
    """Forget the current window's count (a successful login clears its failures)."""
    redis.delete(_slot(key, window_s, time.time() if now is None else now)[0])

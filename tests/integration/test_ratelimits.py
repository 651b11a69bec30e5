"""The shared Redis rate limiter: fixed windows every process agrees on, expiring with their window."""

from app.services import ratelimits


def test_windows_count_reset_and_expire(app):
    redis = app.extensions["redis"]
    now = 1_000_000_040.0  # 20 s into a minute-long window
    hits = [ratelimits.hit(redis, "login:ada", 3, 60, now=now) for _ in range(4)]
    assert [(w.used, w.allowed, w.remaining) for w in hits] == [(1, True, 2), (2, True, 1), (3, True, 0), (4, False, 0)]
    assert hits[0].reset_in == 40 and 0 < redis.ttl(f"{ratelimits.PREFIX}login:ada:{int(now) - 20}") <= 61
    assert ratelimits.peek(redis, "login:ada", 3, 60, now=now).used == 4
    # The next window starts afresh; another key has its own count.
    assert ratelimits.hit(redis, "login:ada", 3, 60, now=now + 40).used == 1
    assert ratelimits.hit(redis, "login:bob", 3, 60, now=now).used == 1
    ratelimits.reset(redis, "login:ada", 60, now=now)
    assert ratelimits.peek(redis, "login:ada", 3, 60, now=now).used == 0
    assert ratelimits.hit(redis, "bulk", 10, 60, cost=4, now=now).remaining == 6

"""Fixed-window counters in the shared cache, for the API throttle and failed-attempt limits.

A window opens with a key's first hit and lasts the rate's period. Hits are counted with the
cache's atomic increment (a Lua INCRBY in django-redis, a lock in local memory), so exactly
`limit` hits fit in a window however many processes and threads hit it at once, as long as they
share the cache (Redis; without REDIS_URL each process counts alone). The window's end is kept
next to the counter, so a refusal can always say when to retry.

The same approach as django-ratelimit's core (cache add, then incr), written out here because
that library decides rates per view decorator or per request group, while these counters are keyed
by API key and by client address; its windows are also aligned to the clock, where these open on
first use (a burst never straddles two windows, and keys do not all reset at the same instant).

The cache fails open: when it cannot be reached a hit is not counted (`hit` returns None) and
nothing is refused.

A hit can also be counted inside another Lua script's round trip (WINDOW_HIT_LUA: the API key
check counts the request's throttle hit, apps.tenants.known_keys): the same window, opened and
counted atomically in Redis, its end kept in whole seconds.
"""

import math
import time
from dataclasses import dataclass

from django.core.cache import cache

PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A window opened by another request may expire between our increment and our add; trying again
# settles it, and only a cache that keeps expiring keys under us would exhaust the attempts.
OPEN_WINDOW_ATTEMPTS = 3

# window_hit(count key, end key, period, end): counts one hit, opening the window on the first,
# and returns the window's count. For scripts that count a hit beside their own work.
WINDOW_HIT_LUA = """
local function window_hit(count_key, ends_key, period, ends_at)
    local count = redis.call('INCR', count_key)
    if count == 1 then
        redis.call('EXPIRE', count_key, period)
        redis.call('SET', ends_key, ends_at, 'EX', period)
    end
    return count
end
"""


@dataclass(frozen=True)
class Rate:
    limit: int
    period_seconds: int

    @classmethod
    def parse(cls, text):
        """A DRF rate, "1200/minute": the number, then a period named by its first letter."""
        count, _, period = text.partition("/")
        return cls(int(count), PERIOD_SECONDS[period[0]])


class FixedWindow:
    """The hits of one key (an API key, a client address) in its current window."""

    def __init__(self, key, rate):
        self.rate = rate
        self.count_key = f"rate:{key}:count"
        self.ends_key = f"rate:{key}:ends"

    def hit(self):
        """Count one hit; returns the window's count including it, or None if the cache is
        unreachable."""
        for _ in range(OPEN_WINDOW_ATTEMPTS):
            try:
                return cache.incr(self.count_key)
            except ValueError:  # no window open
                pass
            period = self.rate.period_seconds
            # The end first: it then expires no later than the count, so a new window never
            # finds the previous window's end.
            cache.add(self.ends_key, time.time() + period, timeout=period)
            if cache.add(self.count_key, 1, timeout=period):
                return 1
        return None

    def script_keys_and_arguments(self):
        """([count key, end key] without the cache's prefix, [period, end]) for WINDOW_HIT_LUA,
        were the window to open now."""
        period = self.rate.period_seconds
        return [self.count_key, self.ends_key], [period, math.ceil(time.time()) + period]

    def count(self):
        """The window's hits so far (0 when no window is open or the cache is unreachable)."""
        return cache.get(self.count_key) or 0

    def is_exceeded(self, count):
        return count is not None and count > self.rate.limit

    def seconds_left(self):
        """Whole seconds until the window closes, at least 1; the whole period when its end is
        unknown (the cache lost it), so a client told to wait never retries too early."""
        ends = cache.get(self.ends_key)
        if ends is None:
            return self.rate.period_seconds
        return min(self.rate.period_seconds, max(1, math.ceil(ends - time.time())))

"""How fast and how often deliveries are tried: a token bucket per channel, and exponential
backoff with full jitter (AWS architecture blog, "Exponential Backoff and Jitter"): retries of
many failed replies spread out instead of hitting a recovering platform all at once."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable


class TokenBucket:
    """At most `rate` acquisitions per second on average, `burst` at once. rate <= 0: no limit."""

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._clock = clock
        self._updated = clock()
        self._lock = asyncio.Lock()  # waiters are served in order

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before the attempt after `attempt` (1 = the first one failed).

    Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]. A platform's Retry-After is a
    floor: retrying earlier only earns another 429.
    """
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    delay = (rng or random).uniform(0.0, ceiling)
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return delay

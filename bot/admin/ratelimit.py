"""Sign-in attempts: after LIMIT wrong passwords within WINDOW seconds from one address, or for
one account name, further attempts are refused (429) until the oldest failure ages out."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

LIMIT = 5
WINDOW = 60.0
MAX_KEYS = 10_000  # addresses and names remembered; the stale ones are dropped past this


class FailureLimiter:
    def __init__(
        self,
        limit: int = LIMIT,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, *keys: str) -> float | None:
        """Seconds to wait when any key has had LIMIT failures in the window, else None."""
        now = self._clock()
        waits = [
            times[0] + self.window - now
            for times in (self._recent(key, now) for key in keys)
            if len(times) >= self.limit
        ]
        return max(waits) if waits else None

    def failed(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
        if len(self._failures) > MAX_KEYS:
            self._forget_stale(now)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _forget_stale(self, now: float) -> None:
        for key in [k for k in self._failures if not self._recent(k, now)]:
            del self._failures[key]

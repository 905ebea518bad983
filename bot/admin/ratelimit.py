"""Sign-in attempts: after LIMIT wrong passwords within WINDOW seconds further attempts are
refused (429) until the oldest failure ages out.

What is counted (bot.admin.signin chooses the keys):

- per address, and per name *and* address: one address guessing is stopped, and one address
  typing someone's name wrongly locks that name for itself only, not for the operator;
- per name, the *different addresses* that failed on it: guessing one account from many
  addresses is stopped too, while one stranger cannot lock an operator out.

An attempt is counted when it starts (`attempt`), before the slow password check, so that a
hundred guesses sent at once cannot all be evaluated; a right password takes its count back
(`succeeded`).
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

LIMIT = 5
WINDOW = 60.0
MAX_KEYS = 10_000  # addresses and names remembered; the stale ones are dropped past this


@dataclass(frozen=True)
class Counted:
    """A key to count an attempt under; `source` set: only different sources count (the
    addresses that failed on a name), else every attempt counts."""

    key: str
    source: str | None = None


@dataclass(frozen=True)
class Attempt:
    """What `attempt` counted, to be taken back when the password was right."""

    number: int
    counted: tuple[Counted, ...]


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
        # key -> (time, source, attempt number) of each recent failure, oldest first
        self._failures: dict[str, deque[tuple[float, str, int]]] = {}
        self._numbers = itertools.count(1)

    def _recent(self, key: str, now: float) -> deque[tuple[float, str, int]]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0][0] <= now - self.window:
            times.popleft()
        return times

    def _wait(self, key: str, now: float) -> float | None:
        """Seconds until the key has fewer than `limit` sources in the window, or None."""
        latest: dict[str, float] = {}
        for at, source, _ in self._recent(key, now):
            latest[source] = at
        if len(latest) < self.limit:
            return None
        # The count falls below the limit when the limit-th most recent source ages out.
        return sorted(latest.values(), reverse=True)[self.limit - 1] + self.window - now

    def retry_after(self, *keys: str | Counted) -> float | None:
        """Seconds to wait when any key has had `limit` failures in the window, else None."""
        now = self._clock()
        waits = [w for k in keys if (w := self._wait(_key(k), now)) is not None]
        return max(waits) if waits else None

    def attempt(self, counted: Sequence[Counted]) -> float | Attempt | None:
        """Count an attempt as failed under every key, unless one is at its limit: then the
        seconds to wait (and nothing is counted). Check and count happen together, before
        any await, so parallel attempts are counted one by one."""
        wait = self.retry_after(*counted)
        if wait is not None:
            return wait
        attempt = Attempt(next(self._numbers), tuple(counted))
        self._record(attempt)
        return attempt

    def succeeded(self, attempt: Attempt | str) -> None:
        """The password was right: take back this attempt's count, and forget the failures
        of its name (a `Counted` with a source) and of its name and address."""
        if isinstance(attempt, str):  # a key to forget
            self._failures.pop(attempt, None)
            return
        for counted in attempt.counted:
            times = self._failures.get(counted.key)
            if times is None:
                continue
            if counted.source is not None or counted.key.startswith("pair:"):
                del self._failures[counted.key]
            else:
                kept = [entry for entry in times if entry[2] != attempt.number]
                self._failures[counted.key] = deque(kept)

    def failed(self, *keys: str | Counted) -> None:
        """Count a failure under each key (without the check of `attempt`)."""
        self._record(Attempt(next(self._numbers), tuple(_counted(k) for k in keys)))

    def _record(self, attempt: Attempt) -> None:
        now = self._clock()
        for counted in attempt.counted:
            source = counted.source if counted.source is not None else f"#{attempt.number}"
            self._failures.setdefault(counted.key, deque()).append((now, source, attempt.number))
        if len(self._failures) > MAX_KEYS:
            self._forget_stale(now)

    def _forget_stale(self, now: float) -> None:
        for key in [k for k in self._failures if not self._recent(k, now)]:
            del self._failures[key]


def _key(key: str | Counted) -> str:
    return key.key if isinstance(key, Counted) else key


def _counted(key: str | Counted) -> Counted:
    return key if isinstance(key, Counted) else Counted(key)

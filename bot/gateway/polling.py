"""The poll runner: for platforms without push, fetch new messages into the same inbox.

One task per polling channel, one poll at a time. Each round: poll from the saved cursor, store
the messages (the same group commit as webhooks, so workers wake at once), and only then save
the new cursor. A crash between the two fetches the same messages again and the inbox's dedup
key drops them: a restart neither skips nor repeats. A failed poll keeps the cursor and waits
(the platform's retry-after, else a backoff that grows to `max_backoff`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from bot.platform.adapter import Poller, PollFailed
from bot.platform.messages import InboundMessage
from bot.storage.engine import StoreUnavailable

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0  # a platform down for long is still asked every five minutes


class CursorStore(Protocol):
    """What the runner needs of `bot.storage.store.Store`."""

    async def accept(self, messages: Sequence[InboundMessage]) -> list[bool]: ...
    async def load_cursor(self, channel: str) -> str | None: ...
    async def save_cursor(self, channel: str, cursor: str) -> None: ...


class PollLeadership(Protocol):
    """Which process polls a channel when several could (bot.storage.poll_leader)."""

    async def leads(self, channel: str) -> bool: ...
    async def close(self) -> None: ...


class PollEvents(Protocol):
    """What the runner reports (bot.runtime.metrics.Metrics)."""

    def received(self, channel: str, fresh: Sequence[bool]) -> None: ...
    def polled(self, channel: str, ok: bool) -> None: ...


Sleep = Callable[[float], Awaitable[None]]


class PollRunner:
    """Runs every poller between `start()` and `stop()`."""

    def __init__(
        self,
        store: CursorStore,
        pollers: Sequence[Poller],
        *,
        events: PollEvents | None = None,
        max_backoff: float = MAX_BACKOFF,
        sleep: Sleep = asyncio.sleep,
        leadership: PollLeadership | None = None,
    ) -> None:
        self._store = store
        self._leadership = leadership
        self._pollers = list(pollers)
        self._events = events
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for poller in self._pollers:
            task = asyncio.create_task(self._run(poller), name=f"poll-{poller.name}")
            self._tasks.append(task)

    async def stop(self) -> None:
        """Cancel the polls. A poll cut short saved nothing: the next start repeats it."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._leadership is not None:
            await self._leadership.close()

    async def _run(self, poller: Poller) -> None:
        failures = 0
        cursor: str | None = None
        loaded = False
        while True:
            if self._leadership is not None and not await self._leadership.leads(poller.name):
                loaded = False  # another process polls; if this one takes over, it reads the
                await self._sleep(max(poller.poll_interval, 1.0))  # cursor that one saved
                continue
            try:
                if not loaded:
                    cursor = await self._store.load_cursor(poller.name)
                    loaded = True
                cursor, wait = await self.poll_once(poller, cursor)
                failures = 0
            except asyncio.CancelledError:
                raise
            except PollFailed as exc:
                failures += 1
                self._report(poller.name, ok=False)
                wait = exc.retry_after or self._backoff(poller.poll_interval, failures)
                log.warning(
                    "channel=%s poll failed (%d in a row), next in %.0f s: %s",
                    poller.name,
                    failures,
                    wait,
                    exc,
                )
            except StoreUnavailable as exc:
                failures += 1
                wait = self._backoff(poller.poll_interval, failures)
                log.error("channel=%s poll not stored, next in %.0f s: %s", poller.name, wait, exc)
            except Exception:  # an adapter's bug must not end polling for good
                failures += 1
                wait = self._backoff(poller.poll_interval, failures)
                log.exception("channel=%s poll raised, next in %.0f s", poller.name, wait)
            await self._sleep(wait)

    async def poll_once(self, poller: Poller, cursor: str | None) -> tuple[str | None, float]:
        """One round: poll, store, save the cursor. The cursor to continue from, and the wait."""
        result = await poller.poll(cursor)
        if result.messages:
            fresh = await self._store.accept(result.messages)
            if self._events is not None:
                self._events.received(poller.name, fresh)
            log.info(
                "channel=%s polled %d messages (%d new)",
                poller.name,
                len(fresh),
                sum(fresh),
            )
        if result.cursor is not None and result.cursor != cursor:
            await self._store.save_cursor(poller.name, result.cursor)
            cursor = result.cursor
        self._report(poller.name, ok=True)
        wait = poller.poll_interval if result.retry_after is None else result.retry_after
        return cursor, max(wait, 0.0)

    def _report(self, channel: str, *, ok: bool) -> None:
        if self._events is not None:
            self._events.polled(channel, ok)

    def _backoff(self, interval: float, failures: int) -> float:
        """The interval doubled per failure in a row, capped, with jitter so that several
        processes polling one account do not ask in step."""
        base = min(self._max_backoff, max(interval, 1.0) * 2.0 ** min(failures - 1, 16))
        jitter: float = random.uniform(0.8, 1.0)  # noqa: S311 (jitter, not cryptography)
        return base * jitter

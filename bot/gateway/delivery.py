"""Delivering the outbox: claim due replies, send each through its channel's adapter, record what
came of it (sent, retry later, dead letter).

One loop claims only as many replies as it has free slots and sends each in a task of its own, so
a claimed reply is always being sent (its lease means "in flight"), and a slow platform holds one
slot, not the loop. Results recorded close together share a transaction (the store batches them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from bot.platform.adapter import Adapter, Publisher
from bot.platform.messages import OutboundMessage, Publication, SendResult
from bot.runtime.pacing import TokenBucket, backoff_delay
from bot.storage.announcements import read_announcement_context
from bot.storage.engine import StoreUnavailable
from bot.storage.models import OUTBOX_KIND_ANNOUNCEMENT, OutboxRow
from bot.storage.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryConfig:
    concurrency: int = 64  # replies in flight at once, over all channels
    lease_seconds: float = 30.0
    poll_interval: float = 1.0
    batch_window: float = 0.005  # after a wake-up, let more work arrive to claim it together
    max_attempts: int = 8
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    rate_per_second: float = 20.0
    channel_rates: Mapping[str, float] = field(default_factory=dict)
    send_timeout: float = 20.0


class DeliveryEvents(Protocol):
    def delivered(self, channel: str, outcome: str, seconds: float) -> None: ...


class Delivery:
    def __init__(
        self,
        store: Store,
        adapters: Mapping[str, Adapter],
        config: DeliveryConfig,
        worker_id: str,
        *,
        events: DeliveryEvents | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._adapters = adapters
        self._config = config
        self._worker_id = worker_id
        self._events = events
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._slots = max(1, config.concurrency)
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()
        self._buckets: dict[str, TokenBucket] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._stopping = False
        self._handed: deque[tuple[float, OutboxRow]] = deque()
        self._reserved = 0  # slots held for replies being written (`reserve`)
        self._chores: set[asyncio.Task[Any]] = set()

    def notify(self) -> None:
        """Replies were queued or revived: deliver them now."""
        self._wake.set()

    def reserve(self, wanted: int) -> int:
        """Hold up to `wanted` free slots for replies about to be written already claimed
        (`Store.hand_over_replies`); how many were held. Held and handed-over replies count
        as in flight, so the replies claimed by this worker never outnumber its slots."""
        free = self._slots - len(self._sending) - len(self._handed) - self._reserved
        held = max(0, min(wanted, free))
        self._reserved += held
        return held

    def take(self, rows: Sequence[OutboxRow], reserved: int) -> None:
        """Replies this worker claimed as it wrote them, in the slots `reserve` held: sent from
        memory, without another claim. The held slots not used are free again."""
        now = asyncio.get_running_loop().time()
        self._reserved -= reserved
        self._handed.extend((now, row) for row in rows)
        self._wake.set()
        self._slot_freed.set()

    def _background(self, settling: Awaitable[bool]) -> None:
        task = asyncio.ensure_future(_quietly(settling))
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    def _take_handed(self, free: int) -> int:
        """Start up to `free` handed-over replies; how many slots are left. A reply that waited
        for a slot past half its lease is handed back to the database rather than risk being
        sent by this worker and, after the lease, by another."""
        stale_after = self._config.lease_seconds / 2
        now = asyncio.get_running_loop().time()
        while free > 0 and self._handed:
            handed_at, row = self._handed.popleft()
            if now - handed_at > stale_after:
                self._background(self._store.release_outbox(row.id))
                continue
            self._start(row)
            free -= 1
        return free

    async def run(self) -> None:
        """Claim and send until `stop()`."""
        while not self._stopping:
            free = self._slots - len(self._sending) - self._reserved
            if free <= 0:
                # Every slot busy: wait for one (a pending wake-up stays set meanwhile).
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            self._wake.clear()  # before claiming: a wake-up during the claim is not lost
            free = self._take_handed(free)
            if free <= 0:
                continue
            rows: list[OutboxRow] = []
            try:
                rows = await self._store.claim_outbox(
                    self._worker_id, free, self._config.lease_seconds
                )
            except StoreUnavailable as exc:
                log.warning("outbox claim failed, will retry: %s", exc)
            except Exception:  # the loop must outlive any bug; it logs and polls again
                log.exception("outbox claim failed unexpectedly")
            for row in rows:
                self._start(row)
            if len(rows) == free:
                continue  # every slot got work: more may be waiting
            woken = False
            with contextlib.suppress(TimeoutError):
                woken = await asyncio.wait_for(self._wake.wait(), self._config.poll_interval)
            if woken and self._config.batch_window > 0:
                await asyncio.sleep(self._config.batch_window)

    async def stop(self, timeout: float) -> None:
        """Stop claiming; sends in flight get `timeout` seconds, then are cancelled and their
        claims released (so another process takes them at once)."""
        self._stopping = True
        self._wake.set()
        self._slot_freed.set()
        if self._sending:
            _, late = await asyncio.wait(self._sending, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        while self._handed:  # never started: hand them back for the next start at once
            _, row = self._handed.popleft()
            await _quietly(self._store.release_outbox(row.id))

    def _start(self, row: OutboxRow) -> None:
        task = asyncio.create_task(self._deliver(row))
        self._sending.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._sending.discard(finished)
            self._slot_freed.set()

        task.add_done_callback(done)

    def _bucket(self, channel: str) -> TokenBucket:
        bucket = self._buckets.get(channel)
        if bucket is None:
            rate = self._config.channel_rates.get(channel, self._config.rate_per_second)
            bucket = self._buckets[channel] = TokenBucket(rate)
        return bucket

    async def _deliver(self, row: OutboxRow) -> None:
        row_id = row.id
        adapter = self._adapters.get(row.channel)
        if adapter is None:
            error = f"no adapter for channel {row.channel!r} in this process (CIVICDESK_CHANNELS)"
            log.error("outbox %d: %s: dead-lettered", row_id, error)
            await _quietly(self._store.mark_dead(row_id, error))
            self._report(row.channel, "dead", 0.0)
            return
        try:
            if not await self._wait_for_turn(row):
                return
            started = asyncio.get_running_loop().time()
            result = await self._send(adapter, row)
            elapsed = asyncio.get_running_loop().time() - started
            await self._record(row, result, elapsed)
        except asyncio.CancelledError:
            await _quietly(self._store.release_outbox(row_id))
            raise

    async def _wait_for_turn(self, row: OutboxRow) -> bool:
        """Wait for the channel's rate limit; give the row back rather than outlive its lease
        (another worker would send it a second time). The send after the wait may take up to
        `send_timeout`, so the wait may only use what the lease has left beyond that."""
        left = self._config.lease_seconds
        if row.lease_until is not None:
            left = (row.lease_until - self._store.now()).total_seconds()
        try:
            async with asyncio.timeout(max(0.0, left - self._config.send_timeout)):
                await self._bucket(row.channel).acquire()
        except TimeoutError:
            log.info("outbox %d (%s): rate limit backlog, claim released", row.id, row.channel)
            await _quietly(self._store.release_outbox(row.id))
            return False
        return True

    async def _send(self, adapter: Adapter, row: OutboxRow) -> SendResult:
        if row.kind == OUTBOX_KIND_ANNOUNCEMENT:
            return await self._guarded(row, self._publish(adapter, row))
        message = OutboundMessage(
            id=row.id,
            channel=row.channel,
            conversation=row.conversation,
            text=row.text,
            public=row.public,
            recipient=row.recipient,
            reply_to=row.reply_to,
            reply_context=row.reply_context,
            attempt=row.attempts,
        )
        return await self._guarded(row, adapter.send(message))

    async def _publish(self, adapter: Adapter, row: OutboxRow) -> SendResult:
        """An announcement's post: `publish` with the announcement's link and picture."""
        if not isinstance(adapter, Publisher):
            return SendResult.failed(
                f"the adapter of channel {row.channel} cannot post announcements",
                retryable=False,
            )
        announcement_id, link = read_announcement_context(row.reply_context)
        image = None
        if announcement_id is not None:
            image = await self._store.announcement_image(announcement_id)
        publication = Publication(
            id=row.id,
            channel=row.channel,
            text=row.text,
            link=link,
            image=image[0] if image else None,
            image_type=image[1] if image else None,
            attempt=row.attempts,
            # Claimed before and neither settled nor released: that attempt's end is unknown.
            in_doubt=row.attempts > 1 and row.last_error is None,
        )
        return await adapter.publish(publication)

    async def _guarded(self, row: OutboxRow, sending: Awaitable[SendResult]) -> SendResult:
        budget = asyncio.timeout(self._config.send_timeout)
        try:
            async with budget:
                return await sending
        except TimeoutError as exc:
            if budget.expired():
                return SendResult.failed(f"no answer within {self._config.send_timeout:g} s")
            return SendResult.failed(f"TimeoutError: {exc}")  # the adapter's own time-out
        except Exception as exc:  # an adapter bug or a network error: worth another try
            log.warning("outbox %d (%s): send raised %s", row.id, row.channel, type(exc).__name__)
            return SendResult.failed(f"{type(exc).__name__}: {exc}")

    async def _record(self, row: OutboxRow, result: SendResult, elapsed: float) -> None:
        row_id = row.id
        if result.ok:
            await _quietly(self._store.mark_sent(row_id, result.platform_id))
            if row.kind == OUTBOX_KIND_ANNOUNCEMENT:
                log.info(
                    "outbox %d (%s): announcement posted as %s",
                    row_id,
                    row.channel,
                    result.platform_id,
                )
                await _quietly_do(self._store.record_post(row_id, result.platform_id, result.url))
            log.debug("outbox %d (%s): sent, attempt %d", row_id, row.channel, row.attempts)
            self._report(row.channel, "sent", elapsed)
            return
        error = result.error or "failed without a reason"
        if not result.retryable or row.attempts >= self._config.max_attempts:
            why = "not retryable" if not result.retryable else f"{row.attempts} attempts"
            await _quietly(self._store.mark_dead(row_id, error))
            log.error("outbox %d (%s): dead-lettered (%s): %s", row_id, row.channel, why, error)
            self._report(row.channel, "dead", elapsed)
            return
        delay = backoff_delay(
            row.attempts,
            base=self._config.backoff_base,
            cap=self._config.backoff_cap,
            retry_after=result.retry_after,
            rng=self._rng,
        )
        due = self._store.now() + timedelta(seconds=delay)
        await _quietly(self._store.mark_retry(row_id, error, due))
        log.warning(
            "outbox %d (%s): attempt %d failed, retry in %.2f s: %s",
            row_id,
            row.channel,
            row.attempts,
            delay,
            error,
        )
        self._wake_in(delay)
        self._report(row.channel, "retry", elapsed)

    def _wake_in(self, delay: float) -> None:
        """Wake the loop when a retry falls due, rather than at the next poll."""
        if self._stopping:
            return
        timers = self._timers

        def fire() -> None:
            timers.discard(timer)
            self.notify()

        timer = asyncio.get_running_loop().call_later(delay, fire)
        timers.add(timer)

    def _report(self, channel: str, outcome: str, seconds: float) -> None:
        if self._events is not None:
            self._events.delivered(channel, outcome, seconds)


async def _quietly_do(recording: Awaitable[None]) -> None:
    """Record what a platform called a post; the outbox row already says it was sent."""
    try:
        await recording
    except StoreUnavailable as exc:
        log.warning("could not record a post's id and link: %s", exc)


async def _quietly(settling: Awaitable[bool]) -> None:
    """Record a result; when the database is down the lease runs out and the row is retried."""
    try:
        await settling
    except StoreUnavailable as exc:
        log.warning("could not record a delivery result (the lease will expire): %s", exc)

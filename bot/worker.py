"""The workers of one process: they claim inbox rows and answer them, and claim outbox rows and
deliver them through the channel's adapter.

Each kind has one loop that claims only as many rows as it has free slots, and runs each row as
its own task: rows are never held while waiting for a slot, so a lease means "being worked on".
A loop wakes at once when work is committed in this process (`notify()`, the store's
`on_new_work`, and the inbox side after queuing replies), when a retry falls due, and otherwise
every `poll_interval` for work left by other processes or by crashed ones (expired leases).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol, TypeVar

from bot.adapter import Adapter, rules_for
from bot.db import StoreUnavailable
from bot.desk import Desk
from bot.escalation import DEFAULT_ETA
from bot.messages import OutboundMessage, SendResult
from bot.models import InboxMessage, OutboxMessage
from bot.pacing import TokenBucket, backoff_delay
from bot.pipeline import handle
from bot.store import Store

log = logging.getLogger(__name__)

Row = TypeVar("Row", InboxMessage, OutboxMessage)


@dataclass(frozen=True)
class WorkerConfig:
    # Rows in hand at once. Generous on purpose: the store groups the calls of rows in hand into
    # shared transactions, so more rows in hand means fewer transactions per message.
    inbox_concurrency: int = 32  # messages being answered (the desk itself is ~1 ms of CPU)
    outbox_concurrency: int = 64  # replies in flight, over all channels
    lease_seconds: float = 30.0  # a claim not settled by then is taken again (crash recovery)
    poll_interval: float = 1.0  # fallback for work committed by other processes
    max_attempts: int = 8  # delivery attempts before a reply is dead-lettered
    backoff_base: float = 1.0  # seconds; doubled per attempt, full jitter
    backoff_cap: float = 300.0
    rate_per_second: float = 20.0  # per channel, token bucket; 0 = unlimited
    channel_rates: Mapping[str, float] = field(default_factory=dict)  # per-channel overrides
    send_timeout: float = 20.0  # one adapter.send; keep it below lease_seconds
    stop_timeout: float = 10.0  # graceful stop: in-flight work gets this long, then is released
    inbox_max_attempts: int = 3  # a message the pipeline fails on this often is marked failed
    escalation_eta: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ETA))


class WorkerEvents(Protocol):
    """Optional observer, for metrics."""

    def handled(self, channel: str, decision: str, seconds: float) -> None: ...

    def delivered(self, channel: str, outcome: str, seconds: float) -> None:
        """outcome: "sent", "retry" or "dead"."""


Job = Callable[[], Awaitable[None]]


class _Loop:
    """One claiming loop: its slots, the tasks in flight, and what wakes it."""

    def __init__(self, name: str, slots: int) -> None:
        self.name = name
        self.slots = max(1, slots)
        self.wake = asyncio.Event()  # work was committed, or a retry fell due
        self.slot_freed = asyncio.Event()
        self.running: set[asyncio.Task[None]] = set()

    def free(self) -> int:
        return self.slots - len(self.running)


class Workers:
    def __init__(
        self,
        store: Store,
        desk: Callable[[], Desk],
        adapters: Mapping[str, Adapter],
        config: WorkerConfig,
        worker_id: str,
        *,
        events: WorkerEvents | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._desk = desk  # called per message, so a reloaded knowledge base is used at once
        self._adapters = adapters
        self._config = config
        self._worker_id = worker_id[:64]  # inbox.claimed_by
        self._events = events
        self._rng = rng or random.Random()  # noqa: S311 (jitter)
        self._inbox = _Loop("inbox", config.inbox_concurrency)
        self._outbox = _Loop("outbox", config.outbox_concurrency)
        self._buckets: dict[str, TokenBucket] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False
        self._listening = False

    async def start(self) -> None:
        if self._loops:
            return
        self._stopping = False
        if not self._listening:
            self._store.on_new_work(self.notify)
            self._listening = True
        self._loops = [
            asyncio.create_task(self._run(self._inbox, self._claim_inbox), name="inbox-loop"),
            asyncio.create_task(self._run(self._outbox, self._claim_outbox), name="outbox-loop"),
        ]
        log.info(
            "workers %s started: %d inbox, %d outbox slots",
            self._worker_id,
            self._inbox.slots,
            self._outbox.slots,
        )

    def notify(self) -> None:
        """New inbox rows were committed: claim them now."""
        self._inbox.wake.set()

    def notify_outbox(self) -> None:
        """New or revived outbox rows were committed: deliver them now."""
        self._outbox.wake.set()

    async def stop(self) -> None:
        """Stop claiming; give in-flight work `stop_timeout` to finish, then cancel it (its
        claims are released, so another process takes them at once)."""
        if not self._loops:
            return
        self._stopping = True
        for loop in (self._inbox, self._outbox):
            loop.wake.set()
            loop.slot_freed.set()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []
        running = self._inbox.running | self._outbox.running
        if running:
            _, late = await asyncio.wait(running, timeout=self._config.stop_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        log.info("workers %s stopped", self._worker_id)

    # --- the claiming loops ----------------------------------------------------------------------

    async def _run(self, loop: _Loop, claim: Callable[[int], Awaitable[list[Job]]]) -> None:
        while not self._stopping:
            free = loop.free()
            if free <= 0:
                # Every slot busy: wait for one (a pending wake-up stays set meanwhile).
                loop.slot_freed.clear()
                await loop.slot_freed.wait()
                continue
            loop.wake.clear()  # before claiming: a wake-up during the claim is not lost
            jobs: list[Job] = []
            try:
                jobs = await claim(free)
            except StoreUnavailable as exc:
                log.warning("%s claim failed, will retry: %s", loop.name, exc)
            except Exception:  # the loop must outlive any bug; it logs and polls again
                log.exception("%s claim failed unexpectedly", loop.name)
            for job in jobs:
                self._spawn(loop, job)
            if len(jobs) == free:
                continue  # every slot got work: more may be waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(loop.wake.wait(), self._config.poll_interval)

    def _spawn(self, loop: _Loop, job: Job) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(job())
        loop.running.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            loop.running.discard(finished)
            loop.slot_freed.set()

        task.add_done_callback(done)

    # --- inbox: answer ---------------------------------------------------------------------------

    async def _claim_inbox(self, free: int) -> list[Job]:
        rows = await self._store.claim_inbox(self._worker_id, free, self._config.lease_seconds)
        return [_bind(self._answer, row) for row in rows]

    async def _answer(self, row: InboxMessage) -> None:
        row_id = _row_id(row)
        adapter = self._adapters.get(row.channel)
        rules = adapter.text_rules if adapter is not None else rules_for(row.channel)
        started = asyncio.get_running_loop().time()
        try:
            handled = await handle(
                row, self._desk(), rules, self._store, eta=self._config.escalation_eta
            )
        except asyncio.CancelledError:
            await _quietly(self._store.release_inbox(row_id))
            raise
        except StoreUnavailable as exc:
            # The claim stays; its lease runs out and the row is taken again once the
            # database is back.
            log.warning("inbox %d (%s): store unavailable: %s", row_id, row.channel, exc)
            return
        except Exception:
            give_up = row.attempts >= self._config.inbox_max_attempts
            log.exception(
                "inbox %d (%s): handling failed (attempt %d)%s",
                row_id,
                row.channel,
                row.attempts,
                "; marked failed" if give_up else "",
            )
            await _quietly(self._store.release_inbox(row_id, give_up=give_up))
            return
        if handled.replies:
            self.notify_outbox()
        if self._events is not None and handled.finished:
            elapsed = asyncio.get_running_loop().time() - started
            self._events.handled(row.channel, handled.decision, elapsed)

    # --- outbox: deliver -------------------------------------------------------------------------

    async def _claim_outbox(self, free: int) -> list[Job]:
        rows = await self._store.claim_outbox(self._worker_id, free, self._config.lease_seconds)
        return [_bind(self._deliver, row) for row in rows]

    def _bucket(self, channel: str) -> TokenBucket:
        bucket = self._buckets.get(channel)
        if bucket is None:
            rate = self._config.channel_rates.get(channel, self._config.rate_per_second)
            bucket = self._buckets[channel] = TokenBucket(rate)
        return bucket

    async def _deliver(self, row: OutboxMessage) -> None:
        row_id = _row_id(row)
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

    async def _wait_for_turn(self, row: OutboxMessage) -> bool:
        """Wait for the channel's rate limit; give the row back rather than outlive its lease
        (another worker would send it a second time)."""
        row_id = _row_id(row)
        try:
            async with asyncio.timeout(self._config.lease_seconds / 2):
                await self._bucket(row.channel).acquire()
        except TimeoutError:
            log.info("outbox %d (%s): rate limit backlog, claim released", row_id, row.channel)
            await _quietly(self._store.release_outbox(row_id))
            return False
        return True

    async def _send(self, adapter: Adapter, row: OutboxMessage) -> SendResult:
        row_id = _row_id(row)
        message = OutboundMessage(
            id=row_id,
            channel=row.channel,
            conversation=row.conversation,
            text=row.text,
            public=row.public,
            recipient=row.recipient,
            reply_to=row.reply_to,
            attempt=row.attempts,
        )
        budget = asyncio.timeout(self._config.send_timeout)
        try:
            async with budget:
                return await adapter.send(message)
        except TimeoutError as exc:
            if budget.expired():
                return SendResult.failed(f"no answer within {self._config.send_timeout:g} s")
            return SendResult.failed(f"TimeoutError: {exc}")  # the adapter's own time-out
        except Exception as exc:  # an adapter bug or a network error: worth another try
            log.warning("outbox %d (%s): send raised %s", row_id, row.channel, type(exc).__name__)
            return SendResult.failed(f"{type(exc).__name__}: {exc}")

    async def _record(self, row: OutboxMessage, result: SendResult, elapsed: float) -> None:
        row_id = _row_id(row)
        if result.ok:
            await _quietly(self._store.mark_sent(row_id, result.platform_id))
            log.info("outbox %d (%s): sent, attempt %d", row_id, row.channel, row.attempts)
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
        self._wake_outbox_in(delay)
        self._report(row.channel, "retry", elapsed)

    def _wake_outbox_in(self, delay: float) -> None:
        """Wake the outbox loop when a retry falls due, rather than at the next poll."""
        if self._stopping:
            return
        timers = self._timers

        def fire() -> None:
            timers.discard(timer)
            self.notify_outbox()

        timer = asyncio.get_running_loop().call_later(delay, fire)
        timers.add(timer)

    def _report(self, channel: str, outcome: str, seconds: float) -> None:
        if self._events is not None:
            self._events.delivered(channel, outcome, seconds)


def _row_id(row: InboxMessage | OutboxMessage) -> int:
    if row.id is None:  # claimed rows come from the database: they always have one
        raise ValueError("a claimed row without an id")
    return row.id


def _bind(work: Callable[[Row], Awaitable[None]], row: Row) -> Job:
    def job() -> Awaitable[None]:
        return work(row)

    return job


async def _quietly(settling: Awaitable[bool]) -> None:
    """Record a result; when the database is down the lease runs out and the row is retried."""
    try:
        await settling
    except StoreUnavailable as exc:
        log.warning("could not record a result (lease will expire and retry): %s", exc)

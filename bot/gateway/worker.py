"""The workers of one process: inbox loops that answer messages, and the delivery of replies
(`bot.gateway.delivery`).

An inbox loop claims a batch of messages, answers them (`bot.gateway.pipeline.handle_batch`: one
read
of their conversations' state, one transaction for all the results) and goes again. Loops wake
at once when work is committed in this process (`notify()` is the store's `on_new_work`; the
delivery is woken when replies are queued), when a retry falls due, and otherwise every
`poll_interval`, for work left by other processes or by crashed ones (expired leases).

Under load, batches form by themselves: what arrives while a loop is busy is claimed together by
its next claim. A wait after each wake-up (`batch_window`) makes batches larger still and saves
CPU, but adds its length to every reply: at 300 messages/s a 5 ms window measured p99 79-147 ms
from POST to reply against 53-65 ms without one (benchmarks/end_to_end.py), so it is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bot.answering.desk import Desk
from bot.gateway.delivery import Delivery, DeliveryConfig
from bot.gateway.institutions import Route, handle_routed
from bot.gateway.pipeline import handle_batch
from bot.platform.adapter import Adapter, StaffDirectory, TextRules, rules_for
from bot.storage.engine import StoreUnavailable
from bot.storage.models import InboxRow
from bot.storage.store import Store
from bot.tickets.handoff import NO_HANDOFF, Handoff

log = logging.getLogger(__name__)

PRUNE_EVERY = 600.0  # seconds between clean-ups of expired conversation state
REMIND_CHECK_EVERY = 60.0  # seconds between looks for tickets past their promised answer time


@dataclass(frozen=True)
class WorkerConfig:
    inbox_concurrency: int = 2  # inbox loops: one answers while the other waits on the database
    inbox_batch: int = 32  # messages claimed at once by a loop (~1 ms of desk work each)
    outbox_concurrency: int = 64  # replies in flight at once, over all channels
    lease_seconds: float = 30.0  # a claim not settled by then is taken again (crash recovery)
    poll_interval: float = 1.0  # fallback for work committed by other processes
    batch_window: float = 0.0  # after a wake-up, wait this long so work is claimed together
    max_attempts: int = 8  # delivery attempts before a reply is dead-lettered
    backoff_base: float = 1.0  # seconds; doubled per attempt, full jitter
    backoff_cap: float = 300.0
    rate_per_second: float = 20.0  # per channel, token bucket; 0 = unlimited
    channel_rates: Mapping[str, float] = field(default_factory=dict)  # per-channel overrides
    send_timeout: float = 20.0  # one adapter.send; keep it below lease_seconds
    stop_timeout: float = 10.0  # graceful stop: in-flight work gets this long, then is released
    inbox_max_attempts: int = 3  # a message the pipeline fails on this often is marked failed
    handoff: Handoff = NO_HANDOFF  # staff channels, reply windows, answer times
    reminder_every: float = 3600.0  # seconds between reminders of one overdue ticket

    def delivery(self) -> DeliveryConfig:
        return DeliveryConfig(
            concurrency=self.outbox_concurrency,
            lease_seconds=self.lease_seconds,
            poll_interval=self.poll_interval,
            batch_window=self.batch_window,
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            rate_per_second=self.rate_per_second,
            channel_rates=self.channel_rates,
            send_timeout=self.send_timeout,
        )


class WorkerEvents(Protocol):
    """Optional observer, for metrics."""

    def handled(self, channel: str, decision: str, seconds: float) -> None:
        """One message answered; `seconds`: the desk's time for it."""

    def delivered(self, channel: str, outcome: str, seconds: float) -> None:
        """One delivery attempt; outcome "sent", "retry" or "dead"."""


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
        route: Route | None = None,
    ) -> None:
        self._store = store
        self._route = route  # many institutions: each channel's desk and staff
        self._desk = desk  # asked per batch, so a reloaded knowledge base is used at once
        self._adapters = adapters
        self._config = config
        self._worker_id = worker_id[:64]  # inbox.claimed_by
        self._events = events
        self._delivery = Delivery(
            store, adapters, config.delivery(), self._worker_id, events=events, rng=rng
        )
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._pruned_at: float | None = None
        self._reminded_at: float | None = None
        self._stopping = False
        self._listening = False

    async def start(self) -> None:
        if self._loops:
            return
        self._stopping = False
        if not self._listening:
            self._store.on_new_work(self.notify)
            self._store.hand_over_replies(
                self._worker_id, self._config.lease_seconds, self._delivery
            )
            self._listening = True
        self._loops = [
            asyncio.create_task(self._inbox_loop(), name=f"inbox-loop-{n}")
            for n in range(max(1, self._config.inbox_concurrency))
        ]
        self._loops.append(asyncio.create_task(self._delivery.run(), name="outbox-loop"))
        log.info(
            "workers %s started: %d inbox loops of %d, %d delivery slots",
            self._worker_id,
            self._config.inbox_concurrency,
            self._config.inbox_batch,
            self._config.outbox_concurrency,
        )

    def notify(self) -> None:
        """New inbox rows were committed: claim them now."""
        self._wake.set()

    def notify_outbox(self) -> None:
        """New or revived outbox rows were committed: deliver them now."""
        self._delivery.notify()

    async def stop(self) -> None:
        """Stop claiming; give work in hand `stop_timeout` to finish, then cancel it (its claims
        are released, so another process takes them at once)."""
        if not self._loops:
            return
        self._stopping = True
        self._wake.set()
        timeout = self._config.stop_timeout
        inbox, delivery = self._loops[:-1], self._loops[-1]
        stopping_delivery = asyncio.create_task(self._delivery.stop(timeout))
        _, late = await asyncio.wait(inbox, timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*inbox, stopping_delivery, return_exceptions=True)
        await asyncio.gather(delivery, return_exceptions=True)
        self._loops = []
        log.info("workers %s stopped", self._worker_id)

    # --- inbox -----------------------------------------------------------------------------------

    async def _inbox_loop(self) -> None:
        batch = max(1, self._config.inbox_batch)
        while not self._stopping:
            self._wake.clear()  # before claiming: a wake-up during the claim is not lost
            rows: list[InboxRow] = []
            try:
                rows = await self._store.claim_inbox(
                    self._worker_id, batch, self._config.lease_seconds
                )
                if rows:
                    await self._answer(rows)
            except StoreUnavailable as exc:
                # Claims already made stay; their leases run out and they are taken again.
                log.warning("inbox: store unavailable, will retry: %s", exc)
            except Exception:  # the loop must outlive any bug; it logs and polls again
                log.exception("inbox loop failed on a batch of %d", len(rows))
            if len(rows) == batch:
                continue  # a full batch: more may be waiting
            await self._prune_now_and_then()
            woken = False
            with contextlib.suppress(TimeoutError):
                woken = await asyncio.wait_for(self._wake.wait(), self._config.poll_interval)
            if woken and self._config.batch_window > 0 and not self._stopping:
                await asyncio.sleep(self._config.batch_window)

    async def _prune_now_and_then(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._reminded_at is None or now - self._reminded_at >= REMIND_CHECK_EVERY:
            self._reminded_at = now
            await self._remind_overdue()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        try:
            pruned = await self._store.prune_expired_state()
        except StoreUnavailable as exc:
            log.warning("could not prune expired conversation state: %s", exc)
            return
        if pruned:
            log.info("pruned %d expired clarifying questions", pruned)

    async def _remind_overdue(self) -> None:
        try:
            reminded = await self._store.remind_overdue(
                every=self._config.reminder_every, handoff=self._config.handoff
            )
        except StoreUnavailable as exc:
            log.warning("could not look for overdue tickets: %s", exc)
            return
        if reminded:
            log.info("reminded staff of %d overdue tickets", reminded)
            self._delivery.notify()

    def _rules(self, channel: str) -> TextRules:
        adapter = self._adapters.get(channel)
        return adapter.text_rules if adapter is not None else rules_for(channel)

    async def _staff_name(self, channel: str, user: str) -> str | None:
        adapter = self._adapters.get(channel)
        return await adapter.staff_name(user) if isinstance(adapter, StaffDirectory) else None

    async def _answer(self, rows: list[InboxRow]) -> None:
        try:
            if self._route is not None:
                results = await handle_routed(
                    rows, self._route, self._rules, self._store, staff_names=self._staff_name
                )
            else:
                results = await handle_batch(
                    rows,
                    self._desk(),
                    self._rules,
                    self._store,
                    handoff=self._config.handoff,
                    staff_names=self._staff_name,
                )
        except asyncio.CancelledError:
            for row in rows:
                await self._release(row, None)
            raise
        except StoreUnavailable:
            raise
        except Exception as exc:  # e.g. the desk could not be had: every row is handed back
            results = [exc] * len(rows)
        replies = 0
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, Exception):
                await self._release(row, result)
                continue
            replies += result.replies
            if self._events is not None and result.finished:
                self._events.handled(row.channel, result.decision, result.seconds)
        if replies:
            self._delivery.notify()

    async def _release(self, row: InboxRow, error: Exception | None) -> None:
        """Hand a row back: to be tried again, or marked failed after too many tries."""
        if row.id is None:
            return
        give_up = error is not None and row.attempts >= self._config.inbox_max_attempts
        if error is not None:
            log.error(
                "inbox %d (%s): handling failed (attempt %d)%s",
                row.id,
                row.channel,
                row.attempts,
                "; marked failed" if give_up else "",
                exc_info=error,
            )
        try:
            await self._store.release_inbox(row.id, give_up=give_up)
        except StoreUnavailable as exc:
            log.warning("inbox %d: could not release (the lease will expire): %s", row.id, exc)

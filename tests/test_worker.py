"""Workers against a real database, delivering through a small in-test adapter.

The adapter is an in-memory fake of the Adapter protocol: the real adapters are tested against
their platforms elsewhere; here what matters is what the workers do with each kind of result.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.answering.desk import Desk, Reply
from bot.answering.knowledge import load_knowledge
from bot.gateway.worker import WorkerConfig, Workers
from bot.platform.adapter import TextRules
from bot.platform.messages import InboundMessage, OutboundMessage, SendResult
from bot.runtime.pacing import TokenBucket, backoff_delay
from bot.storage.models import INBOX, OUTBOX, OutboxRow
from bot.storage.store import Store
from tests.adapter_support import SendOnlyAdapter

KNOWLEDGE = load_knowledge(Path(__file__).parents[1] / "knowledge")
# Built once: a desk takes ~0.4 s to index the knowledge base, and the workers keep the clarify
# state in the database, not in the desk.
DESK = Desk(KNOWLEDGE)
QUESTIONS = ["诉讼费怎么交", "How do I pay the court fee?", "我的案子现在到哪一步了？", "谢谢"]

# Poll rarely: on the happy path the wake-ups must do the work.
FAST = WorkerConfig(poll_interval=30.0, backoff_base=0.01, backoff_cap=0.05, stop_timeout=1.0)

Outcome = SendResult | Exception


class ScriptedAdapter(SendOnlyAdapter):
    """Answers each send with the next scripted outcome (then success) and records the attempt."""

    text_rules = TextRules(4000)

    def __init__(self, name: str = "webhook", script: Iterable[Outcome] = ()) -> None:
        self.name = name
        self.script: deque[Outcome] = deque(script)
        self.attempts: list[tuple[float, OutboundMessage]] = []
        self.delivered: list[OutboundMessage] = []
        self.block: asyncio.Event | None = None  # set: every send waits for it

    async def send(self, msg: OutboundMessage) -> SendResult:
        self.attempts.append((time.monotonic(), msg))
        if self.block is not None:
            await self.block.wait()
        outcome = self.script.popleft() if self.script else SendResult.sent(f"p-{msg.id}")
        if isinstance(outcome, Exception):
            raise outcome
        if outcome.ok:
            self.delivered.append(msg)
        return outcome


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def inbound(n: int, channel: str = "webhook", text: str = "诉讼费怎么交") -> InboundMessage:
    return InboundMessage(channel, f"evt-{n}", f"conv-{n}", f"user-{n}", text, False)


def make_workers(
    store: Store,
    *adapters: ScriptedAdapter,
    config: WorkerConfig = FAST,
    worker_id: str = "test",
    desk: Callable[[], Desk] | None = None,
) -> Workers:
    return Workers(
        store,
        desk or (lambda: DESK),
        {a.name: a for a in adapters},
        config,
        worker_id,
        rng=random.Random(7),
    )


async def test_a_message_is_answered_and_delivered_at_once(store: Store) -> None:
    adapter = ScriptedAdapter()
    workers = make_workers(store, adapter)
    await workers.start()
    try:
        await store.accept([inbound(1)])
        await eventually(lambda: len(adapter.delivered) == 1)  # long before the 30 s poll
    finally:
        await workers.stop()
    [sent] = adapter.delivered
    assert (sent.channel, sent.conversation, sent.recipient, sent.attempt) == (
        "webhook",
        "conv-1",
        "user-1",
        1,
    )
    assert "court.example.gov" in sent.text
    depths = await store.queue_depths()
    assert depths["inbox_new"] == depths["outbox_pending"] == depths["outbox_sending"] == 0


async def test_retryable_failures_are_retried_honouring_retry_after(store: Store) -> None:
    adapter = ScriptedAdapter(
        script=[
            SendResult.failed("HTTP 429", retry_after=0.3),
            SendResult.failed("HTTP 503"),
            ConnectionResetError("peer went away"),  # an exception counts as retryable
        ]
    )
    workers = make_workers(store, adapter)
    await workers.start()
    try:
        await store.accept([inbound(1)])
        await eventually(lambda: len(adapter.delivered) == 1)
    finally:
        await workers.stop()
    assert [msg.attempt for _, msg in adapter.attempts] == [1, 2, 3, 4]
    assert len({msg.id for _, msg in adapter.attempts}) == 1
    first, second = adapter.attempts[0][0], adapter.attempts[1][0]
    assert second - first >= 0.3  # not before the platform said
    assert await store.list_dead() == []


async def test_a_permanent_failure_is_dead_lettered_and_can_be_retried(store: Store) -> None:
    adapter = ScriptedAdapter(
        script=[SendResult.failed("HTTP 400: chat not found", retryable=False)]
    )
    workers = make_workers(store, adapter)
    await workers.start()
    try:
        await store.accept([inbound(1)])
        await eventually(lambda: len(adapter.attempts) == 1)
        dead = await _wait_for_dead(store, 1)
        assert dead[0].last_error == "HTTP 400: chat not found"
        assert adapter.delivered == []

        assert dead[0].id is not None and await store.retry_dead(dead[0].id)
        workers.notify_outbox()
        await eventually(lambda: len(adapter.delivered) == 1)
    finally:
        await workers.stop()
    assert await store.list_dead() == []


async def _wait_for_dead(store: Store, count: int) -> list[OutboxRow]:
    deadline = time.monotonic() + 10
    while len(dead := await store.list_dead()) < count:
        assert time.monotonic() < deadline, "no dead letter in time"
        await asyncio.sleep(0.02)
    return dead


async def test_a_reply_is_dead_lettered_after_the_last_attempt(store: Store) -> None:
    adapter = ScriptedAdapter(script=[TimeoutError("slow")] * 10)
    config = WorkerConfig(poll_interval=30.0, backoff_base=0.01, backoff_cap=0.02, max_attempts=3)
    workers = make_workers(store, adapter, config=config)
    await workers.start()
    try:
        await store.accept([inbound(1)])
        [dead] = await _wait_for_dead(store, 1)
    finally:
        await workers.stop()
    assert len(adapter.attempts) == 3
    assert dead.attempts == 3
    assert "TimeoutError" in (dead.last_error or "")


async def test_a_reply_for_a_channel_without_adapter_is_dead_lettered(store: Store) -> None:
    workers = make_workers(store, ScriptedAdapter())
    await workers.start()
    try:
        await store.accept([inbound(1, channel="retired-channel")])
        [dead] = await _wait_for_dead(store, 1)
    finally:
        await workers.stop()
    assert "no adapter for channel 'retired-channel'" in (dead.last_error or "")


async def test_stop_releases_a_delivery_that_does_not_finish(store: Store) -> None:
    adapter = ScriptedAdapter()
    adapter.block = asyncio.Event()  # the platform never answers
    config = WorkerConfig(poll_interval=30.0, stop_timeout=0.1)
    workers = make_workers(store, adapter, config=config)
    await workers.start()
    await store.accept([inbound(1)])
    await eventually(lambda: len(adapter.attempts) == 1)
    await workers.stop()
    depths = await store.queue_depths()
    assert depths["outbox_sending"] == 0 and depths["outbox_pending"] == 1
    [again] = await store.claim_outbox("next-process", 5, 30)  # at once, no lease to wait out
    assert again.attempts == 1  # the interrupted try was not counted


async def test_a_message_the_pipeline_always_fails_on_is_marked_failed(store: Store) -> None:
    def broken_desk() -> Desk:
        raise RuntimeError("knowledge base exploded")

    config = WorkerConfig(poll_interval=0.02, inbox_max_attempts=2)
    workers = make_workers(store, ScriptedAdapter(), config=config, desk=broken_desk)
    await workers.start()
    try:
        await store.accept([inbound(1)])
        deadline = time.monotonic() + 10
        while (await store.queue_depths())["inbox_failed"] != 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        await workers.stop()


async def test_a_message_that_breaks_the_desk_does_not_hold_up_the_others(store: Store) -> None:
    class FragileDesk(Desk):
        def respond(self, text: str, **options: object) -> Reply:
            if "boom" in text:
                raise ValueError("cannot answer this one")
            return super().respond(text, **options)  # type: ignore[arg-type]

    adapter = ScriptedAdapter()
    fragile = FragileDesk(KNOWLEDGE)  # once: the matcher index is what takes the time
    config = WorkerConfig(poll_interval=0.02, inbox_max_attempts=1)
    workers = make_workers(store, adapter, config=config, desk=lambda: fragile)
    await workers.start()
    try:
        await store.accept([inbound(1, text="boom"), inbound(2), inbound(3)])
        await eventually(lambda: len(adapter.delivered) == 2)
        deadline = time.monotonic() + 10
        while (await store.queue_depths())["inbox_failed"] != 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        await workers.stop()
    assert {m.conversation for m in adapter.delivered} == {"conv-2", "conv-3"}


async def test_each_channel_is_held_to_its_rate(store: Store) -> None:
    adapter = ScriptedAdapter()
    config = WorkerConfig(poll_interval=30.0, channel_rates={"webhook": 20.0})
    workers = make_workers(store, adapter, config=config)
    await workers.start()
    try:
        await store.accept([inbound(n) for n in range(25)])
        await eventually(lambda: len(adapter.delivered) == 25)
    finally:
        await workers.stop()
    times = sorted(t for t, _ in adapter.attempts)
    # A burst of 20 goes at once; the 5 after it come at 20 per second.
    assert times[-1] - times[0] >= 5 / 20 * 0.9


async def test_replies_marked_sending_never_outnumber_the_delivery_slots(store: Store) -> None:
    # A process that dies sends again only what it had in flight: so a reply may be marked as
    # being sent only while it really is, at most one per delivery slot, however many queue up.
    adapter = ScriptedAdapter()
    adapter.block = asyncio.Event()
    config = WorkerConfig(poll_interval=0.02, outbox_concurrency=3, rate_per_second=0)
    workers = make_workers(store, adapter, config=config)

    async def sending() -> int:
        async with store.engine.connect() as connection:
            query = select(func.count()).where(OUTBOX.c.status == "sending")
            return int((await connection.execute(query)).scalar_one())

    await workers.start()
    try:
        for start in range(0, 20, 5):  # batches arriving while the receiver hangs
            await store.accept([inbound(n) for n in range(start, start + 5)])
            await asyncio.sleep(0.05)
        await eventually(lambda: len(adapter.attempts) == 3)
        deadline = time.monotonic() + 10
        while (depths := await store.queue_depths())["outbox_pending"] < 17:
            assert time.monotonic() < deadline, depths  # every message answered, 17 replies wait
            await asyncio.sleep(0.02)
        assert depths["inbox_new"] + depths["inbox_claimed"] == 0
        assert await sending() == 3
        await asyncio.sleep(0.2)
        assert len(adapter.attempts) == 3 and await sending() == 3
        adapter.block.set()
        await eventually(lambda: len(adapter.delivered) == 20)
    finally:
        await workers.stop()
    assert len({m.id for m in adapter.delivered}) == 20
    assert await sending() == 0


async def test_a_reply_waiting_too_long_for_its_turn_is_handed_back_not_held(
    store: Store,
) -> None:
    # 2 replies per second and a 0.2 s lease: the third reply would wait longer than its lease
    # allows, so its claim is released (and taken again) instead of sent by two workers.
    adapter = ScriptedAdapter()
    config = WorkerConfig(poll_interval=0.02, lease_seconds=0.2, channel_rates={"webhook": 2.0})
    workers = make_workers(store, adapter, config=config)
    await workers.start()
    try:
        await store.accept([inbound(n) for n in range(3)])
        await eventually(lambda: len(adapter.delivered) == 3)
    finally:
        await workers.stop()
    assert len({m.id for m in adapter.delivered}) == 3
    assert [m.attempt for m in adapter.delivered] == [1, 1, 1]  # released claims cost no attempt


async def test_two_processes_on_one_database_answer_each_message_exactly_once(
    database_url: str,
) -> None:
    one, two = await Store.open(database_url), await Store.open(database_url)
    adapter = ScriptedAdapter()
    config = WorkerConfig(
        poll_interval=0.05, inbox_concurrency=4, outbox_concurrency=8, rate_per_second=0
    )
    first = make_workers(one, adapter, config=config, worker_id="process-1")
    second = make_workers(two, adapter, config=config, worker_id="process-2")
    await first.start()
    await second.start()
    try:
        batches = [
            [inbound(n, text=QUESTIONS[n % len(QUESTIONS)]) for n in range(start, start + 10)]
            for start in range(0, 300, 10)
        ]
        await asyncio.gather(*((one if i % 2 else two).accept(b) for i, b in enumerate(batches)))
        await eventually(lambda: len(adapter.delivered) >= 300, timeout=45)
        await asyncio.sleep(0.2)  # nothing more may arrive
    finally:
        await first.stop()
        await second.stop()
    try:
        assert len(adapter.delivered) == 300
        assert len({m.id for m in adapter.delivered}) == 300
        assert len({m.conversation for m in adapter.delivered}) == 300
        async with one.engine.connect() as connection:
            done = await connection.execute(
                select(INBOX.c.claimed_by).where(INBOX.c.status == "done")
            )
            workers = [row.claimed_by for row in done]
            per_inbox = await connection.execute(
                select(OUTBOX.c.inbox_id, func.count()).group_by(OUTBOX.c.inbox_id)
            )
            counts = {inbox_id: count for inbox_id, count in per_inbox}
        assert len(workers) == 300
        assert set(workers) == {"process-1", "process-2"}  # both took part
        assert len(counts) == 300 and set(counts.values()) == {1}
    finally:
        await one.close()
        await two.close()


# --- pacing --------------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_full_jitter_up_to_the_cap() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (10, 60.0)]:
        delays = [backoff_delay(attempt, base=1.0, cap=60.0, rng=rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # spread over the whole range
        assert min(delays) < ceiling * 0.2


def test_retry_after_is_a_floor_for_the_backoff() -> None:
    rng = random.Random(1)
    assert all(
        backoff_delay(1, base=1.0, cap=60.0, retry_after=30.0, rng=rng) == 30.0 for _ in range(50)
    )
    assert backoff_delay(1, base=1.0, cap=2.0, retry_after=3600.0, rng=rng) == 3600.0


async def test_token_bucket_lets_a_burst_through_then_paces() -> None:
    bucket = TokenBucket(rate=50.0, burst=5.0)
    started = time.monotonic()
    for _ in range(5):
        await bucket.acquire()
    assert time.monotonic() - started < 0.05
    for _ in range(10):
        await bucket.acquire()
    assert time.monotonic() - started >= 10 / 50 * 0.9


async def test_a_rate_of_zero_means_no_limit() -> None:
    bucket = TokenBucket(rate=0.0)
    for _ in range(1000):
        await bucket.acquire()


@pytest.mark.parametrize("attempt", [1, 5])
def test_backoff_without_jitter_source_still_stays_in_range(attempt: int) -> None:
    assert 0.0 <= backoff_delay(attempt, base=0.5, cap=4.0) <= 4.0

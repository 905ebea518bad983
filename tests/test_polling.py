"""The poll runner against a real store: platforms without push feed the same inbox, and the
cursor is saved only after the messages are, so a restart neither skips nor repeats."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from bot.config.settings import Settings
from bot.gateway.app import create_app
from bot.gateway.polling import PollRunner
from bot.gateway.reload import KnowledgeHolder
from bot.gateway.worker import WorkerConfig, Workers
from bot.platform.adapter import TEXT_RULES, PollFailed, PollResult
from bot.platform.messages import InboundMessage, OutboundMessage, SendResult
from bot.runtime.metrics import Metrics
from bot.storage.engine import StoreUnavailable
from bot.storage.models import INBOX
from bot.storage.store import Store
from tests.adapter_support import SendOnlyAdapter
from tests.web_support import SMALL_KB


def mention(number: int, text: str = "诉讼费在哪里交") -> InboundMessage:
    return InboundMessage(
        channel="board",
        platform_id=f"status-{number}",
        conversation=f"status-{number}",
        sender="citizen",
        mention="@citizen",
        text=text,
        public=True,
        reply_context=f'{{"status":"{number}"}}',
    )


class ScriptedPoller(SendOnlyAdapter):
    """A platform whose polls return what the test scripted, recording the cursors asked."""

    text_rules = TEXT_RULES["weibo"]

    def __init__(self, script: Sequence[PollResult | Exception], name: str = "board") -> None:
        self.name = name
        self.poll_interval = 0.0
        self.script = deque(script)
        self.asked: list[str | None] = []
        self.sent: list[OutboundMessage] = []
        self.drained = asyncio.Event()

    async def poll(self, cursor: str | None) -> PollResult:
        self.asked.append(cursor)
        if not self.script:
            self.drained.set()
            await asyncio.Event().wait()  # nothing more: wait to be cancelled
        step = self.script.popleft()
        if isinstance(step, Exception):
            raise step
        return step

    async def send(self, msg: OutboundMessage) -> SendResult:
        self.sent.append(msg)
        return SendResult.sent()


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


async def inbox_ids(store: Store) -> list[str]:
    async with store.engine.connect() as connection:
        rows = await connection.execute(select(INBOX.c.platform_id).order_by(INBOX.c.id))
        return [row[0] for row in rows]


async def run_until_drained(runner: PollRunner, poller: ScriptedPoller) -> None:
    await runner.start()
    try:
        await asyncio.wait_for(poller.drained.wait(), 10)
    finally:
        await runner.stop()


async def test_polled_messages_are_stored_and_the_cursor_saved_after_them(store: Store) -> None:
    poller = ScriptedPoller(
        [
            PollResult([], cursor="10"),  # the first poll only learns where "now" is
            PollResult([mention(11), mention(12)], cursor="12"),
            PollResult([], cursor=None),  # nothing new: the cursor stays
        ]
    )
    metrics = Metrics()
    runner = PollRunner(store, [poller], events=metrics, sleep=no_wait)
    await run_until_drained(runner, poller)

    assert poller.asked == [None, "10", "12", "12"]
    assert await inbox_ids(store) == ["status-11", "status-12"]
    assert await store.load_cursor("board") == "12"
    assert metrics.messages_in.get("board", "new") == 2
    assert metrics.polls.get("board", "ok") == 3


async def test_a_restart_resumes_from_the_saved_cursor(store: Store) -> None:
    await store.save_cursor("board", "41")
    poller = ScriptedPoller([PollResult([mention(42)], cursor="42")])
    await run_until_drained(PollRunner(store, [poller], sleep=no_wait), poller)
    assert poller.asked[0] == "41"
    assert await store.load_cursor("board") == "42"


async def test_a_failed_poll_keeps_the_cursor_and_waits_as_the_platform_asked(
    store: Store,
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    poller = ScriptedPoller(
        [
            PollResult([mention(1)], cursor="1"),
            PollFailed("HTTP 429: rate limited", retry_after=120.0),
            PollFailed("HTTP 502"),
            PollResult([mention(2)], cursor="2"),
        ]
    )
    poller.poll_interval = 5.0
    metrics = Metrics()
    await run_until_drained(PollRunner(store, [poller], events=metrics, sleep=sleep), poller)

    assert poller.asked == [None, "1", "1", "1", "2"]
    assert waits[0] == 5.0 and waits[1] == 120.0
    assert 5.0 * 2 * 0.8 <= waits[2] <= 5.0 * 2  # the second failure in a row: backoff doubled
    assert await inbox_ids(store) == ["status-1", "status-2"]
    assert metrics.polls.get("board", "failed") == 2


async def test_a_crash_between_storing_and_saving_the_cursor_repeats_nothing(
    store: Store,
) -> None:
    """The messages are stored, the cursor is not (the process died): the next run polls from
    the old cursor, gets the same messages, and the inbox keeps one of each."""

    original = store.save_cursor
    failed = False

    async def save_once_failing(channel: str, cursor: str) -> None:
        nonlocal failed
        if not failed:
            failed = True
            raise StoreUnavailable("the process died here")
        await original(channel, cursor)

    store.save_cursor = save_once_failing  # type: ignore[method-assign]
    poller = ScriptedPoller(
        [
            PollResult([mention(7), mention(8)], cursor="8"),
            PollResult([mention(7), mention(8), mention(9)], cursor="9"),
        ]
    )
    metrics = Metrics()
    await run_until_drained(PollRunner(store, [poller], events=metrics, sleep=no_wait), poller)

    assert poller.asked == [None, None, "9"]  # the failed save kept the old cursor
    assert await inbox_ids(store) == ["status-7", "status-8", "status-9"]
    assert metrics.messages_in.get("board", "duplicate") == 2
    assert await store.load_cursor("board") == "9"


async def test_the_served_app_polls_and_answers_on_the_same_channel(tmp_path: Path) -> None:
    """Through the app as `civicdesk serve` builds it: the poller's question is answered and the
    reply carries the question's reply context back to the adapter."""
    database = tmp_path / "polled.db"
    settings = Settings.from_env(
        {"CIVICDESK_KNOWLEDGE": str(SMALL_KB), "DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    )
    poller = ScriptedPoller([PollResult([], cursor="0"), PollResult([mention(1)], cursor="1")])
    store = await Store.open(settings.database_url)
    holder = KnowledgeHolder.from_settings(settings, poll_seconds=0.1)
    workers = Workers(
        store, holder.get_desk, {"board": poller}, WorkerConfig(poll_interval=0.05), "test"
    )
    app = create_app(settings, {"board": poller}, store=store, desk_holder=holder, workers=workers)
    server = TestServer(app)
    await server.start_server()
    try:
        for _ in range(200):
            if poller.sent:
                break
            await asyncio.sleep(0.05)
    finally:
        await server.close()

    assert len(poller.sent) == 1
    reply = poller.sent[0]
    assert reply.public and reply.reply_to == "status-1"
    assert reply.reply_context == '{"status":"1"}'
    # Public on a Weibo-like channel: the short answer of the FAQ entry, addressed to the asker.
    assert (
        reply.text
        == "@citizen 可通过网上缴费，或到诉讼服务中心窗口缴纳。 https://court.example.gov/fees"
    )


@pytest.mark.parametrize("count", [3])
async def test_each_polling_channel_keeps_its_own_cursor(store: Store, count: int) -> None:
    pollers = [
        ScriptedPoller([PollResult([], cursor=f"{n}-start")], name=f"board{n}")
        for n in range(count)
    ]
    runner = PollRunner(store, pollers, sleep=no_wait)
    await runner.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(p.drained.wait() for p in pollers)), 10)
    finally:
        await runner.stop()
    assert [await store.load_cursor(f"board{n}") for n in range(count)] == [
        f"{n}-start" for n in range(count)
    ]
    async with store.engine.connect() as connection:
        assert (await connection.execute(select(func.count()).select_from(INBOX))).scalar() == 0

"""Several processes on one PostgreSQL: each channel without push is polled by one of them, and
another takes over, from the saved cursor, when that one stops (bot.storage.poll_leader)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import select

from bot.gateway.polling import PollRunner
from bot.platform.adapter import TEXT_RULES, PollResult
from bot.platform.messages import InboundMessage, OutboundMessage, SendResult
from bot.storage import poll_leader
from bot.storage.models import INBOX
from bot.storage.pg_wake import listen_dsn
from bot.storage.poll_leader import PostgresPollLocks, lock_key
from bot.storage.store import Store
from tests.adapter_support import SendOnlyAdapter


class Board:
    """A platform account with a new mention per poll, and who asked for it."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None]] = []  # (process, cursor)


class BoardPoller(SendOnlyAdapter):
    text_rules = TEXT_RULES["weibo"]

    def __init__(self, board: Board, process: str) -> None:
        self.name = "board"
        self.poll_interval = 0.05
        self.board = board
        self.process = process

    async def poll(self, cursor: str | None) -> PollResult:
        self.board.asked.append((self.process, cursor))
        number = int(cursor or 0) + 1
        message = InboundMessage("board", f"status-{number}", f"status-{number}", "citizen",
                                 "诉讼费在哪里交", True)  # fmt: skip
        return PollResult([message], cursor=str(number))

    async def send(self, msg: OutboundMessage) -> SendResult:
        return SendResult.sent()


async def until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.02)


def test_each_channel_has_its_own_stable_lock() -> None:
    assert lock_key("weibo") == lock_key("weibo")
    assert lock_key("weibo") != lock_key("mastodon")
    assert -(2**63) <= lock_key("weibo") < 2**63


async def test_one_process_polls_and_another_takes_over_from_the_saved_cursor_when_it_stops(
    postgres_database_url: str,
) -> None:
    board = Board()
    stores = [await Store.open(postgres_database_url) for _ in range(2)]
    runners = {
        name: PollRunner(store, [BoardPoller(board, name)],
                         leadership=PostgresPollLocks(postgres_database_url))
        for name, store in zip(("a", "b"), stores, strict=True)
    }  # fmt: skip
    try:
        for runner in runners.values():
            await runner.start()
        await until(lambda: len(board.asked) >= 10, timeout=10)
        [leader] = {process for process, _ in board.asked}  # one process asks the platform
        other = "b" if leader == "a" else "a"

        await runners[leader].stop()  # it stops: its lock goes with its connection
        handed_over_at = len(board.asked)
        await until(lambda: len(board.asked) >= handed_over_at + 5, timeout=10)
        assert {process for process, _ in board.asked[handed_over_at:]} == {other}
        # It continues from the cursor the first one saved, not from the start.
        first_cursor = board.asked[handed_over_at][1]
        assert first_cursor is not None and int(first_cursor) >= handed_over_at - 1
        async with stores[0].engine.connect() as connection:
            ids = (await connection.execute(select(INBOX.c.platform_id))).scalars().all()
    finally:
        for runner in runners.values():
            await runner.stop()
        for store in stores:
            await store.close()
    # Every mention stored once, none skipped.
    numbers = sorted(int(i.removeprefix("status-")) for i in ids)
    assert numbers == list(range(1, len(numbers) + 1))


async def test_a_holder_whose_session_the_server_ended_lets_the_other_poll(
    postgres_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(poll_leader, "PROBE_EVERY", 0.0)  # and it checks its connection each round
    first, second = (
        PostgresPollLocks(postgres_database_url),
        PostgresPollLocks(postgres_database_url),
    )
    try:
        assert await first.leads("board")
        assert not await second.leads("board")
        # The server ends the first one's session (a network drop, a failover, an admin).
        admin = await asyncpg.connect(listen_dsn(postgres_database_url))
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        finally:
            await admin.close()
        assert await second.leads("board")  # the lock went with the session
        assert not await first.leads("board")  # and the first one knows it
    finally:
        await first.close()
        await second.close()

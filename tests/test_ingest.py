"""Group commit: every caller returns only once its rows are committed, and callers arriving
together share one transaction."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, func, select

from bot.platform.messages import InboundMessage
from bot.storage.engine import StoreUnavailable, create_engine
from bot.storage.ingest import GroupCommitter
from bot.storage.models import INBOX
from bot.storage.runner import SqliteRunner, make_runner
from bot.storage.store import Store


def message(n: int) -> InboundMessage:
    return InboundMessage("webhook", f"evt-{n}", f"conv-{n % 7}", f"user-{n}", f"q {n}", False)


def count_commits(store: Store) -> Callable[[], int]:
    """Transactions the database runner committed, counted apart from the group committer's
    own count (SQLite's group commit runs on a plain sqlite3 connection, PostgreSQL's through
    the engine)."""
    runner = store._db
    if isinstance(runner, SqliteRunner):
        start = runner.raw_commits
        return lambda: runner.raw_commits - start
    commits = [0]

    def on_commit(_connection: Any) -> None:
        commits[0] += 1

    event.listen(store.write_engine, "commit", on_commit)
    return lambda: commits[0]


async def stored_rows(store: Store) -> int:
    async with store.engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(INBOX))).scalar_one())


async def test_a_hundred_concurrent_requests_share_a_few_commits(store: Store) -> None:
    commits = count_commits(store)
    results = await asyncio.gather(*(store.accept([message(n)]) for n in range(100)))
    assert results == [[True]] * 100
    assert await stored_rows(store) == 100  # every caller returned after its row was committed
    assert commits() <= 10, f"{commits()} commits for 100 rows"
    assert store.commits == commits()


async def test_redelivered_events_are_acknowledged_and_stored_once(store: Store) -> None:
    first = await asyncio.gather(*(store.accept([message(n % 10)]) for n in range(40)))
    flags = [f for result in first for f in result]
    assert flags.count(True) == 10  # the first of each event, wherever it fell in the batch
    assert flags.count(False) == 30
    again = await asyncio.gather(*(store.accept([message(n)]) for n in range(10)))
    assert again == [[False]] * 10
    assert await stored_rows(store) == 10


async def test_a_batch_mixing_new_and_redelivered_events_flags_exactly_the_new_ones(
    store: Store,
) -> None:
    await store.accept([message(n) for n in range(0, 10, 2)])  # the even ones arrive first
    mixed = await asyncio.gather(*(store.accept([message(n)]) for n in range(10)))
    assert mixed == [[n % 2 == 1] for n in range(10)]
    assert await stored_rows(store) == 10


async def test_one_request_with_several_messages_gets_a_flag_for_each(store: Store) -> None:
    assert await store.accept([message(1), message(2), message(1)]) == [True, True, False]
    assert await store.accept([]) == []


async def test_workers_are_woken_after_a_commit_with_new_rows_only(store: Store) -> None:
    wakes: list[str] = []
    store.on_new_work(lambda: wakes.append("wake"))
    await store.accept([message(1)])
    assert wakes == ["wake"]
    await store.accept([message(1)])  # a duplicate is no new work
    assert wakes == ["wake"]


async def test_a_failing_wake_up_does_not_fail_the_request(store: Store) -> None:
    def broken() -> None:
        raise RuntimeError("listener bug")

    store.on_new_work(broken)
    assert await store.accept([message(1)]) == [True]


async def test_a_database_error_reaches_every_caller_of_the_batch(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)  # no migration: the inbox table does not exist
    runner = make_runner(sqlite_url, engine)
    committer = GroupCommitter(runner)
    try:
        results = await asyncio.gather(
            *(committer.accept([message(n)]) for n in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, StoreUnavailable) for r in results)
        assert committer.commits == 0
    finally:
        await committer.close()
        await runner.close()
        await engine.dispose()


async def test_close_commits_what_is_queued_and_then_refuses(store: Store) -> None:
    pending = [asyncio.ensure_future(store.accept([message(n)])) for n in range(30)]
    await asyncio.sleep(0)  # queued, not yet committed
    await store.close()
    assert [await p for p in pending] == [[True]] * 30
    with pytest.raises(StoreUnavailable):
        await store.accept([message(99)])
    reopened = await Store.open(str(store.engine.url.render_as_string(hide_password=False)))
    try:
        assert await stored_rows(reopened) == 30
    finally:
        await reopened.close()


async def test_batches_are_bounded(sqlite_url: str) -> None:
    store = await Store.open(sqlite_url, max_batch=10)
    try:
        commits = count_commits(store)
        await asyncio.gather(*(store.accept([message(n)]) for n in range(100)))
        assert commits() >= 10
        assert await stored_rows(store) == 100
    finally:
        await store.close()


async def test_a_caller_that_goes_away_still_gets_its_rows_stored(store: Store) -> None:
    leaving = asyncio.ensure_future(store.accept([message(1)]))
    await asyncio.sleep(0)
    leaving.cancel()
    await store.accept([message(2)])  # committed after the first batch
    assert await stored_rows(store) == 2


@pytest.mark.parametrize("microsecond", [0, 123456])
async def test_a_stored_message_reads_back_exactly_as_it_arrived(
    store: Store, microsecond: int
) -> None:
    """Whatever path the insert takes (plain sqlite3 on SQLite), the workers read the same
    values the adapter produced: times in UTC to the microsecond, flags, reply context."""
    received = datetime(2026, 11, 26, 3, 4, 5, microsecond, tzinfo=timezone(timedelta(hours=8)))
    sent = InboundMessage(
        "weibo", "5012345678901234567", "status-1", "u-9", "诉讼费怎么交", True,
        sender_name="市民", lang_hint="zh", reply_to="5012345678901234000",
        reply_context='{"status":"5012345678901234000"}', received_at=received,
    )  # fmt: skip
    assert await store.accept([sent]) == [True]
    [row] = await store.claim_inbox("reader", 1, 30)
    assert (row.channel, row.platform_id, row.conversation, row.sender) == (
        "weibo", "5012345678901234567", "status-1", "u-9",
    )  # fmt: skip
    assert (row.text, row.public, row.sender_name, row.lang_hint) == (
        "诉讼费怎么交",
        True,
        "市民",
        "zh",
    )
    assert row.reply_to == "5012345678901234000"
    assert row.reply_context == '{"status":"5012345678901234000"}'
    assert row.received_at == received and row.received_at.utcoffset() == timedelta(0)


async def test_a_write_lock_held_elsewhere_delays_the_commit_without_losing_it(
    sqlite_url: str,
) -> None:
    """The commit runs in the event loop only while nobody else writes; when another process
    holds SQLite's write lock, it waits for it in the writer thread instead (the event loop
    keeps serving), and the message is stored once the lock is free."""
    store = await Store.open(sqlite_url)
    path = sqlite_url.split("///", 1)[1]
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process writing
        pending = asyncio.ensure_future(store.accept([message(1)]))
        for _ in range(5):
            await asyncio.sleep(0.01)  # the loop keeps running while the commit waits
        assert not pending.done()
        other.execute("COMMIT")
        assert await asyncio.wait_for(pending, 10) == [True]
        assert await stored_rows(store) == 1
    finally:
        other.close()
        await store.close()

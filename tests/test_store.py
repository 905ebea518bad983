"""The store against real databases: a SQLite file, and PostgreSQL when one is reachable.

Claims, leases and the one-transaction finish are what keep "nothing lost, nothing answered
twice" true across workers, processes and crashes, so they are tested with real concurrency.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Table, text
from sqlmodel import SQLModel

from bot.answering.desk import PendingClarify
from bot.platform.messages import InboundMessage
from bot.storage.engine import StoreUnavailable, create_engine, has_schema
from bot.storage.models import INBOX, OUTBOX, InboxRow, OutboxRow
from bot.storage.store import Store
from bot.tickets.drafts import KIND_ACK, OutboxDraft, TicketDraft
from bot.tickets.reference import ReferenceTaken


def message(n: int, *, channel: str = "webhook", conversation: str = "c1") -> InboundMessage:
    return InboundMessage(
        channel=channel,
        platform_id=f"evt-{n}",
        conversation=conversation,
        sender=f"user-{n}",
        text=f"question {n}",
        public=False,
    )


def reply(text: str = "an answer", conversation: str = "c1") -> OutboxDraft:
    return OutboxDraft(channel="webhook", conversation=conversation, text=text, recipient="u")


def ticket(reference: str = "Q7K2M9") -> TicketDraft:
    return TicketDraft(
        reference=reference,
        channel="webhook",
        conversation="c1",
        sender="user-1",
        question="where is my case?",
        reason="no FAQ entry shares words with the question",
        candidates=({"entry_id": "my-case-status", "score": 0.41, "phrasing": "my case?"},),
    )


async def finish(store: Store, inbox_id: int, **overrides: object) -> bool:
    options: dict[str, object] = {
        "decision": "answer",
        "entry_id": "pay-court-fee",
        "replies": [reply()],
        "ticket": None,
        "pending_clarify": None,
    }
    options.update(overrides)
    return await store.finish_inbox(inbox_id, **options)  # type: ignore[arg-type]


# --- schema --------------------------------------------------------------------------------------


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_the_migrations_create_exactly_the_tables_of_the_models(store: Store) -> None:
    async with store.engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []


@pytest.mark.parametrize(("row", "table"), [(InboxRow, INBOX), (OutboxRow, OUTBOX)])
def test_the_rows_workers_read_have_exactly_the_columns_of_their_table(
    row: type[Any], table: Table
) -> None:
    """A column added to a table and not to its row class would fail every claim at run time."""
    assert [f.name for f in fields(row)] == [column.name for column in table.columns]


async def test_an_empty_sqlite_file_is_migrated_on_open_even_without_upgrade(
    sqlite_url: str,
) -> None:
    store = await Store.open(sqlite_url, upgrade=False)
    try:
        assert await has_schema(store.engine)
        assert (await store.queue_depths())["inbox_new"] == 0
    finally:
        await store.close()
    again = await Store.open(sqlite_url)  # upgrading a current schema changes nothing
    await again.close()


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_url: str) -> None:
    store = await Store.open(sqlite_url)
    try:
        async with store.engine.connect() as connection:
            mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
            timeout = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
            synchronous = (await connection.execute(text("PRAGMA synchronous"))).scalar()
        assert mode == "wal"
        assert timeout and int(timeout) >= 1000
        assert synchronous == 1  # NORMAL
    finally:
        await store.close()


async def test_an_unreachable_database_raises_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        await Store.open("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")


async def test_ping_and_writes_raise_store_unavailable_when_the_server_is_down() -> None:
    store = Store(create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nothing"))
    try:
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.accept([message(1)])
        with pytest.raises(StoreUnavailable):
            await store.claim_inbox("w", 1, 30)
    finally:
        await store.close()


# --- inbound -------------------------------------------------------------------------------------


async def test_accepted_messages_are_new_once_and_duplicates_after(store: Store) -> None:
    assert await store.accept([message(1), message(2)]) == [True, True]
    assert await store.accept([message(2), message(3)]) == [False, True]
    assert await store.accept([message(4), message(4)]) == [True, False]
    assert (await store.queue_depths())["inbox_new"] == 4


async def test_the_same_platform_id_on_two_channels_is_two_messages(store: Store) -> None:
    assert await store.accept([message(1, channel="a"), message(1, channel="b")]) == [True, True]


async def test_what_a_platform_sends_is_fitted_to_the_columns(store: Store) -> None:
    odd = InboundMessage(
        channel="webhook",
        platform_id="x" * 300,  # longer than the column: hashed, never cut into another's id
        conversation="c\x00" * 200,
        sender="s",
        text="NUL\x00 inside",
        public=True,
        sender_name="n" * 400,
    )
    assert await store.accept([odd]) == [True]
    assert await store.accept([odd]) == [False]
    other = InboundMessage("webhook", "x" * 299 + "y", "c", "s", "t", public=False)
    assert await store.accept([other]) == [True]
    [row] = [r for r in await store.claim_inbox("w", 10, 30) if r.text.startswith("NUL")]
    assert row.text == "NUL inside"
    assert row.platform_id.startswith("sha256:")
    assert len(row.sender_name or "") == 255


# --- claims --------------------------------------------------------------------------------------


async def test_claims_take_the_oldest_rows_and_count_an_attempt(store: Store) -> None:
    await store.accept([message(n) for n in range(5)])
    first = await store.claim_inbox("w1", 2, 30)
    second = await store.claim_inbox("w1", 10, 30)
    assert [r.platform_id for r in first] == ["evt-0", "evt-1"]
    assert [r.platform_id for r in second] == ["evt-2", "evt-3", "evt-4"]
    assert {r.attempts for r in first + second} == {1}
    assert {r.claimed_by for r in first + second} == {"w1"}
    assert await store.claim_inbox("w1", 10, 30) == []


async def test_concurrent_claimers_in_two_stores_never_share_a_row(database_url: str) -> None:
    one, two = await Store.open(database_url), await Store.open(database_url)
    try:
        await one.accept([message(n) for n in range(300)])

        async def drain(store: Store, worker: str) -> list[int]:
            taken: list[int] = []
            while rows := await store.claim_inbox(worker, 7, 30):
                taken += [r.id for r in rows if r.id is not None]
            return taken

        claimers = [drain(one, "a1"), drain(one, "a2"), drain(two, "b1"), drain(two, "b2")]
        results = await asyncio.gather(*claimers)
        every = [i for taken in results for i in taken]
        assert len(every) == 300
        assert len(set(every)) == 300
        assert sum(1 for taken in results if taken) >= 2  # the work really was shared
    finally:
        await one.close()
        await two.close()


async def test_a_claim_whose_lease_ran_out_is_taken_again(database_url: str) -> None:
    now = [datetime(2026, 11, 26, 4, 0, tzinfo=UTC)]  # the store's clock, moved by the test
    store = await Store.open(database_url, clock=lambda: now[0])
    try:
        await store.accept([message(1)])
        [held] = await store.claim_inbox("crashed", 1, lease_seconds=30)
        now[0] += timedelta(seconds=29)
        assert await store.claim_inbox("other", 1, 30) == []  # still leased
        now[0] += timedelta(seconds=2)
        [again] = await store.claim_inbox("other", 1, 30)
        assert again.id == held.id
        assert again.claimed_by == "other"
        assert again.attempts == 2
    finally:
        await store.close()


async def test_finishing_after_the_lease_was_taken_over_writes_nothing(database_url: str) -> None:
    slow, fast = await Store.open(database_url), await Store.open(database_url)
    try:
        await slow.accept([message(1)])
        [row] = await slow.claim_inbox("slow", 1, lease_seconds=0.05)
        await asyncio.sleep(0.1)
        [taken] = await fast.claim_inbox("fast", 1, 30)
        assert row.id is not None and taken.id == row.id

        assert await finish(slow, row.id, replies=[reply("late")], ticket=ticket()) is False
        assert (await slow.queue_depths())["outbox_pending"] == 0
        assert await slow.list_tickets() == []

        assert await finish(fast, row.id, replies=[reply("on time")]) is True
        [sent] = await fast.claim_outbox("sender", 10, 30)
        assert sent.text == "on time"
    finally:
        await slow.close()
        await fast.close()


async def test_finish_writes_replies_ticket_and_state_together(store: Store) -> None:
    await store.accept([message(1)])
    [row] = await store.claim_inbox("w", 1, 30)
    assert row.id is not None
    ack = OutboxDraft(channel="webhook", conversation="c1", text="ref Q7K2M9", kind=KIND_ACK)
    pending = PendingClarify(("a", "b"), "en", time.time() + 600)
    done = await finish(
        store,
        row.id,
        decision="escalate",
        entry_id=None,
        replies=[ack],
        ticket=ticket("Q7K2M9"),
        pending_clarify=pending,
    )
    assert done is True
    opened = await store.get_ticket("Q7K2M9")
    assert opened is not None
    assert opened.status == "open"
    assert opened.inbox_id == row.id
    assert opened.candidates[0]["entry_id"] == "my-case-status"
    [queued] = await store.claim_outbox("sender", 10, 30)
    assert queued.escalation_id == opened.id
    assert queued.kind == "ack"
    kept = await store.load_pending("webhook", "c1")
    assert kept is not None and kept.options == ("a", "b") and kept.lang == "en"
    depths = await store.queue_depths()
    assert depths["inbox_new"] == depths["inbox_claimed"] == 0
    assert depths["escalations_open"] == 1


async def test_a_reference_in_use_rolls_the_whole_finish_back(store: Store) -> None:
    await store.accept([message(1), message(2)])
    first, second = await store.claim_inbox("w", 2, 30)
    assert first.id is not None and second.id is not None
    assert await finish(store, first.id, ticket=ticket("AAAAAA")) is True
    with pytest.raises(ReferenceTaken):
        await finish(store, second.id, replies=[reply("never")], ticket=ticket("AAAAAA"))
    assert (await store.queue_depths())["inbox_claimed"] == 1  # still ours, nothing written
    assert await finish(store, second.id, ticket=ticket("BBBBBB")) is True
    assert [e.reference for e in await store.list_tickets()] == ["AAAAAA", "BBBBBB"]


async def test_pending_clarify_is_cleared_and_expires(store: Store) -> None:
    await store.accept([message(1), message(2), message(3, conversation="c2")])
    one, two, three = await store.claim_inbox("w", 3, 30)
    assert one.id and two.id and three.id
    fresh = PendingClarify(("a", "b"), "zh", time.time() + 600)
    stale = PendingClarify(("c", "d"), "zh", time.time() - 1)
    await finish(store, one.id, pending_clarify=fresh)
    await finish(store, three.id, pending_clarify=stale)
    kept = await store.load_pending("webhook", "c1")
    assert kept is not None and (kept.options, kept.lang) == (("a", "b"), "zh")
    assert kept.expires_at == pytest.approx(fresh.expires_at, abs=0.01)
    assert await store.load_pending("webhook", "c2") is None  # expired
    assert await store.load_pending("other", "c1") is None  # another channel's conversation
    await finish(store, two.id, pending_clarify="clear")
    assert await store.load_pending("webhook", "c1") is None


async def test_expired_clarifying_questions_are_pruned(store: Store) -> None:
    await store.accept([message(1), message(2, conversation="c2")])
    one, two = await store.claim_inbox("w", 2, 30)
    assert one.id and two.id
    await finish(store, one.id, pending_clarify=PendingClarify(("a",), "en", time.time() + 600))
    await finish(store, two.id, pending_clarify=PendingClarify(("b",), "en", time.time() - 1))
    assert await store.prune_expired_state() == 1
    assert await store.prune_expired_state() == 0
    assert await store.load_pending("webhook", "c1") is not None


async def test_a_released_row_is_claimed_again_and_a_failed_one_is_not(store: Store) -> None:
    await store.accept([message(1), message(2)])
    first, second = await store.claim_inbox("w", 2, 30)
    assert first.id and second.id
    assert await store.release_inbox(first.id) is True
    assert await store.release_inbox(second.id, give_up=True) is True
    [again] = await store.claim_inbox("w", 5, 30)
    assert again.id == first.id
    assert (await store.queue_depths())["inbox_failed"] == 1


# --- outbox --------------------------------------------------------------------------------------


async def queued_reply(store: Store, text: str = "hello", n: int = 1) -> int:
    await store.accept([message(n)])
    [row] = await store.claim_inbox("w", 1, 30)
    assert row.id is not None
    await finish(store, row.id, replies=[reply(text)])
    return row.id


async def test_a_delivered_reply_is_not_claimed_again(store: Store) -> None:
    await queued_reply(store)
    [out] = await store.claim_outbox("s", 5, 30)
    assert out.id is not None and out.attempts == 1
    assert await store.mark_sent(out.id, "platform-77") is True
    assert await store.claim_outbox("s", 5, 30) == []
    assert (await store.queue_depths())["outbox_pending"] == 0


async def test_a_retry_waits_until_it_is_due(store: Store) -> None:
    await queued_reply(store)
    [out] = await store.claim_outbox("s", 5, 30)
    assert out.id is not None
    due = datetime.now(UTC) + timedelta(seconds=0.2)
    assert await store.mark_retry(out.id, "HTTP 500", due) is True
    assert await store.claim_outbox("s", 5, 30) == []
    await asyncio.sleep(0.25)
    [again] = await store.claim_outbox("s", 5, 30)
    assert again.id == out.id
    assert again.attempts == 2
    assert again.last_error == "HTTP 500"


async def test_a_dead_letter_is_listed_and_can_be_queued_again(store: Store) -> None:
    await queued_reply(store)
    [out] = await store.claim_outbox("s", 5, 30)
    assert out.id is not None
    assert await store.mark_dead(out.id, "HTTP 400: chat not found") is True
    [dead] = await store.list_dead()
    assert dead.id == out.id and dead.last_error == "HTTP 400: chat not found"
    assert (await store.queue_depths())["outbox_dead"] == 1
    assert await store.retry_dead(out.id) is True
    assert await store.retry_dead(out.id) is False  # no longer dead
    [again] = await store.claim_outbox("s", 5, 30)
    assert again.id == out.id and again.attempts == 1  # a full set of attempts again


async def test_an_outbox_claim_can_be_limited_to_some_channels(store: Store) -> None:
    await store.accept([message(1), message(2)])
    one, two = await store.claim_inbox("w", 2, 30)
    assert one.id and two.id
    await finish(store, one.id, replies=[reply("for webhook")])
    other = OutboxDraft(channel="telegram", conversation="42", text="for telegram")
    await finish(store, two.id, replies=[other])
    [only] = await store.claim_outbox("s", 5, 30, channel_filter=["telegram"])
    assert only.channel == "telegram"


async def test_a_sender_whose_lease_ran_out_cannot_record_a_result(database_url: str) -> None:
    slow, fast = await Store.open(database_url), await Store.open(database_url)
    try:
        await queued_reply(slow)
        [out] = await slow.claim_outbox("slow", 5, lease_seconds=0.05)
        assert out.id is not None
        await asyncio.sleep(0.1)
        [again] = await fast.claim_outbox("fast", 5, 30)
        assert again.id == out.id
        assert await slow.mark_sent(out.id, "late") is False
        assert await fast.mark_sent(out.id, "on-time") is True
    finally:
        await slow.close()
        await fast.close()

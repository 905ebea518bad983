"""PostgreSQL: work committed by one process wakes the workers of another at once (LISTEN/NOTIFY),
instead of at their next poll: the Procfile's `web` + `worker`, or several servers.

The workers here poll every 30 s, so only a notification can make them answer within seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bot.gateway.worker import WorkerConfig
from bot.storage.pg_wake import PostgresWake, listen_dsn
from bot.storage.store import Store
from bot.tickets.drafts import OutboxDraft
from tests.test_worker import ScriptedAdapter, inbound, make_workers

SLOW_POLL = WorkerConfig(poll_interval=30.0, rate_per_second=0)


async def until(check: Callable[[], bool], timeout: float) -> float:
    """Seconds it took `check` to hold."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "not woken in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def test_the_listening_connection_is_made_from_the_database_url() -> None:
    url = "postgresql+asyncpg://desk:pa%40ss@db.internal:5433/civicdesk"
    assert listen_dsn(url) == "postgresql://desk:pa%40ss@db.internal:5433/civicdesk"


async def test_a_message_stored_by_the_web_process_is_answered_by_the_worker_process_at_once(
    postgres_database_url: str,
) -> None:
    web, work = await Store.open(postgres_database_url), await Store.open(postgres_database_url)
    adapter = ScriptedAdapter()
    workers = make_workers(work, adapter, config=SLOW_POLL, worker_id="worker-process")
    wake = PostgresWake(postgres_database_url, workers.notify, workers.notify_outbox)
    await workers.start()
    wake.start()
    try:
        await asyncio.wait_for(wake.listening.wait(), 10)
        await asyncio.sleep(0.2)  # the workers' first look (at start) has found nothing
        await web.accept([inbound(n) for n in range(5)])
        took = await until(lambda: len(adapter.delivered) == 5, timeout=10)
    finally:
        await wake.stop()
        await workers.stop()
        await web.close()
        await work.close()
    assert took < 5  # far sooner than the 30 s poll
    assert sorted(m.conversation for m in adapter.delivered) == [f"conv-{n}" for n in range(5)]


async def test_a_reply_put_back_to_pending_elsewhere_wakes_the_delivery(
    postgres_database_url: str,
) -> None:
    # An operator retries a dead letter from /admin or the command line (another process).
    operator = await Store.open(postgres_database_url)
    wakes: list[str] = []
    wake = PostgresWake(
        postgres_database_url, lambda: wakes.append("inbox"), lambda: wakes.append("outbox")
    )
    wake.start()
    try:
        await asyncio.wait_for(wake.listening.wait(), 10)
        await operator.accept([inbound(1)])
        await until(lambda: "inbox" in wakes, timeout=10)
        assert "outbox" not in wakes  # a new message is inbox work only
        [claimed] = await operator.claim_inbox("answering", 1, 30)
        reply = OutboxDraft("webhook", "conv-1", "Pay online.")
        assert await operator.finish_inbox(claimed.id, decision="answer", entry_id=None,
                                           replies=[reply], ticket=None,
                                           pending_clarify=None)  # fmt: skip
        await until(lambda: "outbox" in wakes, timeout=10)
        [row] = await operator.claim_outbox("sender", 1, 30)
        await operator.mark_dead(row.id, "410 gone")
        wakes.clear()
        assert await operator.retry_dead(row.id)
        await until(lambda: wakes == ["outbox"], timeout=10)
    finally:
        await wake.stop()
        await operator.close()

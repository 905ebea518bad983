"""Crash safety, for real: `kill -9` a serving process in the middle of a burst, start it again.

The claim under test (README, "Running the server" and "The webhook channel"): a 200 means the
message is stored and will be answered even if the process dies the next moment; every stored
message gets exactly one reply row; a reply is delivered at least once, and more than once only
if its delivery was in flight at the crash, with the same Idempotency-Key, so the receiver can
drop the copy.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest
from serve_support import (
    BUSY_QUERY,
    REPLIES_PER_MESSAGE,
    Platform,
    Receiver,
    ServeProcess,
    burst,
    serve_environment,
    settle,
    sqlite_rows,
)

from bot.gateway.worker import WorkerConfig

pytestmark = pytest.mark.slow

MESSAGES = 500
KILL_AFTER = 200  # acknowledged messages before the SIGKILL
# The shortest lease serve accepts (it must outlast one delivery attempt, 20 s): work claimed by
# the killed process is taken again this long after it was claimed.
LEASE_SECONDS = "21"
OUTBOX_SLOTS = WorkerConfig().outbox_concurrency  # deliveries one process has in flight at most


async def test_kill_9_mid_burst_loses_nothing_and_answers_each_message_once(
    tmp_path: Path,
) -> None:
    receiver = Receiver(delay=(0.05, 0.2))  # a slow receiver: replies are in flight at the kill
    outbound = await receiver.start()
    database = tmp_path / "civicdesk.db"
    environ = serve_environment(
        f"sqlite+aiosqlite:///{database}",
        outbound,
        CIVICDESK_LEASE_SECONDS=LEASE_SECONDS,
        CIVICDESK_POLL_INTERVAL="0.5",
        CIVICDESK_RATE_PER_SECOND="0",  # the slow receiver is the only brake
    )
    server = ServeProcess(environ, tmp_path)
    killed = asyncio.Event()

    def kill_mid_burst(acknowledged: int) -> None:
        if acknowledged >= KILL_AFTER and not killed.is_set():
            server.kill()
            killed.set()

    platform = Platform(concurrency=20, on_accepted=kill_mid_burst, give_up_after=60)
    events = burst(MESSAGES, "crash")
    try:
        await server.start()
        sending = asyncio.create_task(platform.send([server.url], events))
        await asyncio.wait(
            [sending, asyncio.create_task(killed.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        assert killed.is_set(), "the burst ended before the kill"
        assert await server.wait() == -9

        # The database as the dead process left it.
        in_flight = {
            row_id
            for (row_id,) in sqlite_rows(database, "SELECT id FROM outbox WHERE status = 'sending'")
        }
        stored_at_kill = {pid for (pid,) in sqlite_rows(database, "SELECT platform_id FROM inbox")}
        (claimed_at_kill,) = sqlite_rows(
            database, "SELECT count(*) FROM inbox WHERE status = 'claimed'"
        )[0]
        (queued_at_kill,) = sqlite_rows(
            database, "SELECT count(*) FROM outbox WHERE status = 'pending'"
        )[0]
        acknowledged_at_kill = set(platform.accepted)
        delivered_at_kill = len(receiver.accepted())

        await server.start()  # the same database and port; nothing else changes
        await sending  # the platform re-POSTs what got no answer, with the same ids
        accepted = set(platform.accepted)
        await receiver.wait_until(
            lambda: receiver.answered_messages() >= accepted,
            timeout=60,
            what="a reply to every acknowledged message",
        )

        async def busy() -> int:
            return int(sqlite_rows(database, BUSY_QUERY)[0][0])

        await settle(busy, timeout=30)
        await asyncio.sleep(0.5)  # a late duplicate, if any, would arrive now
    finally:
        await server.stop()
        await receiver.close()

    # Every message was acknowledged in the end (the platform retried what got no answer).
    assert platform.refused == {}
    assert accepted == {event_id for event_id, _ in events}

    # The database: every acknowledged message stored once, done, with exactly one reply row.
    per_message = sqlite_rows(database, REPLIES_PER_MESSAGE)
    assert {pid for pid, _, _ in per_message} == accepted
    assert len(per_message) == len(accepted)
    assert {status for _, status, _ in per_message} == {"done"}
    assert [pid for pid, _, replies in per_message if replies != 1] == []
    outbox = sqlite_rows(database, "SELECT id, status, reply_to FROM outbox")
    assert {status for _, status, _ in outbox} == {"sent"}
    assert len(outbox) == len(accepted)

    # The receiver: every reply row arrived; no message has two different replies.
    keys_per_message: dict[str, set[str]] = defaultdict(set)
    for delivery in receiver.accepted():
        assert delivery.key == str(delivery.reply_id)
        assert delivery.reply_to is not None
        keys_per_message[delivery.reply_to].add(delivery.key)
    assert set(keys_per_message) == accepted
    assert [m for m, keys in keys_per_message.items() if len(keys) != 1] == []
    assert {str(row_id) for row_id, _, _ in outbox} == {d.key for d in receiver.accepted()}
    assert receiver.bad_signatures == 0

    # Sent twice only what was being sent when the process died, and only once more.
    duplicates = receiver.duplicates()
    assert {int(key) for key in duplicates} <= in_flight
    assert all(extra == 1 for extra in duplicates.values())
    assert sum(duplicates.values()) <= len(in_flight) <= OUTBOX_SLOTS

    lost_acknowledgements = (stored_at_kill - acknowledged_at_kill) & set(platform.failed_posts)
    print(  # the numbers, for the record (pytest -s shows them)
        f"\ncrash: {len(accepted)} acknowledged ({len(acknowledged_at_kill)} before the kill), "
        f"{len(stored_at_kill)} stored at the kill ({claimed_at_kill} being answered, "
        f"{queued_at_kill} replies queued, {len(in_flight)} replies in flight, "
        f"{delivered_at_kill} delivered); {len(platform.failed_posts)} events re-POSTed after a "
        f"failed POST ({len(lost_acknowledgements)} of them already stored: their 200 was lost); "
        f"answered {len(keys_per_message)}, reply rows {len(outbox)}, deliveries "
        f"{len(receiver.deliveries)}, duplicates at the receiver {sum(duplicates.values())} "
        f"(bound {len(in_flight)})"
    )

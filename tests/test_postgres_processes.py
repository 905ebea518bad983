"""Two `civicdesk serve` processes on one PostgreSQL database share a 1,000-message burst.

As a deployer runs it: `civicdesk db upgrade` once, then two processes behind a load balancer
(here the platform alternates between them). Each process also polls for the other's work, so
their claims compete for the same rows (FOR UPDATE SKIP LOCKED): every message must still be
answered exactly once, and both processes must have done part of the work.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from serve_support import (
    BUSY_QUERY,
    REPLIES_PER_MESSAGE,
    Platform,
    Receiver,
    ServeProcess,
    burst,
    civicdesk,
    serve_environment,
    settle,
)

pytestmark = pytest.mark.slow

MESSAGES = 1000


async def _query(url: str, statement: str) -> list[Any]:
    import asyncpg  # noqa: PLC0415  (only this test needs it directly)

    connection = await asyncpg.connect(url.replace("+asyncpg", "", 1), timeout=5)
    try:
        return list(await connection.fetch(statement))
    finally:
        await connection.close()


async def test_two_processes_on_one_postgresql_answer_a_burst_exactly_once(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    url = empty_postgres_url
    receiver = Receiver(delay=(0.0, 0.02))
    outbound = await receiver.start()
    environ = serve_environment(
        url,
        outbound,
        CIVICDESK_POLL_INTERVAL="0.2",  # each process keeps looking for the other's work too
        CIVICDESK_RATE_PER_SECOND="0",
    )
    servers = [ServeProcess(environ, tmp_path, name=f"serve-{n}") for n in ("a", "b")]
    platform = Platform(concurrency=20)
    events = burst(MESSAGES, "pg")
    try:
        code, out, errors = await civicdesk(environ, tmp_path, "db", "upgrade")
        assert code == 0, errors
        assert "up to date" in out
        await asyncio.gather(*(server.start() for server in servers))
        await platform.send([server.url for server in servers], events)
        accepted = set(platform.accepted)
        await receiver.wait_until(
            lambda: receiver.answered_messages() >= accepted, timeout=60, what="every reply"
        )

        async def busy() -> int:
            return int((await _query(url, BUSY_QUERY))[0][0])

        await settle(busy, timeout=15)
        await asyncio.sleep(0.5)  # a duplicate, if any, would arrive now
    finally:
        await asyncio.gather(*(server.stop() for server in servers))
        await receiver.close()

    assert platform.refused == {}
    assert accepted == {event_id for event_id, _ in events}

    # One reply row per message, each message claimed and answered once.
    per_message = await _query(url, REPLIES_PER_MESSAGE)
    assert len(per_message) == MESSAGES
    assert [row[0] for row in per_message if (row[1], row[2]) != ("done", 1)] == []
    inbox = await _query(url, "SELECT claimed_by, attempts FROM inbox")
    assert {row["attempts"] for row in inbox} == {1}, "a message was claimed twice"
    outbox = await _query(url, "SELECT id, status, claimed_by, attempts FROM outbox")
    assert len(outbox) == MESSAGES
    assert {row["status"] for row in outbox} == {"sent"}
    assert {row["attempts"] for row in outbox} == {1}, "a reply was claimed twice"

    # The receiver got each message's reply exactly once.
    successes = Counter(d.key for d in receiver.accepted())
    assert set(successes.values()) == {1}
    assert set(successes) == {str(row["id"]) for row in outbox}
    assert receiver.answered_messages() == accepted
    assert len(receiver.deliveries) == MESSAGES
    assert receiver.bad_signatures == 0

    # Both processes did work: claimed_by is "<host>-<pid>".
    pids = {str(pid) for server in servers for pid in server.pids}
    answered_by = Counter(row["claimed_by"].rsplit("-", 1)[1] for row in inbox)
    delivered_by = Counter(row["claimed_by"].rsplit("-", 1)[1] for row in outbox)
    assert set(answered_by) == pids, answered_by
    assert set(delivered_by) == pids, delivered_by
    print(
        f"\npostgresql: {len(accepted)} acknowledged, {len(per_message)} answered, "
        f"{len(outbox)} reply rows, {len(receiver.deliveries)} deliveries, duplicates 0; "
        f"answered per process {sorted(answered_by.values())}, "
        f"delivered per process {sorted(delivered_by.values())}"
    )

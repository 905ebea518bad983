"""A receiver outage, against a real `civicdesk serve` process.

- The receiver fails with 500, then asks to slow down with 429 and Retry-After, then recovers:
  every reply is accepted exactly once, and no retry comes before the Retry-After it was given.
- The receiver stays down: after CIVICDESK_MAX_ATTEMPTS the reply is dead-lettered, and
  `civicdesk deliveries list-dead` shows it with its error; once the receiver is back,
  `civicdesk deliveries retry ID` delivers it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path

import pytest
from serve_support import (
    BUSY_QUERY,
    REPLIES_PER_MESSAGE,
    Answer,
    Delivery,
    Platform,
    Receiver,
    ServeProcess,
    burst,
    civicdesk,
    serve_environment,
    settle,
    sqlite_rows,
)

pytestmark = pytest.mark.slow

FAILING_SECONDS = 2.0  # 500 from the first delivery on, for this long
THROTTLING_SECONDS = 2.5  # then 429 with Retry-After: 1 for this long, then 200
RETRY_AFTER = 1.0
# Short pauses between attempts, so that the outage sees several of them.
QUICK_RETRIES = {"CIVICDESK_BACKOFF_BASE": "0.1", "CIVICDESK_BACKOFF_CAP": "0.5"}


class Outage:
    """500, then 429 with Retry-After, then 200, timed from the first delivery attempt."""

    def __init__(self) -> None:
        self.began: float | None = None

    def __call__(self) -> Answer:
        now = time.monotonic()
        if self.began is None:
            self.began = now
        elapsed = now - self.began
        if elapsed < FAILING_SECONDS:
            return 500, {}, "upstream database is down"
        if elapsed < FAILING_SECONDS + THROTTLING_SECONDS:
            return 429, {"Retry-After": f"{RETRY_AFTER:g}"}, "slow down"
        return None


async def test_an_outage_then_throttling_then_recovery_delivers_every_reply_once(
    tmp_path: Path,
) -> None:
    receiver = Receiver(behaviour=Outage())
    outbound = await receiver.start()
    database = tmp_path / "civicdesk.db"
    environ = serve_environment(
        f"sqlite+aiosqlite:///{database}",
        outbound,
        CIVICDESK_MAX_ATTEMPTS="50",  # outlasts the outage: nothing may be dead-lettered here
        CIVICDESK_POLL_INTERVAL="0.2",
        CIVICDESK_RATE_PER_SECOND="0",
        **QUICK_RETRIES,
    )
    server = ServeProcess(environ, tmp_path)
    platform = Platform(concurrency=10)
    events = burst(30, "outage")
    try:
        await server.start()
        await platform.send([server.url], events)
        accepted = set(platform.accepted)
        await receiver.wait_until(
            lambda: receiver.answered_messages() >= accepted, timeout=45, what="every reply"
        )

        async def busy() -> int:
            return int(sqlite_rows(database, BUSY_QUERY)[0][0])

        await settle(busy, timeout=15)
        await asyncio.sleep(0.5)  # a duplicate, if any, would arrive now
    finally:
        await server.stop()
        await receiver.close()

    assert accepted == {event_id for event_id, _ in events}
    statuses = Counter(d.status for d in receiver.deliveries)
    assert statuses[500] > 0, "the outage was never seen: the test proves nothing"
    assert statuses[429] > 0, "the throttling was never seen: the test proves nothing"

    # Every reply accepted exactly once, one reply per message.
    successes = Counter(d.key for d in receiver.accepted())
    assert set(successes.values()) == {1}
    assert len(successes) == len(accepted)
    per_message = sqlite_rows(database, REPLIES_PER_MESSAGE)
    assert [pid for pid, status, replies in per_message if (status, replies) != ("done", 1)] == []
    outbox = sqlite_rows(database, "SELECT id, status, attempts FROM outbox")
    assert {status for _, status, _ in outbox} == {"sent"}
    assert {str(row_id) for row_id, _, _ in outbox} == set(successes)
    # The attempts the database counted are the ones the receiver saw.
    tries = Counter(d.key for d in receiver.deliveries)
    assert {str(row_id): attempts for row_id, _, attempts in outbox} == dict(tries)

    # Retry-After is a floor: no reply came back sooner than it was asked to.
    by_key: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in receiver.deliveries:
        by_key[delivery.key].append(delivery)
    early = [
        (key, round(later.arrived - earlier.answered, 3))
        for key, attempts in by_key.items()
        for earlier, later in pairwise(attempts)
        if earlier.status == 429 and later.arrived - earlier.answered < RETRY_AFTER - 0.05
    ]
    assert early == []
    print(
        f"\noutage: {len(accepted)} messages, {len(receiver.deliveries)} delivery attempts "
        f"({statuses[500]}x 500, {statuses[429]}x 429, {statuses[200]}x 200), "
        f"at most {max(tries.values())} attempts for one reply, "
        f"accepted once each: {len(successes)}, dead letters 0"
    )


class Switch:
    """Down (500) until switched on."""

    def __init__(self) -> None:
        self.up = False

    def __call__(self) -> Answer:
        return None if self.up else (500, {}, "receiver down for maintenance")


async def test_a_reply_that_keeps_failing_is_dead_lettered_shown_and_retried_by_the_cli(
    tmp_path: Path,
) -> None:
    switch = Switch()
    receiver = Receiver(behaviour=switch)
    outbound = await receiver.start()
    database = tmp_path / "civicdesk.db"
    environ = serve_environment(
        f"sqlite+aiosqlite:///{database}",
        outbound,
        CIVICDESK_MAX_ATTEMPTS="3",
        CIVICDESK_POLL_INTERVAL="0.2",  # a retry queued by the CLI is picked up by polling
        **QUICK_RETRIES,
    )
    server = ServeProcess(environ, tmp_path)
    platform = Platform(concurrency=1)
    try:
        await server.start()
        await platform.send([server.url], burst(1, "dead"))
        await receiver.wait_until(
            lambda: len(receiver.deliveries) >= 3, timeout=30, what="three attempts"
        )

        async def undelivered() -> int:
            return int(sqlite_rows(database, BUSY_QUERY)[0][0])

        await settle(undelivered, timeout=15)
        ((outbox_id, status, attempts),) = sqlite_rows(
            database, "SELECT id, status, attempts FROM outbox"
        )
        assert (status, attempts) == ("dead", 3)
        await asyncio.sleep(0.5)
        assert len(receiver.deliveries) == 3, "a dead letter must not be tried again by itself"

        code, listing, _ = await civicdesk(environ, tmp_path, "deliveries", "list-dead")
        assert code == 0
        (row,) = [line for line in listing.splitlines() if line.split()[:1] == [str(outbox_id)]]
        assert row.split()[1:3] == ["webhook", "3"]
        assert "HTTP 500: receiver down for maintenance" in row
        code, as_json, _ = await civicdesk(environ, tmp_path, "deliveries", "list-dead", "--json")
        assert code == 0
        (dead,) = json.loads(as_json)
        assert dead["id"] == outbox_id
        assert dead["attempts"] == 3
        assert dead["last_error"] == "HTTP 500: receiver down for maintenance"

        switch.up = True
        code, queued, errors = await civicdesk(
            environ, tmp_path, "deliveries", "retry", str(outbox_id)
        )
        assert code == 0, errors
        assert queued.strip() == f"{outbox_id}: queued again"
        await receiver.wait_until(
            lambda: len(receiver.accepted()) >= 1, timeout=15, what="the retried reply"
        )
        await settle(undelivered, timeout=15)
        code, after, _ = await civicdesk(environ, tmp_path, "deliveries", "list-dead")
        assert code == 0
        assert after.strip() == "no dead letters"
        code, _, errors = await civicdesk(environ, tmp_path, "deliveries", "retry", str(outbox_id))
        assert code == 1
        assert f"outbox {outbox_id} is not a dead letter" in errors
        await asyncio.sleep(0.5)
    finally:
        await server.stop()
        await receiver.close()

    assert [(d.key, d.status) for d in receiver.deliveries] == [
        (str(outbox_id), 500),
        (str(outbox_id), 500),
        (str(outbox_id), 500),
        (str(outbox_id), 200),
    ]
    assert sqlite_rows(database, "SELECT status, last_error FROM outbox") == [("sent", None)]
    print(
        f"\ndead letter: outbox {outbox_id} dead after 3 attempts, listed by the CLI, "
        f"delivered once after `deliveries retry`; deliveries {len(receiver.deliveries)}"
    )

"""A claimed reply is sent only while its lease is sure to outlast the send.

A reply waits for its channel's rate limit after it was claimed. If it then starts a send that
can take up to `send_timeout`, the lease may run out in the middle of it: another worker (or the
same loop, polling for expired leases) claims the row and sends it a second time.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from bot.answering.desk import Desk
from bot.answering.knowledge import load_knowledge
from bot.gateway.worker import WorkerConfig, Workers
from bot.platform.adapter import TextRules
from bot.platform.messages import InboundMessage, OutboundMessage, SendResult
from bot.storage.store import Store
from tests.adapter_support import SendOnlyAdapter

DESK = Desk(load_knowledge(Path(__file__).parents[1] / "knowledge"))
SEND_SECONDS = 0.4  # every send takes this long
MESSAGES = 6


class SlowAdapter(SendOnlyAdapter):
    """Each send takes SEND_SECONDS; every attempt is recorded."""

    name = "webhook"
    text_rules = TextRules(4000)

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def send(self, msg: OutboundMessage) -> SendResult:
        await asyncio.sleep(SEND_SECONDS)
        self.sent.append(msg)
        return SendResult.sent(f"p-{msg.id}")


async def test_a_reply_is_not_sent_when_its_lease_could_run_out_during_the_send(
    store: Store,
) -> None:
    # Lease 0.6 s, a send may take 0.5 s: a reply may wait at most 0.1 s for its turn. At 4 per
    # second (a burst of 4) the fifth reply waits 0.25 s; sending it then (0.25 + 0.4 > 0.6)
    # would let its lease run out mid-send, and the loop, polling every 20 ms, would claim and
    # send it again.
    adapter = SlowAdapter()
    config = WorkerConfig(
        poll_interval=0.02,
        lease_seconds=0.6,
        send_timeout=0.5,
        channel_rates={"webhook": 4.0},
        stop_timeout=2.0,
    )
    workers = Workers(store, lambda: DESK, {"webhook": adapter}, config, "test")
    await workers.start()
    try:
        await store.accept(
            [
                InboundMessage("webhook", f"evt-{n}", f"conv-{n}", "u", "诉讼费怎么交", False)
                for n in range(MESSAGES)
            ]
        )
        deadline = time.monotonic() + 15
        while len({m.id for m in adapter.sent}) < MESSAGES and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.0)  # a second send of a reply would happen by now
    finally:
        await workers.stop()
    sends = Counter(m.id for m in adapter.sent)
    assert len(sends) == MESSAGES
    assert {reply: n for reply, n in sends.items() if n > 1} == {}
    depths = await store.queue_depths()
    assert depths["outbox_pending"] == depths["outbox_sending"] == 0

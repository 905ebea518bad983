"""Reminders of overdue tickets, with many institutions: each ticket's reminder goes to its own
institution's staff room, never to another's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.answering.desk import Desk
from bot.answering.knowledge import load_knowledge
from bot.config.institutions import parse_institutions
from bot.config.settings import Settings
from bot.gateway.institutions import deployment_handoff, handle_routed, institution_handoff
from bot.platform.adapter import rules_for
from bot.platform.messages import InboundMessage
from bot.storage.store import Store
from bot.tickets.handoff import Handoff, StaffChannel

SMALL_KB = Path(__file__).parent / "fixtures" / "kb" / "base"
ESCALATED = "我的案件进展到哪一步了"  # an entry that always goes to a person


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(sqlite_url: str, clock: Clock) -> AsyncIterator[Store]:
    opened = await Store.open(sqlite_url, clock=clock)
    yield opened
    await opened.close()


async def test_an_overdue_ticket_is_recalled_only_in_its_institutions_room(
    store: Store, clock: Clock
) -> None:
    settings = Settings.from_env(
        {"CIVICDESK_CHANNELS": "wechat,weibo,staff-a,staff-b",
         "CIVICDESK_ESCALATE_TO": "staff-a,staff-b"}
    )  # fmt: skip
    root = {
        "institutions": [
            {"name": "a", "knowledge": str(SMALL_KB), "prefix": "AA", "channels": ["wechat"],
             "staff": ["staff-a"], "business_hours": "mon-sun 00:00-24:00", "answer_target": "2h"},
            {"name": "b", "knowledge": str(SMALL_KB), "prefix": "BB", "channels": ["weibo"],
             "staff": ["staff-b"], "business_hours": "mon-sun 00:00-24:00", "answer_target": "8h"},
        ]
    }  # fmt: skip
    institutions = parse_institutions(root, settings, base=SMALL_KB)
    base = Handoff(staff=(StaffChannel("staff-a", "room-a"), StaffChannel("staff-b", "room-b")))
    deployment = deployment_handoff(base, institutions)
    handoffs = {i.name: institution_handoff(deployment, i) for i in institutions.items}
    desk = Desk(load_knowledge(SMALL_KB))

    def route(channel: str) -> tuple[Desk, Handoff]:
        return desk, handoffs[institutions.of_channel(channel).name]

    await store.accept([
        InboundMessage("wechat", "m-1", "o-1", "o-1", ESCALATED, False, received_at=clock.now),
        InboundMessage("weibo", "m-2", "o-2", "o-2", ESCALATED, False, received_at=clock.now),
    ])  # fmt: skip
    rows = await store.claim_inbox("w", 10, 30)
    handled = await handle_routed(rows, route, rules_for, store)
    references = {r.channel: h.reference for r, h in zip(rows, handled, strict=True)
                  if not isinstance(h, Exception)}  # fmt: skip
    assert references["wechat"].startswith("AA-") and references["weibo"].startswith("BB-")
    posts = await store.claim_outbox("reader", 100, 30)
    tickets = {r.channel: r.text for r in posts if r.kind == "ticket"}
    assert references["wechat"] in tickets["staff-a"] and "BB-" not in tickets["staff-a"]
    assert references["weibo"] in tickets["staff-b"] and "AA-" not in tickets["staff-b"]
    for row in posts:
        await store.mark_sent(row.id, None)

    clock.now += timedelta(hours=3)  # past A's 2 h, within B's 8 h
    assert await store.remind_overdue(every=3600, handoff=deployment) == 1
    [reminder] = await store.claim_outbox("reader", 100, 30)
    assert reminder.kind == "ticket-update" and reminder.channel == "staff-a"
    assert references["wechat"] in reminder.text

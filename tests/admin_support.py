"""Seeded data and sign-in for the /admin tests (tests/test_admin.py, tests/test_admin_browser.py).

The database is filled as civicdesk fills it: citizens' messages accepted by the Store, handled by
the pipeline (questions the FAQ cannot answer become tickets), replies claimed and marked sent,
or dead-lettered, as the delivery would. Then the served app opens the same file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.admin.passwords import hash_password
from bot.answering.desk import Desk
from bot.answering.knowledge import load_knowledge
from bot.gateway.pipeline import handle_batch
from bot.platform.adapter import rules_for
from bot.platform.messages import InboundMessage
from bot.storage.admin_queries import AdminStore
from bot.storage.store import Store

Client = TestClient[web.Request, web.Application]

# Citizen text that would run, or be read as a template, if any page failed to escape it.
MARKUP = '<script>alert("xss")</script> "onmouseover="alert(1)" {{ 7*7 }} 窗户坏了谁来修'
MARKUP_NAME = '<b onmouseover="alert(2)">Zhao</b>'
CASE_QUESTION = "我的案件进展到哪一步了"
PARKING = "法院停车场晚上几点关门"
ANSWERED = "诉讼费怎么交"
# Questions the FAQ answers, asked over the days before (the report's daily chart has a shape).
DAILY = ("诉讼费怎么交", "法院几点上班", "怎么申请强制执行")
OPERATOR, OPERATOR_PASSWORD = "li", "li-has-a-long-password"
SHARED_PASSWORD = "the-office-shared-password"
DEAD_ERROR = "HTTP 503 from the receiving system: Service Unavailable"


@dataclass(frozen=True)
class Seeded:
    references: dict[str, str]  # conversation -> the ticket's reference
    dead_id: int  # the dead-lettered acknowledgement (to conversation case-1)


async def seed(database: Path, knowledge: Path, *, extra_tickets: int = 0) -> Seeded:
    """Tickets on the webhook channel: case-1 (its acknowledgement dead-lettered), case-2 and
    case-3 with markup in the question (case-2 also in the name), case-4 received twelve days
    ago (overdue); case-5 answered by the FAQ; `extra_tickets` more (case-extra-N); and over the
    ten days before, a few questions a day that the FAQ answers (case-day-D-N)."""
    now = datetime.now(UTC)
    asked = [
        ("case-1", "Wang", CASE_QUESTION, now - timedelta(hours=3)),
        ("case-2", MARKUP_NAME, MARKUP, now - timedelta(hours=2)),
        ("case-3", "Sun", MARKUP, now - timedelta(hours=1)),
        ("case-4", "Zhou", PARKING, now - timedelta(days=12)),
        ("case-5", "Wu", ANSWERED, now - timedelta(minutes=30)),
    ]
    asked += [
        (f"case-extra-{n}", f"Citizen {n}", f"第{n}个问题：窗户坏了谁来修", now - timedelta(days=1))
        for n in range(extra_tickets)
    ]
    asked += [
        (f"case-day-{day}-{n}", None, DAILY[n % len(DAILY)], now - timedelta(days=day, hours=n))
        for day in range(1, 11)
        for n in range(1 + (day * 7) % 5)
    ]
    store = await Store.open(f"sqlite+aiosqlite:///{database}")
    try:
        await store.accept(
            [
                InboundMessage(
                    "webhook",
                    f"q-{conversation}",
                    conversation,
                    f"u-{conversation}",
                    text,
                    False,
                    sender_name=name,
                    received_at=at,
                )
                for conversation, name, text, at in asked
            ]
        )
        desk = Desk(load_knowledge(knowledge))
        rows = await store.claim_inbox("seed", 1000, 30)
        await handle_batch(rows, desk, rules_for, store)
        references = {e.conversation: e.reference for e in await store.find_tickets()}
        dead_id = 0
        for row in await store.claim_outbox("seed", 1000, 30):
            if row.conversation == "case-1":
                await store.mark_dead(row.id, DEAD_ERROR)
                dead_id = row.id
            else:
                await store.mark_sent(row.id, f"sent-{row.id}")
        await AdminStore(store).add_operator(OPERATOR, hash_password(OPERATOR_PASSWORD))
    finally:
        await store.close()
    assert dead_id and set(references) >= {"case-1", "case-2", "case-3", "case-4"}
    return Seeded(references, dead_id)


def csrf_token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def sign_in(
    client: Client, name: str = OPERATOR, password: str = OPERATOR_PASSWORD, **headers: str
) -> web.StreamResponse:
    """Open the sign-in page (it sets the session cookie with the form's token) and send it."""
    page = await client.get("/admin/signin", headers=headers)
    return await client.post(
        "/admin/signin",
        data={"csrf": csrf_token(await page.text()), "name": name, "password": password},
        headers=headers,
        allow_redirects=False,
    )


async def form_token(client: Client, path: str) -> str:
    page = await client.get(path)
    assert page.status == 200, await page.text()
    return csrf_token(await page.text())

"""Weibo through the real app: the fans-service push is verified, stored once and answered with
a private reply; polled mentions are answered with comments; forged pushes store nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_weibo import (
    APP_SECRET,
    OWN_UID,
    TOKEN,
    FakeWeibo,
    fake_weibo,
    push_query,
    status,
    text_push,
)
from web_support import SMALL_KB, count_rows, served_app

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeWeibo, str]]:
    async with fake_weibo() as served:
        yield served


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "d.db"


@pytest.fixture
async def client(aiohttp_client: Any, fake: tuple[FakeWeibo, str], database: Path) -> Client:
    environ = {
        "CIVICDESK_CHANNELS": "weibo",
        "CIVICDESK_WEIBO_ACCESS_TOKEN": TOKEN,
        "CIVICDESK_WEIBO_APP_SECRET": APP_SECRET,
        "CIVICDESK_WEIBO_USER_ID": OWN_UID,
        "CIVICDESK_WEIBO_API_BASE": fake[1],
        "CIVICDESK_WEIBO_MESSAGES_API_BASE": fake[1],
        "CIVICDESK_WEIBO_POLL_INTERVAL": "0.05",
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
    }
    app, _, _ = await served_app(environ, SMALL_KB)
    result: Client = await aiohttp_client(app)
    return result


def now_ms() -> str:
    return str(int(time.time() * 1000))


async def push(client: Client, body: bytes, query: dict[str, str]) -> Any:
    return await client.post("/webhooks/weibo", params=query, data=body)


async def test_a_signed_private_message_is_stored_and_answered_privately(
    client: Client, fake: tuple[FakeWeibo, str], database: Path
) -> None:
    api, _ = fake
    response = await push(client, text_push("How do I pay the court fee?"), push_query(now_ms()))
    assert response.status == 200 and await response.read() == b""

    path, query, form = next(p for p in await api.wait_posts(1) if "messages" in p[0])
    assert path == "/2/messages/reply.json" and query["access_token"] == TOKEN
    assert form["receiver_id"] == "2489518277"
    assert json.loads(form["data"])["text"].startswith(
        "Pay online or at the litigation service centre."
    )
    assert count_rows(database, "inbox") == 1


async def test_a_redelivered_push_is_answered_once(
    client: Client, fake: tuple[FakeWeibo, str], database: Path
) -> None:
    api, _ = fake
    body = text_push("How do I pay the court fee?")
    statuses = []
    for _ in range(3):  # Weibo retries after 5 s without an answer: same body, new signature
        statuses.append((await push(client, body, push_query(now_ms()))).status)
    assert statuses == [200, 200, 200]
    await api.wait_posts(1)
    # One stored question, one reply row: nothing else can be sent.
    assert count_rows(database, "inbox") == 1
    assert count_rows(database, "outbox") == 1


async def test_a_forged_or_stale_push_is_refused_and_stores_nothing(
    client: Client, database: Path
) -> None:
    body = text_push("How do I pay the court fee?")
    forged = {**push_query(now_ms()), "signature": "0" * 40}
    stale = push_query(str(int(time.time() * 1000) - 3_600_000))
    for query in (forged, stale, {}):
        response = await push(client, body, query)
        assert response.status == 401
    assert count_rows(database, "inbox") == 0


async def test_the_url_check_echoes_echostr_and_a_forged_one_is_refused(client: Client) -> None:
    query = {**push_query("1639017506000"), "echostr": "KeyDMwtf672"}
    response = await client.get("/webhooks/weibo", params=query)
    assert response.status == 200 and await response.text() == "KeyDMwtf672"

    forged = await client.get("/webhooks/weibo", params={**query, "signature": "0" * 40})
    assert forged.status == 401
    assert "signature does not match" in (await forged.json())["error"]


async def test_a_polled_mention_is_answered_with_a_comment(
    client: Client, fake: tuple[FakeWeibo, str]
) -> None:
    api, _ = fake
    while not any("statuses" in path for path, _ in api.gets):  # the first poll: "from now"
        api.polled.clear()
        await asyncio.wait_for(api.polled.wait(), 10)
    api.statuses.append(status("9007199254740993", "@某市法院 How do I pay the court fee?"))

    (path, _, form), *_ = await api.wait_posts(1)
    assert path == "/2/comments/create.json"
    assert form["id"] == "9007199254740993"
    assert form["comment"].startswith("@市民小王 Pay online")

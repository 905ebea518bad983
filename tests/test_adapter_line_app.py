"""LINE through the real app: signed webhooks stored and answered from the FAQ through a fake of
LINE's API (by reply token, as the answer leaves within the minute), forged ones refused and
nothing stored, a redelivery answered once."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_apis import serve, until
from web_support import SMALL_KB, count_rows, served_app

Client = TestClient[web.Request, web.Application]
SECRET = "line-channel-secret"
ACCESS_TOKEN = "line-access-token"
ANSWER = "Pay online or at the litigation service centre."


class FakeLine:
    """LINE's reply and push endpoints: record each call and answer as documented."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append((request.path, request.headers["Authorization"], body))
        self.arrived.set()
        return web.json_response({"sentMessages": [{"id": "m1", "quoteToken": "q"}]})

    async def wait_for(self, count: int) -> list[tuple[str, str, dict[str, Any]]]:
        await until(self.arrived, lambda: len(self.calls) >= count, f"{count} LINE calls")
        return self.calls


@pytest.fixture
async def line_api() -> AsyncIterator[tuple[FakeLine, str]]:
    fake = FakeLine()
    routes = [("POST", f"/v2/bot/message/{kind}", fake.handle) for kind in ("reply", "push")]
    async with serve(routes) as url:
        yield fake, url


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "d.db"


@pytest.fixture
async def client(aiohttp_client: Any, line_api: tuple[FakeLine, str], database: Path) -> Client:
    environ = {
        "CIVICDESK_CHANNELS": "line",
        "CIVICDESK_LINE_CHANNEL_SECRET": SECRET,
        "CIVICDESK_LINE_CHANNEL_ACCESS_TOKEN": ACCESS_TOKEN,
        "CIVICDESK_LINE_API_BASE": line_api[1],
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
    }
    app, _, _ = await served_app(environ, SMALL_KB)
    result: Client = await aiohttp_client(app)
    return result


def delivery(text: str, event_id: str, source: dict[str, str], **message: Any) -> bytes:
    event = {
        "type": "message",
        "mode": "active",
        "timestamp": 1_700_000_000_000,
        "source": source,
        "webhookEventId": event_id,
        "deliveryContext": {"isRedelivery": False},
        "replyToken": f"token-{event_id}",
        "message": {"id": "1", "type": "text", "text": text, "quoteToken": "qT", **message},
    }
    return json.dumps({"destination": "Ubot", "events": [event]}).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-Line-Signature": base64.b64encode(digest).decode(),
    }


USER = {"type": "user", "userId": "U1"}


async def test_a_question_is_stored_and_answered_with_the_reply_token(
    client: Client, line_api: tuple[FakeLine, str], database: Path
) -> None:
    fake, _ = line_api
    body = delivery("How do I pay the court fee?", "01EVENT1", USER)

    response = await client.post("/webhooks/line", data=body, headers=signed(body))

    assert response.status == 200, await response.text()
    ((path, auth, sent),) = await fake.wait_for(1)
    assert path == "/v2/bot/message/reply"
    assert auth == f"Bearer {ACCESS_TOKEN}"
    assert sent["replyToken"] == "token-01EVENT1"
    (message,) = sent["messages"]
    assert message["type"] == "text" and message["text"].startswith(ANSWER)
    assert "quoteToken" not in message  # a private chat: no quote needed
    assert count_rows(database, "inbox") == 1


async def test_a_mention_in_a_group_is_answered_publicly_quoting_the_question(
    client: Client, line_api: tuple[FakeLine, str]
) -> None:
    fake, _ = line_api
    group = {"type": "group", "groupId": "C1", "userId": "U1"}
    mention = {"mention": {"mentionees": [{"index": 0, "length": 5, "isSelf": True}]}}
    body = delivery("@Desk How do I pay the court fee?", "01EVENT2", group, **mention)

    assert (await client.post("/webhooks/line", data=body, headers=signed(body))).status == 200

    ((_, _, sent),) = await fake.wait_for(1)
    (message,) = sent["messages"]
    assert message["type"] == "textV2"  # the asker is mentioned for real, not as "@U1" text
    assert message["text"].startswith("{asker} " + ANSWER)
    assert message["substitution"]["asker"]["mentionee"] == {"type": "user", "userId": "U1"}
    assert message["quoteToken"] == "qT"


async def test_the_consoles_verify_and_a_forged_delivery_store_nothing(
    client: Client, line_api: tuple[FakeLine, str], database: Path
) -> None:
    verify = b'{"destination":"Ubot","events":[]}'
    body = delivery("How do I pay the court fee?", "01EVENT3", USER)

    checked = await client.post("/webhooks/line", data=verify, headers=signed(verify))
    forged = await client.post("/webhooks/line", data=body, headers=signed(body, "guessed"))

    assert checked.status == 200
    assert forged.status == 401
    assert "X-Line-Signature" in (await forged.json())["error"]
    assert count_rows(database, "inbox") == 0


async def test_a_redelivered_event_is_answered_once(
    client: Client, line_api: tuple[FakeLine, str], database: Path
) -> None:
    fake, _ = line_api
    body = delivery("How do I pay the court fee?", "01EVENT4", USER)
    again = body.replace(b'"isRedelivery": false', b'"isRedelivery": true')

    first = await client.post("/webhooks/line", data=body, headers=signed(body))
    second = await client.post("/webhooks/line", data=again, headers=signed(again))

    assert (first.status, second.status) == (200, 200)
    assert count_rows(database, "inbox") == 1  # one row, so one answer
    await fake.wait_for(1)
    assert count_rows(database, "outbox") == 1
    assert len(fake.calls) == 1

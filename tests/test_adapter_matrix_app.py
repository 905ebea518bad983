"""The Matrix application service through the real app: the homeserver's transaction PUT to the
channel's webhook URL is stored, answered from the FAQ and the answer PUT back into the room as a
reply; a forged transaction stores nothing; a repeated one is answered once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from fake_apis import serve, until
from web_support import SMALL_KB, count_rows, served_app

HS_TOKEN = "hs-token-of-the-registration"
BOT = "@civicdesk:example.org"
ROOM = "!court:example.org"
TXN_PATH = "/webhooks/matrix/_matrix/app/v1/transactions/{}"


class FakeHomeserver:
    """Receives the bot's replies like a homeserver: PUT .../send/m.room.message/{txnId}."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str], dict[str, Any], str]] = []
        self.arrived = asyncio.Event()
        self.members = [BOT, "@a:x", "@b:x"]  # a group room
        self.members_down = False

    async def handle(self, request: web.Request) -> web.Response:
        if "/send/m.room.message/" in request.path and request.method == "PUT":
            auth = request.headers.get("Authorization", "")
            self.sent.append((request.path, dict(request.query), await request.json(), auth))
            self.arrived.set()
            return web.json_response({"event_id": f"$answer{len(self.sent)}"})
        if request.path.endswith("/joined_members"):
            if self.members_down:
                return web.json_response({"errcode": "M_UNKNOWN"}, status=502)
            return web.json_response({"joined": {m: {} for m in self.members}})
        return web.json_response({})

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        await until(self.arrived, lambda: len(self.sent) >= count, f"{count} replies", timeout)


@pytest.fixture
async def homeserver() -> AsyncIterator[tuple[FakeHomeserver, str]]:
    fake = FakeHomeserver()
    async with serve([("*", "/{tail:.*}", fake.handle)]) as url:
        yield fake, url


@pytest.fixture
async def client(aiohttp_client: Any, homeserver: Any, tmp_path: Path) -> Any:
    environ = {
        "CIVICDESK_CHANNELS": "matrix",
        "CIVICDESK_MATRIX_MODE": "appservice",
        "CIVICDESK_MATRIX_USER_ID": BOT,
        "CIVICDESK_MATRIX_AS_TOKEN": "as-token-of-the-registration",
        "CIVICDESK_MATRIX_HS_TOKEN": HS_TOKEN,
        "CIVICDESK_MATRIX_API_BASE": homeserver[1],
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}",
    }
    app, _, _ = await served_app(environ, SMALL_KB)
    return await aiohttp_client(app)


def transaction(event_id: str = "$q1", text: str = "How do I pay the court fee?") -> bytes:
    event = {
        "type": "m.room.message",
        "event_id": event_id,
        "room_id": ROOM,
        "sender": "@alice:example.org",
        "origin_server_ts": 1_700_000_000_000,
        "content": {"msgtype": "m.text", "body": text, "m.mentions": {"user_ids": [BOT]}},
    }
    return json.dumps({"events": [event]}).encode()


def bearer(token: str = HS_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


async def test_a_transaction_is_stored_answered_and_the_answer_put_as_a_reply(
    client: Any, homeserver: Any, tmp_path: Path
) -> None:
    fake, _ = homeserver
    response = await client.put(TXN_PATH.format("1"), data=transaction(), headers=bearer())
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {}

    await fake.wait_for(1)
    path, query, body, auth = fake.sent[0]
    assert path.startswith(f"/_matrix/client/v3/rooms/{ROOM}/send/m.room.message/civicdesk-")
    assert query == {"user_id": BOT}
    assert auth == "Bearer as-token-of-the-registration"
    assert body["m.relates_to"] == {"m.in_reply_to": {"event_id": "$q1"}}
    # A group room: the answer quotes the question and names the asker in m.mentions (which
    # notifies them), with no "@alice:example.org" in front of the text.
    assert body["m.mentions"] == {"user_ids": ["@alice:example.org"]}
    assert body["body"] == (
        "Pay online or at the litigation service centre. https://court.example.gov/fees"
    )
    assert count_rows(tmp_path / "d.db", "inbox") == 1


async def test_a_forged_transaction_gets_403_an_unsigned_one_401_and_nothing_is_stored(
    client: Any, tmp_path: Path
) -> None:
    forged = await client.put(TXN_PATH.format("1"), data=transaction(), headers=bearer("no"))
    unsigned = await client.put(TXN_PATH.format("2"), data=transaction())
    assert forged.status == 403  # the application service spec's status for a wrong hs_token
    assert "hs_token does not match" in (await forged.json())["error"]
    assert unsigned.status == 401
    assert "no hs_token" in (await unsigned.json())["error"]
    assert count_rows(tmp_path / "d.db", "inbox") == 0
    metrics = await (await client.get("/metrics")).text()
    assert 'civicdesk_requests_rejected_total{channel="matrix",status="403"} 1' in metrics


async def test_a_repeated_transaction_is_answered_once(
    client: Any, homeserver: Any, tmp_path: Path
) -> None:
    fake, _ = homeserver
    body = transaction("$q2")
    first, second = await asyncio.gather(
        client.put(TXN_PATH.format("5"), data=body, headers=bearer()),
        client.put(TXN_PATH.format("5"), data=body, headers=bearer()),
    )
    third = await client.put(TXN_PATH.format("6"), data=body, headers=bearer())
    assert [first.status, second.status, third.status] == [200, 200, 200]
    await fake.wait_for(1)
    # The one answer is sent; nothing else is waiting to go.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _busy(tmp_path / "d.db"):
        await asyncio.sleep(0.05)
    assert len(fake.sent) == 1
    assert count_rows(tmp_path / "d.db", "inbox") == 1


async def test_the_ping_is_answered(client: Any) -> None:
    response = await client.post(
        "/webhooks/matrix/_matrix/app/v1/ping", json={"transaction_id": "p"}, headers=bearer()
    )
    assert response.status == 200
    assert await response.json() == {}


def _busy(database: Path) -> bool:
    with sqlite3.connect(database) as connection:
        (busy,) = connection.execute(
            "SELECT (SELECT count(*) FROM inbox WHERE status IN ('new','claimed'))"
            " + (SELECT count(*) FROM outbox WHERE status IN ('pending','sending'))"
        ).fetchone()
    return bool(busy)


async def test_a_first_direct_message_after_a_restart_is_answered_not_dropped(
    client: Any, homeserver: Any, tmp_path: Path
) -> None:
    # Issue 12, finding 2: the room is unknown to the freshly started adapter and the message
    # names nobody. While the homeserver cannot say who is in the room the transaction is
    # refused (the homeserver sends it again); then the room is found private and answered.
    fake, _ = homeserver
    fake.members = [BOT, "@alice:example.org"]
    fake.members_down = True
    event = json.loads(transaction("$dm1", "How do I pay the court fee?"))
    del event["events"][0]["content"]["m.mentions"]
    body = json.dumps(event).encode()
    refused = await client.put(TXN_PATH.format("20"), data=body, headers=bearer())
    assert refused.status == 503
    assert refused.headers["Retry-After"]
    assert count_rows(tmp_path / "d.db", "inbox") == 0

    fake.members_down = False
    again = await client.put(TXN_PATH.format("20"), data=body, headers=bearer())
    assert again.status == 200
    await fake.wait_for(1)
    _, _, reply, _ = fake.sent[0]
    assert reply["m.mentions"] == {"user_ids": []}  # a private answer
    assert reply["body"].startswith("Pay online")

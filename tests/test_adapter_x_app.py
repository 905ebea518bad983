"""X through the real app: the CRC challenge answered, a signed mention stored and answered in
its thread through a fake of X's API (OAuth checked), a DM answered by DM, a forged delivery
refused with nothing stored, a redelivery answered once."""

from __future__ import annotations

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
from fake_x import ACCESS_TOKEN, ACCESS_TOKEN_SECRET, CONSUMER_KEY, CONSUMER_SECRET, FakeX, fake_x
from web_support import SMALL_KB, count_rows, served_app

Client = TestClient[web.Request, web.Application]
LOCAL = Path(__file__).resolve().parent / "fixtures" / "x"
ANSWER = "Pay online or at the litigation service centre."


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeX, str]]:
    async with fake_x() as served:
        yield served


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "x.db"


@pytest.fixture
async def client(aiohttp_client: Any, api: tuple[FakeX, str], database: Path) -> Client:
    environ = {
        "CIVICDESK_CHANNELS": "court-x",
        "CIVICDESK_COURT_X_ADAPTER": "x",
        "CIVICDESK_COURT_X_CONSUMER_KEY": CONSUMER_KEY,
        "CIVICDESK_COURT_X_CONSUMER_SECRET": CONSUMER_SECRET,
        "CIVICDESK_COURT_X_ACCESS_TOKEN": ACCESS_TOKEN,
        "CIVICDESK_COURT_X_ACCESS_TOKEN_SECRET": ACCESS_TOKEN_SECRET,
        "CIVICDESK_COURT_X_API_BASE": api[1],
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
    }
    app, _, _ = await served_app(environ, SMALL_KB)
    result: Client = await aiohttp_client(app)
    return result


def signed(body: bytes, secret: str = CONSUMER_SECRET) -> dict[str, str]:
    """Written from X's description: sha256= and the base64 HMAC-SHA256 of the raw body."""
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {"Content-Type": "application/json", "x-twitter-webhooks-signature": f"sha256={digest}"}


async def test_the_crc_challenge_is_answered_with_the_consumer_secret(client: Client) -> None:
    response = await client.get("/webhooks/court-x", params={"crc_token": "challenge-42"})
    assert response.status == 200
    digest = hmac.new(CONSUMER_SECRET.encode(), b"challenge-42", hashlib.sha256).digest()
    assert await response.json() == {
        "response_token": "sha256=" + base64.b64encode(digest).decode()
    }


async def test_a_mention_is_stored_and_answered_in_its_thread(
    client: Client, api: tuple[FakeX, str], database: Path
) -> None:
    fake, _ = api
    body = (LOCAL / "aaa_mention.json").read_bytes()

    response = await client.post("/webhooks/court-x", data=body, headers=signed(body))

    assert response.status == 200, await response.text()
    [call] = await fake.wait_for(1)
    assert (call.method, call.path) == ("POST", "/2/tweets")
    assert call.body["reply"] == {"in_reply_to_tweet_id": "1865000000000000001"}
    assert call.body["text"].startswith("@liwei_citizen " + ANSWER)
    assert count_rows(database, "inbox") == 1


async def test_a_direct_message_is_answered_by_direct_message(
    client: Client, api: tuple[FakeX, str]
) -> None:
    fake, _ = api
    data = json.loads((LOCAL / "aaa_direct_message.json").read_text())
    data["direct_message_events"][0]["message_create"]["message_data"] = {
        "text": "How do I pay the court fee?"
    }
    body = json.dumps(data).encode()

    assert (await client.post("/webhooks/court-x", data=body, headers=signed(body))).status == 200

    [call] = await fake.wait_for(1)
    assert call.path == "/2/dm_conversations/with/6253282/messages"
    assert call.body["text"].startswith(ANSWER)


async def test_a_forged_delivery_is_refused_and_a_redelivery_answered_once(
    client: Client, api: tuple[FakeX, str], database: Path
) -> None:
    fake, _ = api
    body = (LOCAL / "aaa_mention.json").read_bytes()

    forged = await client.post("/webhooks/court-x", data=body, headers=signed(body, "guessed"))
    assert forged.status == 401
    assert "x-twitter-webhooks-signature" in (await forged.json())["error"]
    assert count_rows(database, "inbox") == 0

    first = await client.post("/webhooks/court-x", data=body, headers=signed(body))
    again = await client.post("/webhooks/court-x", data=body, headers=signed(body))
    assert (first.status, again.status) == (200, 200)
    await fake.wait_for(1)
    assert count_rows(database, "inbox") == 1
    assert count_rows(database, "outbox") == 1
    assert len(fake.calls) == 1

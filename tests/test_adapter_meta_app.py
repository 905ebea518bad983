"""WhatsApp and Messenger through the real app, configured with only the documented keys
(VERIFY_TOKEN, APP_SECRET, ACCESS_TOKEN, WhatsApp's PHONE_NUMBER_ID, and API_BASE pointing at a
fake Graph API on port 0): the subscription check answered, a signed question stored and
answered through the fake, a forged one refused with nothing stored, a redelivery answered once,
a delivery receipt storing nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_apis import serve, until
from web_support import SMALL_KB, count_rows, served_app

Client = TestClient[web.Request, web.Application]
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
APP_SECRET = "meta-app-secret"
TOKEN = "meta-access-token"
PHONE_ID = "1122334455667"
QUESTION = "How do I pay the court fee?"
ANSWER = "Pay online or at the litigation service centre."


@dataclass
class Platform:
    name: str  # the channel's name (not the adapter's: ADAPTER names that)
    adapter: str
    send_path: str
    receipt: str  # a recorded body that is no question

    def question(self, message_id: str, text: str) -> bytes:
        if self.adapter == "whatsapp":
            data = json.loads((FIXTURES / "whatsapp" / "message_text.json").read_text())
            message = data["entry"][0]["changes"][0]["value"]["messages"][0]
            message.update(id=message_id, text={"body": text})
        else:
            data = json.loads((FIXTURES / "messenger" / "page_message_text.json").read_text())
            data["entry"][0]["messaging"][0]["message"] = {"mid": message_id, "text": text}
        return json.dumps(data).encode()

    def recipient(self, body: dict[str, Any]) -> str:
        return str(body["to"] if self.adapter == "whatsapp" else body["recipient"]["id"])

    def text(self, body: dict[str, Any]) -> str:
        return str(body["text"]["body"] if self.adapter == "whatsapp" else body["message"]["text"])


PLATFORMS = {
    "whatsapp": Platform(
        "citizens-wa", "whatsapp", f"/v23.0/{PHONE_ID}/messages", "whatsapp/status_sent.json"
    ),
    "messenger": Platform(
        "page", "messenger", "/v23.0/me/messages", "messenger/page_delivery.json"
    ),
}


class FakeGraph:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((request.path, request.headers["Authorization"], await request.json()))
        self.arrived.set()
        return web.json_response({"messages": [{"id": "wamid.out"}], "message_id": "m_out"})

    async def wait_for(self, count: int) -> list[tuple[str, str, dict[str, Any]]]:
        await until(self.arrived, lambda: len(self.calls) >= count, f"{count} Graph API calls")
        return self.calls


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request: pytest.FixtureRequest) -> Platform:
    return PLATFORMS[request.param]


@pytest.fixture
async def graph(platform: Platform) -> AsyncIterator[tuple[FakeGraph, str]]:
    fake = FakeGraph()
    async with serve([("POST", platform.send_path, fake.handle)]) as url:
        yield fake, url + "/v23.0"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "meta.db"


@pytest.fixture
async def client(
    aiohttp_client: Any, platform: Platform, graph: tuple[FakeGraph, str], database: Path
) -> Client:
    prefix = "CIVICDESK_" + platform.name.upper().replace("-", "_") + "_"
    environ = {
        "CIVICDESK_CHANNELS": platform.name,
        f"{prefix}ADAPTER": platform.adapter,
        f"{prefix}VERIFY_TOKEN": "verify-me",
        f"{prefix}APP_SECRET": APP_SECRET,
        f"{prefix}ACCESS_TOKEN": TOKEN,
        f"{prefix}API_BASE": graph[1],
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
    }
    if platform.adapter == "whatsapp":
        environ[f"{prefix}PHONE_NUMBER_ID"] = PHONE_ID
    app, _, _ = await served_app(environ, SMALL_KB)
    result: Client = await aiohttp_client(app)
    return result


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


async def test_the_subscription_check_is_answered(client: Client, platform: Platform) -> None:
    url = f"/webhooks/{platform.name}"
    query = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "8472"}
    right = await client.get(url, params=query)
    wrong = await client.get(url, params={**query, "hub.verify_token": "guess"})
    assert (right.status, await right.text()) == (200, "8472")
    assert wrong.status == 403


async def test_a_signed_question_is_stored_and_answered_through_the_graph_api(
    client: Client, platform: Platform, graph: tuple[FakeGraph, str], database: Path
) -> None:
    fake, _ = graph
    body = platform.question("wamid.Q1", QUESTION)

    response = await client.post(f"/webhooks/{platform.name}", data=body, headers=signed(body))

    assert response.status == 200, await response.text()
    [(path, auth, sent)] = await fake.wait_for(1)
    assert path == platform.send_path and auth == f"Bearer {TOKEN}"
    assert platform.recipient(sent) in ("972987654321", "1234")
    assert platform.text(sent).startswith(ANSWER)
    assert count_rows(database, "inbox") == 1


async def test_a_forged_delivery_is_refused_and_nothing_is_stored(
    client: Client, platform: Platform, database: Path
) -> None:
    body = platform.question("wamid.Q2", QUESTION)
    forged = await client.post(
        f"/webhooks/{platform.name}", data=body, headers=signed(body, "not the app secret")
    )
    unsigned = await client.post(f"/webhooks/{platform.name}", data=body)
    assert (forged.status, unsigned.status) == (401, 401)
    assert "X-Hub-Signature-256" in (await forged.json())["error"]
    assert count_rows(database, "inbox") == 0


async def test_a_redelivery_is_answered_once_and_a_receipt_stores_nothing(
    client: Client, platform: Platform, graph: tuple[FakeGraph, str], database: Path
) -> None:
    fake, _ = graph
    body = platform.question("wamid.Q3", QUESTION)
    receipt = (FIXTURES / platform.receipt).read_bytes()

    first = await client.post(f"/webhooks/{platform.name}", data=body, headers=signed(body))
    again = await client.post(f"/webhooks/{platform.name}", data=body, headers=signed(body))
    status = await client.post(f"/webhooks/{platform.name}", data=receipt, headers=signed(receipt))

    assert (first.status, again.status, status.status) == (200, 200, 200)
    await fake.wait_for(1)
    assert count_rows(database, "inbox") == 1
    assert count_rows(database, "outbox") == 1
    assert len(fake.calls) == 1

"""WeChat through the real app: the URL check, signed messages (plaintext and safe mode) stored,
acknowledged with `success` and answered from the FAQ through a fake of WeChat's API, forged and
stale ones refused with nothing stored, WeChat's retry of a message answered once."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_apis import serve, until
from web_support import SMALL_KB, count_rows, served_app

from adapters.wechat_crypto import WeChatCrypto

Client = TestClient[web.Request, web.Application]
TOKEN = "wechat-token"
APP_ID = "wx49f0ab532d5d035a"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"  # wechatpy's test key
ANSWER = "Pay online or at the litigation service centre."


class FakeWeChat:
    """WeChat's token and customer-service endpoints: record each message, answer as documented."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def stable_token(self, request: web.Request) -> web.Response:
        return web.json_response({"access_token": "ACCESS", "expires_in": 7200})

    async def custom_send(self, request: web.Request) -> web.Response:
        if request.query.get("access_token") != "ACCESS":
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        self.messages.append(await request.json())
        self.arrived.set()
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        await until(self.arrived, lambda: len(self.messages) >= count, f"{count} messages")
        return self.messages


@pytest.fixture
async def wechat_api() -> AsyncIterator[tuple[FakeWeChat, str]]:
    fake = FakeWeChat()
    routes = [
        ("POST", "/cgi-bin/stable_token", fake.stable_token),
        ("POST", "/cgi-bin/message/custom/send", fake.custom_send),
    ]
    async with serve(routes) as url:
        yield fake, url


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "d.db"


async def app_client(aiohttp_client: Any, api_url: str, database: Path, **extra: str) -> Client:
    environ = {
        "CIVICDESK_CHANNELS": "wechat",
        "CIVICDESK_WECHAT_APP_ID": APP_ID,
        "CIVICDESK_WECHAT_APP_SECRET": "app-secret",
        "CIVICDESK_WECHAT_TOKEN": TOKEN,
        "CIVICDESK_WECHAT_API_BASE": api_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        **extra,
    }
    app, _, _ = await served_app(environ, SMALL_KB)
    result: Client = await aiohttp_client(app)
    return result


@pytest.fixture
async def client(aiohttp_client: Any, wechat_api: tuple[FakeWeChat, str], database: Path) -> Client:
    return await app_client(aiohttp_client, wechat_api[1], database)


def text_message(text: str, msg_id: str, openid: str = "oCitizen1") -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[gh_court]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    ).encode()


def query(nonce: str, at: float | None = None, token: str = TOKEN, **extra: str) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    parts = "".join(sorted([token, timestamp, nonce])).encode()
    signature = hashlib.sha1(parts).hexdigest()
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce, **extra}


async def test_the_url_check_echoes_echostr(client: Client) -> None:
    response = await client.get("/webhooks/wechat", params=query("n0", echostr="hello-wechat"))

    assert response.status == 200
    assert await response.text() == "hello-wechat"

    forged = await client.get(
        "/webhooks/wechat", params={**query("n0", echostr="x"), "signature": "0" * 40}
    )
    assert forged.status == 401
    assert "signature does not match" in (await forged.json())["error"]


async def test_a_question_is_acknowledged_with_success_and_answered_by_the_api(
    client: Client, wechat_api: tuple[FakeWeChat, str], database: Path
) -> None:
    fake, _ = wechat_api
    body = text_message("How do I pay the court fee?", "6100000000000000001")

    response = await client.post("/webhooks/wechat", params=query("n1"), data=body)

    assert response.status == 200
    assert await response.text() == "success"
    (sent,) = await fake.wait_for(1)
    assert sent["touser"] == "oCitizen1"
    assert sent["msgtype"] == "text"
    assert sent["text"]["content"].startswith(ANSWER)
    assert count_rows(database, "inbox") == 1


async def test_forged_and_stale_messages_are_refused_and_nothing_is_stored(
    client: Client, database: Path
) -> None:
    body = text_message("How do I pay the court fee?", "6100000000000000002")

    forged = await client.post("/webhooks/wechat", params=query("n2", token="guess"), data=body)
    stale = await client.post("/webhooks/wechat", params=query("n3", time.time() - 3600), data=body)

    assert (forged.status, stale.status) == (401, 401)
    assert "signature does not match" in (await forged.json())["error"]
    assert "at most 300 s" in (await stale.json())["error"]
    assert count_rows(database, "inbox") == 0


async def test_wechats_retry_of_a_message_is_answered_once(
    client: Client, wechat_api: tuple[FakeWeChat, str], database: Path
) -> None:
    fake, _ = wechat_api
    body = text_message("How do I pay the court fee?", "6100000000000000003")

    statuses = [
        (await client.post("/webhooks/wechat", params=query(nonce), data=body)).status
        for nonce in ("r1", "r2", "r3")  # WeChat tries 3 times when the answer is slow
    ]

    assert statuses == [200, 200, 200]
    assert count_rows(database, "inbox") == 1  # one row, so one answer
    await fake.wait_for(1)
    assert count_rows(database, "outbox") == 1
    assert len(fake.messages) == 1


async def test_in_safe_mode_an_encrypted_question_is_answered(
    aiohttp_client: Any, wechat_api: tuple[FakeWeChat, str], database: Path
) -> None:
    fake, url = wechat_api
    client = await app_client(
        aiohttp_client, url, database, CIVICDESK_WECHAT_ENCODING_AES_KEY=AES_KEY
    )
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    sealed = crypto.encrypt(text_message("诉讼费在哪里交", "6100000000000000004", "oCitizen2"))
    body = f"<xml><ToUserName>gh_court</ToUserName><Encrypt><![CDATA[{sealed}]]></Encrypt></xml>"
    params = query("s1", encrypt_type="aes")
    params["msg_signature"] = crypto.signature(params["timestamp"], "s1", sealed)

    plain = await client.post("/webhooks/wechat", params=query("s0"), data=text_message("hi", "1"))
    response = await client.post("/webhooks/wechat", params=params, data=body.encode())

    assert plain.status == 401  # a safe-mode channel takes no plaintext
    assert response.status == 200, await response.text()
    (sent,) = await fake.wait_for(1)
    assert sent["touser"] == "oCitizen2"
    assert sent["text"]["content"].startswith("可通过网上缴费")

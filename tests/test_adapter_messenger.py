"""Messenger: the recorded payloads (../shared/fixtures/messenger, from fbmessenger's tests), the
subscription check, X-Hub-Signature-256, echoes and receipts skipped, media, and replies through
a fake of the Send API on port 0."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from fake_apis import serve

from adapters.messenger import MessengerAdapter
from bot.config.settings import Secret
from bot.platform.adapter import BadRequest, RawRequest, Unauthorized
from bot.platform.messages import MEDIA_KINDS, OutboundMessage

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "messenger"
APP_SECRET = "messenger-app-secret"
TOKEN = "page-access-token"


def adapter(api_base: str = "http://127.0.0.1:9") -> MessengerAdapter:
    return MessengerAdapter(
        "messenger",
        verify_token=Secret("verify-me"),
        app_secret=Secret(APP_SECRET),
        access_token=Secret(TOKEN),
        api_base=api_base,
        timeout=2.0,
    )


def signed(body: bytes, secret: str = APP_SECRET) -> str:
    """Written from Meta's description: sha256= and the hex HMAC of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def raw(body: bytes, signature: str | None = None, **query: str) -> RawRequest:
    headers = {"x-hub-signature-256": signature} if signature else {}
    return RawRequest("GET" if query else "POST", "/webhooks/messenger", query, headers, body)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_a_signed_delivery_verifies_and_a_changed_byte_fails() -> None:
    body = fixture("page_message_text.json")
    adapter().verify(raw(body, signed(body)))
    with pytest.raises(Unauthorized):
        adapter().verify(raw(body.replace(b"hello", b"hellO"), signed(body)))
    with pytest.raises(Unauthorized):
        adapter().verify(raw(body, signed(body, "another app")))


def test_the_subscription_check() -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "verify-me",
        "hub.challenge": "1158201444",
    }
    reply = adapter().handshake(raw(b"", **query))
    assert reply is not None and (reply.status, reply.body) == (200, b"1158201444")
    for wrong in ({"hub.verify_token": "nope"}, {"hub.mode": "unsubscribe"}):
        with pytest.raises(Unauthorized) as refused:
            adapter().handshake(raw(b"", **{**query, **wrong}))
        assert refused.value.status == 403


def test_the_recorded_text_message_is_a_private_question() -> None:
    [message] = adapter().parse(raw(fixture("page_message_text.json")))
    assert message.platform_id == "mid.1457764197618:41d102a3e1ae206a38"
    assert (message.conversation, message.sender) == ("1234", "1234")  # numeric ids as text
    assert message.text == "hello, world!" and message.public is False
    assert message.received_at.timestamp() == 1457764197.627


def test_receipts_and_postbacks_are_no_questions() -> None:
    assert adapter().parse(raw(fixture("page_delivery.json"))) == []
    assert adapter().parse(raw(fixture("page_postback.json"))) == []


def event(**message: Any) -> bytes:
    data = json.loads(fixture("page_message_text.json"))
    data["entry"][0]["messaging"][0]["message"] = {"mid": "m_1", **message}
    return json.dumps(data).encode()


def test_echoes_are_skipped_and_attachments_are_media_without_text() -> None:
    assert adapter().parse(raw(event(text="our own reply", is_echo=True, app_id=1))) == []
    cases = [
        ({"attachments": [{"type": "image", "payload": {"url": "https://x/y.jpg"}}]}, "image"),
        ({"attachments": [{"type": "audio", "payload": {"url": "https://x/a.mp4"}}]}, "audio"),
        (
            {
                "sticker_id": 369239263222822,
                "attachments": [{"type": "image", "payload": {"sticker_id": 369239263222822}}],
            },
            "sticker",
        ),
        ({"attachments": [{"type": "location", "payload": {}}]}, "location"),
        ({"attachments": [{"type": "fallback", "payload": {}}]}, "unsupported"),
    ]
    for part, media in cases:
        [message] = adapter().parse(raw(event(**part)))
        assert (message.text, message.media) == ("", media)
        assert message.media in MEDIA_KINDS


def test_a_body_of_another_object_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        adapter().parse(raw(b'{"object": "instagram", "entry": []}'))
    with pytest.raises(BadRequest):
        adapter().parse(raw(event(text="no mid").replace(b'"mid": "m_1", ', b"")))


# --- Replies through a fake Send API ------------------------------------------------------------


class FakeSendApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []
        self.answers: list[web.Response] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append((request.method, request.path, request.headers["Authorization"], body))
        if self.answers:
            return self.answers.pop(0)
        return web.json_response({"recipient_id": body["recipient"]["id"], "message_id": "m_9"})


@pytest.fixture
async def send_api() -> AsyncIterator[tuple[FakeSendApi, str]]:
    fake = FakeSendApi()
    async with serve([("POST", "/v23.0/me/messages", fake.handle)]) as url:
        yield fake, url + "/v23.0"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def reply() -> OutboundMessage:
    return OutboundMessage(
        id=3,
        channel="messenger",
        conversation="1234",
        text="Pay online.",
        public=False,
        recipient="1234",
    )


async def test_a_reply_goes_to_the_psid_as_a_response(
    send_api: tuple[FakeSendApi, str], session: aiohttp.ClientSession
) -> None:
    fake, url = send_api
    hook = adapter(url)
    hook.attach_session(session)

    result = await hook.send(reply())

    assert result.ok and result.platform_id == "m_9"
    [(method, path, auth, body)] = fake.calls
    assert (method, path, auth) == ("POST", "/v23.0/me/messages", f"Bearer {TOKEN}")
    assert body == {
        "recipient": {"id": "1234"},
        "messaging_type": "RESPONSE",
        "message": {"text": "Pay online."},
    }


async def test_outside_the_window_the_reply_is_not_retried_and_a_rate_limit_is(
    send_api: tuple[FakeSendApi, str], session: aiohttp.ClientSession
) -> None:
    fake, url = send_api
    hook = adapter(url)
    hook.attach_session(session)
    outside = {
        "message": "(#10) This message is sent outside of allowed window.",
        "type": "OAuthException",
        "code": 10,
        "error_subcode": 2018278,
    }
    limited = {"message": "(#613) Calls to this api have exceeded the rate limit.", "code": 613}
    gone = {"message": "(#551) This person isn't available right now.", "code": 551}
    fake.answers = [web.json_response({"error": e}, status=400) for e in (outside, limited, gone)]

    closed, rate, unavailable = [await hook.send(reply()) for _ in range(3)]

    assert not closed.ok and not closed.retryable and "24-hour" in (closed.error or "")
    assert rate.retryable and rate.retry_after
    assert not unavailable.retryable

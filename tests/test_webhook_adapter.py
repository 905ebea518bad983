"""The generic webhook channel on its own: signatures both ways, the replay window, the JSON
schema with its error messages, and replies POSTed to a receiver that answers like a real one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.http import classify, hmac_sha256_base64, parse_retry_after
from adapters.webhook import IDEMPOTENCY_HEADER, WebhookAdapter, sign, signed_headers
from bot.config.settings import Secret
from bot.platform.adapter import BadRequest, RawRequest, Unauthorized
from bot.platform.messages import OutboundMessage

SECRET = "test-secret"
NOW = 1_700_000_000.0
BODY = '{"id":"m-1","conversation":"c-9","text":"诉讼费怎么交"}'.encode()
# Computed outside Python: printf '%s' '1700000000.<BODY>' | openssl dgst -sha256 -hmac test-secret
OPENSSL_VECTOR = "sha256=b4bac492ae05856db33198bf0c0185b89249e9918d2c8cdc6b3b591d8aaa44f0"


def adapter(clock: Callable[[], float] = lambda: NOW, url: str = "http://127.0.0.1:1/") -> Any:
    return WebhookAdapter("webhook", Secret(SECRET), url, clock=clock, timeout=2.0)


def request(body: bytes = BODY, **headers: str) -> RawRequest:
    return RawRequest("POST", "/webhooks/webhook", {}, headers, body)


def signed(body: bytes = BODY, at: float = NOW, secret: str = SECRET) -> RawRequest:
    return request(body, **signed_headers(secret, body, at))


def test_the_signature_matches_an_independent_implementation() -> None:
    assert sign(SECRET, "1700000000", BODY) == OPENSSL_VECTOR


def test_a_correctly_signed_request_passes() -> None:
    adapter().verify(signed())
    # Header names are case-insensitive, as HTTP says.
    headers = {k.lower(): v for k, v in signed_headers(SECRET, BODY, NOW).items()}
    adapter().verify(request(BODY, **headers))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (signed(secret="wrong-secret"), "does not match"),
        (request(BODY + b" ", **signed_headers(SECRET, BODY, NOW)), "does not match"),
        (request(BODY, **{"X-Civicdesk-Timestamp": "1700000000"}), "missing X-Civicdesk-Signature"),
        (
            request(BODY, **{"X-Civicdesk-Signature": OPENSSL_VECTOR}),
            "missing X-Civicdesk-Timestamp",
        ),
        (
            request(BODY, **{"X-Civicdesk-Timestamp": "soon", "X-Civicdesk-Signature": "sha256=0"}),
            "whole seconds",
        ),
        (
            request(
                BODY,
                **{"X-Civicdesk-Timestamp": "1700000000", "X-Civicdesk-Signature": "md5=abc"},
            ),
            "missing X-Civicdesk-Signature",
        ),
    ],
)
def test_forged_or_incomplete_requests_are_unauthorized(raw: RawRequest, reason: str) -> None:
    with pytest.raises(Unauthorized, match=reason):
        adapter().verify(raw)


def test_a_signature_moved_to_another_timestamp_fails() -> None:
    """The timestamp is signed: a captured request replayed with a fresh timestamp is refused."""
    original = signed_headers(SECRET, BODY, NOW - 1000)
    replay = request(
        BODY,
        **{
            "X-Civicdesk-Timestamp": str(int(NOW)),
            "X-Civicdesk-Signature": original["X-Civicdesk-Signature"],
        },
    )

    with pytest.raises(Unauthorized, match="does not match"):
        adapter().verify(replay)


@pytest.mark.parametrize("age", [301, -301, 86400])
def test_a_request_outside_the_replay_window_is_refused(age: float) -> None:
    with pytest.raises(Unauthorized, match="at most 300 s"):
        adapter().verify(signed(at=NOW - age))


def test_a_request_at_the_edge_of_the_window_passes() -> None:
    adapter().verify(signed(at=NOW - 300))
    adapter().verify(signed(at=NOW + 300))


def test_parse_reads_the_documented_schema() -> None:
    body = json.dumps(
        {
            "id": "evt-42",
            "conversation": "case-7",
            "sender": "u-1",
            "sender_name": "张三",
            "text": "诉讼费怎么交",
            "public": True,
            "lang": "zh",
            "reply_to": "evt-41",
            "extra": "ignored",
        }
    ).encode()

    (message,) = adapter().parse(request(body))

    assert message.channel == "webhook"
    assert message.platform_id == "evt-42"
    assert message.conversation == "case-7"
    assert (message.sender, message.sender_name) == ("u-1", "张三")
    assert message.text == "诉讼费怎么交"
    assert message.public is True
    assert (message.lang_hint, message.reply_to) == ("zh", "evt-41")
    assert message.received_at.timestamp() == NOW


def test_the_sender_defaults_to_the_conversation_and_public_to_false() -> None:
    (message,) = adapter().parse(request(BODY))

    assert message.sender == "c-9"
    assert message.public is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "one JSON object"),
        (b'{"conversation": "c", "text": "t"}', '"id" is missing'),
        (b'{"id": 42, "conversation": "c", "text": "t"}', '"id" must be a string (quote numbers'),
        (b'{"id": " ", "conversation": "c", "text": "t"}', '"id" must not be empty'),
        (b'{"id": "1", "text": "t"}', '"conversation" is missing'),
        (b'{"id": "1", "conversation": "c"}', '"text" is missing'),
        (b'{"id": "1", "conversation": "c", "text": "t", "public": "yes"}', "true or false"),
        (b'{"id": "' + b"x" * 256 + b'", "conversation": "c", "text": "t"}', "at most 255"),
    ],
)
def test_malformed_bodies_are_bad_requests_saying_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message.replace("(", r"\(")):
        adapter().parse(request(body))


def test_acknowledgement_is_a_small_json_200() -> None:
    reply = adapter().acknowledge(signed())

    assert reply.status == 200
    assert json.loads(reply.body) == {"ok": True}


# --- Replies out ----------------------------------------------------------------------------


class Receiver:
    """A receiving system: checks signatures as documented and answers as told."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[web.Response] = []
        self.delay = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        if self.delay:
            await asyncio.sleep(self.delay)
        timestamp = request.headers["X-Civicdesk-Timestamp"]
        if request.headers["X-Civicdesk-Signature"] != sign(SECRET, timestamp, body):
            return web.Response(status=401)
        return self.answers.pop(0) if self.answers else web.json_response({"ok": True})


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    fake = Receiver()
    app = web.Application()
    app.router.add_post("/in", fake.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield fake, str(server.make_url("/in"))
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


REPLY = OutboundMessage(
    id=17,
    channel="webhook",
    conversation="case-7",
    text="可网上缴纳。",
    public=False,
    recipient="u-1",
    reply_to="evt-42",
)


async def test_a_reply_is_posted_signed_with_an_idempotency_key(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    fake, url = receiver
    hook = adapter(url=url)
    hook.attach_session(session)

    result = await hook.send(REPLY)

    assert result.ok, result.error
    ((headers, body),) = fake.requests
    assert headers[IDEMPOTENCY_HEADER] == "17"
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {
        "id": 17,
        "channel": "webhook",
        "conversation": "case-7",
        "recipient": "u-1",
        "text": "可网上缴纳。",
        "reply_to": "evt-42",
        "public": False,
    }
    # A receiver on the other side verifies it exactly as the webhook adapter verifies requests.
    adapter().verify(RawRequest("POST", "/", {}, headers, body))


@pytest.mark.parametrize(
    ("status", "headers", "retryable", "retry_after"),
    [
        (500, {}, True, None),
        (503, {"Retry-After": "7"}, True, 7.0),
        (429, {"Retry-After": "2"}, True, 2.0),
        (400, {}, False, None),
        (404, {}, False, None),
        (410, {}, False, None),
    ],
)
async def test_failures_are_classified_retryable_or_permanent(
    receiver: tuple[Receiver, str],
    session: aiohttp.ClientSession,
    status: int,
    headers: dict[str, str],
    retryable: bool,
    retry_after: float | None,
) -> None:
    fake, url = receiver
    fake.answers.append(web.Response(status=status, headers=headers, text="nope"))
    hook = adapter(url=url)
    hook.attach_session(session)

    result = await hook.send(REPLY)

    assert not result.ok
    assert result.retryable is retryable
    assert result.retry_after == retry_after
    assert f"HTTP {status}" in (result.error or "")


async def test_a_receiver_that_does_not_answer_in_time_is_retryable(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    fake, url = receiver
    fake.delay = 1.0
    hook = WebhookAdapter("webhook", Secret(SECRET), url, timeout=0.2)
    hook.attach_session(session)

    result = await hook.send(REPLY)

    assert not result.ok and result.retryable
    assert "within 0.2 s" in (result.error or "")


async def test_a_receiver_that_is_down_is_retryable(session: aiohttp.ClientSession) -> None:
    hook = adapter(url="http://127.0.0.1:9/nothing-listens-here")
    hook.attach_session(session)

    result = await hook.send(REPLY)

    assert not result.ok and result.retryable


async def test_without_a_session_a_send_is_retried_later() -> None:
    result = await adapter().send(REPLY)

    assert not result.ok and result.retryable


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412480.0 - 30) == 30
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 2e9) == 0.0
    assert parse_retry_after("999999999") == 3600.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after(None) is None


def test_classify_treats_2xx_as_sent() -> None:
    assert classify(200, {}).ok
    assert classify(204, {}).ok
    assert not classify(301, {}).retryable  # a redirect is not followed: configure the final URL


def test_base64_signatures_match_the_published_line_vector() -> None:
    # LINE signs base64(HMAC-SHA256(channel secret, body)); the helper serves such adapters too.
    # Vector from RFC 4231, test case 2.
    digest = hmac_sha256_base64(b"Jefe", b"what do ya want for nothing?")
    assert digest == "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="

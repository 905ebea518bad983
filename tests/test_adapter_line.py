"""The LINE channel on its own: signatures (the SDK's vector and one over a fixture), the webhook
events a citizen's question arrives in and those skipped, mentions in groups, and replies through
a fake of LINE's API: the reply token within its minute, push after it, retry keys, errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from fake_apis import serve

from adapters.line import LineAdapter, retry_key
from adapters.line_mentions import without_mentions
from bot.config.settings import Secret
from bot.platform.adapter import TEXT_RULES, BadRequest, RawRequest, Unauthorized
from bot.platform.messages import OutboundMessage

FIXTURES = Path(__file__).parent / "fixtures" / "line"
VECTORS = json.loads((FIXTURES / "signature_vectors.json").read_text(encoding="utf-8"))
SECRET = "channel_secret"  # the SDK vector's
ACCESS_TOKEN = "line-access-token-never-shown"
NOW = 1_700_000_000.0
USER = "U206d25c2ea6bd87c17655609a1c37cb8"
GROUP = "Ca56f94637cc4347f90a25382909b24b9"


def sign(body: bytes, secret: str = SECRET) -> str:
    """Written from LINE's description, not with the adapter's helper."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def adapter(now: float = NOW, **kw: Any) -> Any:
    return LineAdapter("line", Secret(SECRET), Secret(ACCESS_TOKEN), clock=lambda: now, **kw)


def request(body: bytes, signature: str | None = None) -> RawRequest:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["x-line-signature"] = signature
    return RawRequest("POST", "/webhooks/line", {}, headers, body)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def webhook(*events: dict[str, Any]) -> bytes:
    return json.dumps({"destination": "U123", "events": list(events)}).encode()


def text_event(
    text: str,
    *,
    source: dict[str, Any] | None = None,
    event_id: str = "01HXYZEVENT",
    mentionees: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {"id": "4711", "type": "text", "text": text, "quoteToken": "qT"}
    if mentionees is not None:
        message["mention"] = {"mentionees": mentionees}
    return {
        "type": "message",
        "mode": "active",
        "timestamp": 1_699_999_999_000,
        "source": source or {"type": "user", "userId": USER},
        "webhookEventId": event_id,
        "deliveryContext": {"isRedelivery": False},
        "replyToken": "rT",
        "message": {**message, **extra},
    }


IN_GROUP = {"type": "group", "groupId": GROUP, "userId": USER}


# --- Signatures ----------------------------------------------------------------------------------


def test_the_published_signature_vectors_verify() -> None:
    for vector in VECTORS["vectors"]:
        body = fixture(vector["body_file"]) if "body_file" in vector else vector["body"].encode()
        hook = LineAdapter("line", Secret(vector["channel_secret"]), Secret(ACCESS_TOKEN))
        hook.verify(request(body, vector["x_line_signature"]))


def test_a_changed_byte_or_another_secret_is_unauthorized() -> None:
    body = fixture("webhook_single_text_message_user.json")
    with pytest.raises(Unauthorized, match="does not match"):
        adapter().verify(request(body.replace(b"Hello", b"Hallo"), sign(body)))
    with pytest.raises(Unauthorized, match="does not match"):
        adapter().verify(request(body, sign(body, "another secret")))
    with pytest.raises(Unauthorized, match="missing X-Line-Signature"):
        adapter().verify(request(body))


def test_the_consoles_verify_request_is_accepted_and_holds_no_message() -> None:
    body = b'{"destination":"Uxxxxxxxxxx","events":[]}'
    raw = request(body, sign(body))

    adapter().verify(raw)

    assert adapter().handshake(raw) is None
    assert adapter().parse(raw) == []
    assert adapter().acknowledge(raw).status == 200


# --- Events ---------------------------------------------------------------------------------


def test_a_text_message_from_a_user_is_a_private_question() -> None:
    (message,) = adapter().parse(request(fixture("webhook_single_text_message_user.json")))

    assert message.channel == "line"
    assert message.platform_id == "testwebhookeventid"
    assert message.conversation == message.sender == USER
    assert message.text == "Hello, world"
    assert message.public is False
    assert message.reply_to is None
    assert json.loads(message.reply_context or "") == {
        "replyToken": "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA",
        "quoteToken": "quoteToken",
        "received": int(NOW * 1000),
        "timestamp": 1462629479859,
    }


def test_group_messages_without_a_mention_of_the_account_are_skipped_by_default() -> None:
    body = fixture("webhook_single_text_message_group.json")
    assert adapter().parse(request(body)) == []
    other = {"index": 0, "length": 5, "type": "user", "userId": "Uother", "isSelf": False}
    assert (
        adapter().parse(
            request(webhook(text_event("@Anna hi", source=IN_GROUP, mentionees=[other])))
        )
        == []
    )


def test_with_group_messages_all_every_group_message_is_a_public_question() -> None:
    body = fixture("webhook_single_text_message_group.json")

    (message,) = adapter(group_messages="all").parse(request(body))

    assert message.public is True
    assert message.conversation == GROUP
    assert message.sender == USER
    assert message.text == "Hello, world"


def test_a_mention_of_the_account_in_a_group_is_a_public_question_without_the_mention() -> None:
    mention = {"index": 0, "length": 11, "type": "user", "isSelf": True}
    body = webhook(text_event("@Court Desk 诉讼费怎么交？", source=IN_GROUP, mentionees=[mention]))

    (message,) = adapter().parse(request(body))

    assert message.public is True
    assert message.conversation == GROUP
    assert message.text == "诉讼费怎么交？"
    assert message.mention is None  # the core writes no "@<user id>": the adapter mentions


def test_mention_offsets_count_utf16_units_and_code_points_are_tried_too() -> None:
    text = "😀 @Desk where do I pay?"  # the emoji is 2 UTF-16 units, 1 code point
    assert without_mentions(text, [(3, 5)]) == "😀 where do I pay?"
    assert without_mentions(text, [(2, 5)]) == "😀 where do I pay?"
    assert without_mentions("no mention here", [(0, 2)]) == "no mention here"
    room = {"type": "room", "roomId": "R1", "userId": USER}
    mentions = [{"index": 3, "length": 5, "isSelf": True}, {"index": 0, "length": 2}]
    (message,) = adapter().parse(
        request(webhook(text_event(text, source=room, mentionees=mentions)))
    )
    assert (message.conversation, message.text) == ("R1", "😀 where do I pay?")


def test_a_redelivery_has_the_same_dedup_key_and_a_quoted_message_is_kept() -> None:
    first = text_event("How do I pay?", quotedMessageId="468789577898262530")
    again = {**first, "deliveryContext": {"isRedelivery": True}}

    (one,) = adapter().parse(request(webhook(first)))
    (two,) = adapter(now=NOW + 600).parse(request(webhook(again)))

    assert one.platform_id == two.platform_id == "01HXYZEVENT"
    assert one.reply_to == "468789577898262530"


@pytest.mark.parametrize(
    "event",
    [
        {"type": "follow", "webhookEventId": "e1", "source": {"type": "user", "userId": USER}},
        {"type": "unsend", "webhookEventId": "e2", "unsend": {"messageId": "1"}},
        {"type": "memberJoined", "webhookEventId": "e4", "source": IN_GROUP},
        {**text_event("x"), "mode": "standby"},
        {"type": "join", "webhookEventId": "e3", "source": IN_GROUP},
    ],
)
def test_other_events_are_skipped_silently(event: dict[str, Any]) -> None:
    assert adapter(group_messages="all").parse(request(webhook(event))) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "one JSON object"),
        (b'{"events": {}}', '"events" list'),
        (b'{"events": [42]}', "JSON object"),
        (webhook({**text_event("x"), "webhookEventId": None}), '"webhookEventId"'),
    ],
)
def test_malformed_bodies_are_bad_requests(body: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        adapter().parse(request(body))


def test_a_bad_group_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="mentions or all"):
        adapter(group_messages="some")


def test_line_text_rules_count_utf16_code_units() -> None:
    # LINE's text-character-count page: 🍎 counts 2; 5000 is the limit of a text message.
    text = "诉讼费 fee 🍎 @张三 https://court.example.gov/fees"
    assert len(text) == 44  # code points
    assert TEXT_RULES["line"].count(text) == 45
    assert TEXT_RULES["line"].limit == 5000


# --- Replies through a fake of LINE's API ---------------------------------------------------


class FakeLine:
    """LINE's reply and push endpoints, answering as documented."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.answers: dict[str, list[web.Response]] = {"reply": [], "push": []}

    async def handle(self, request: web.Request) -> web.Response:
        kind = request.path.rsplit("/", 1)[-1]
        self.calls.append((kind, dict(request.headers), await request.json()))
        if self.answers[kind]:
            return self.answers[kind].pop(0)
        sent = {"sentMessages": [{"id": f"{kind}-{len(self.calls)}", "quoteToken": "q"}]}
        return web.json_response(sent)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeLine, str]]:
    api = FakeLine()
    routes = [("POST", f"/v2/bot/message/{kind}", api.handle) for kind in ("reply", "push")]
    async with serve(routes) as url:
        yield api, url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def connected(url: str, session: aiohttp.ClientSession, now: float = NOW) -> Any:
    hook = LineAdapter(
        "line", Secret(SECRET), Secret(ACCESS_TOKEN), api_base=url, timeout=2.0, clock=lambda: now
    )
    hook.attach_session(session)
    return hook


def reply(*, age: float = 5.0, public: bool = False, context: bool = True, **kw: Any) -> Any:
    stored = {"replyToken": "rT", "quoteToken": "qT", "received": int((NOW - age) * 1000)}
    return OutboundMessage(
        **{
            "id": 17,
            "channel": "line",
            "conversation": GROUP if public else USER,
            "text": "可网上缴纳。",
            "public": public,
            "recipient": USER,
            "reply_context": json.dumps(stored) if context else None,
            **kw,
        }
    )


def error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"message": message}, status=status, headers=headers)


async def test_within_the_minute_the_reply_token_is_used(
    fake: tuple[FakeLine, str], session: aiohttp.ClientSession
) -> None:
    api, url = fake

    result = await connected(url, session).send(reply())

    assert result.ok and result.platform_id == "reply-1"
    ((kind, headers, body),) = api.calls
    assert kind == "reply"
    assert headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert "X-Line-Retry-Key" not in headers  # LINE refuses it on the reply API (400)
    assert body == {"replyToken": "rT", "messages": [{"type": "text", "text": "可网上缴纳。"}]}


async def test_a_public_reply_quotes_the_question_and_mentions_the_asker_for_real(
    fake: tuple[FakeLine, str], session: aiohttp.ClientSession
) -> None:
    api, url = fake

    await connected(url, session).send(reply(public=True))

    (_, _, body), *_ = api.calls
    assert body["messages"] == [
        {
            "type": "textV2",
            "text": "{asker} 可网上缴纳。",
            "substitution": {
                "asker": {"type": "mention", "mentionee": {"type": "user", "userId": USER}}
            },
            "quoteToken": "qT",
        }
    ]


async def test_a_reply_that_cannot_carry_the_mention_is_plain_text(
    fake: tuple[FakeLine, str], session: aiohttp.ClientSession
) -> None:
    api, url = fake
    hook = connected(url, session)
    longest = "诉" * 4992 + "🍎"  # 4994 UTF-16 units: "{asker} " would make it 5002

    await hook.send(reply(public=True, text="see {this}"))  # braces: textV2 placeholders
    await hook.send(reply(public=True, text=longest, id=18))
    await hook.send(reply(public=True, recipient=None, id=19))  # no user to mention
    await hook.send(reply(public=False, text="@Anna stays as it is", id=20))

    assert [body["messages"][0] for _, _, body in api.calls] == [
        {"type": "text", "text": "see {this}", "quoteToken": "qT"},
        {"type": "text", "text": longest, "quoteToken": "qT"},
        {"type": "text", "text": "可网上缴纳。", "quoteToken": "qT"},
        {"type": "text", "text": "@Anna stays as it is"},
    ]


@pytest.mark.parametrize("kw", [{"age": 51.0}, {"context": False}, {"reply_context": "garbage"}])
async def test_after_the_minute_or_without_a_token_the_reply_is_pushed_with_a_retry_key(
    fake: tuple[FakeLine, str], session: aiohttp.ClientSession, kw: dict[str, Any]
) -> None:
    api, url = fake

    result = await connected(url, session).send(reply(**kw))

    assert result.ok and result.platform_id == "push-1"
    ((kind, headers, body),) = api.calls
    assert kind == "push"
    assert headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert uuid.UUID(headers["X-Line-Retry-Key"]).version == 5
    assert body == {"to": USER, "messages": [{"type": "text", "text": "可网上缴纳。"}]}


async def test_an_invalid_reply_token_falls_back_to_push(
    fake: tuple[FakeLine, str], session: aiohttp.ClientSession
) -> None:
    api, url = fake
    api.answers["reply"].append(error(400, "Invalid reply token"))

    result = await connected(url, session).send(reply(public=True))

    assert result.ok
    assert [(kind, body.get("to")) for kind, _, body in api.calls] == [
        ("reply", None),
        ("push", GROUP),
    ]


def test_the_retry_key_is_the_same_for_every_attempt_of_one_reply_only() -> None:
    first = reply(attempt=1)
    assert retry_key(first) == retry_key(reply(attempt=3))
    assert retry_key(first) != retry_key(reply(id=18))
    assert retry_key(first) != retry_key(reply(text="another answer"))


async def test_a_push_whose_retry_key_was_accepted_before_counts_as_sent(
    fake: tuple[FakeLine, str], session: aiohttp.ClientSession
) -> None:
    api, url = fake
    api.answers["push"].append(
        error(409, "The retry key is already accepted", **{"X-Line-Accepted-Request-Id": "req-1"})
    )

    result = await connected(url, session).send(reply(context=False, attempt=2))

    assert result.ok and result.platform_id == "req-1"


@pytest.mark.parametrize(
    ("answer", "retryable", "retry_after", "reason"),
    [
        (error(429, "Too Many Requests", **{"Retry-After": "3"}), True, 3.0, "HTTP 429"),
        (error(429, "You have reached your monthly limit."), False, None, "monthly"),
        (error(500, "Internal Server Error"), True, None, "HTTP 500"),
        (error(401, "Authentication failed"), False, None, "CHANNEL_ACCESS_TOKEN"),
        (error(400, "The request body has 1 error(s)"), False, None, "HTTP 400"),
        (error(403, "Access to this API is not available"), False, None, "HTTP 403"),
    ],
)
async def test_push_failures_are_classified(
    fake: tuple[FakeLine, str],
    session: aiohttp.ClientSession,
    answer: web.Response,
    retryable: bool,
    retry_after: float | None,
    reason: str,
) -> None:
    api, url = fake
    api.answers["push"].append(answer)

    result = await connected(url, session).send(reply(context=False))

    assert not result.ok
    assert (result.retryable, result.retry_after) == (retryable, retry_after)
    assert reason in (result.error or "")


async def test_another_reply_error_is_not_pushed_twice(
    fake: tuple[FakeLine, str], session: aiohttp.ClientSession
) -> None:
    api, url = fake
    api.answers["reply"].append(error(400, "The property, 'messages[0].text', is too long"))

    result = await connected(url, session).send(reply())

    assert not result.ok and not result.retryable
    assert [kind for kind, _, _ in api.calls] == ["reply"]


async def test_the_access_token_never_shows_in_errors_or_logs(
    fake: tuple[FakeLine, str],
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, url = fake
    api.answers["reply"].append(error(400, "Invalid reply token"))
    api.answers["push"].append(error(500, f"token {ACCESS_TOKEN} broke"))
    caplog.set_level(logging.DEBUG)

    result = await connected(url, session).send(reply())

    assert not result.ok and result.retryable
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("civicdesk"))
    assert "reply token refused" in ours
    assert ACCESS_TOKEN not in (result.error or "") and ACCESS_TOKEN not in ours


async def test_an_unreachable_api_or_no_session_is_retryable(
    session: aiohttp.ClientSession,
) -> None:
    down = await connected("http://127.0.0.1:9", session).send(reply())
    unattached = await adapter().send(reply())

    assert not down.ok and down.retryable
    assert not unattached.ok and unattached.retryable


# --- Issue 12: media and the mentions left in the text ---------------------------------------


def media_event(message: dict[str, Any], source: dict[str, Any] | None = None) -> dict[str, Any]:
    """A message event whose `message` is shaped as the Messaging API reference's examples."""
    event = text_event("", source=source)
    event["message"] = message
    return event


@pytest.mark.parametrize(
    ("message", "media"),
    [
        ({"id": "1", "type": "image", "contentProvider": {"type": "line"}}, "image"),
        (
            {"id": "2", "type": "video", "duration": 60000, "contentProvider": {"type": "line"}},
            "video",
        ),
        (
            {"id": "3", "type": "audio", "duration": 60000, "contentProvider": {"type": "line"}},
            "audio",
        ),
        ({"id": "4", "type": "file", "fileName": "file.txt", "fileSize": 2138}, "file"),
        (
            {
                "id": "5",
                "type": "location",
                "title": "my location",
                "address": "1-3 Kioicho, Chiyoda-ku, Tokyo",
                "latitude": 35.67966,
                "longitude": 139.73669,
            },
            "location",
        ),
        (
            {
                "id": "6",
                "type": "sticker",
                "packageId": "1",
                "stickerId": "1",
                "stickerResourceType": "STATIC",
                "keywords": ["Hello", "Hi"],
            },
            "sticker",
        ),
        ({"id": "7", "type": "some_future_kind"}, "unsupported"),
    ],
)
def test_media_in_a_one_to_one_chat_are_messages_with_their_kind(
    message: dict[str, Any], media: str
) -> None:
    (found,) = adapter().parse(request(webhook(media_event(message))))
    assert (found.text, found.media, found.public) == ("", media, False)
    assert found.reply_context is not None and "rT" in found.reply_context  # answerable
    # In a group, media cannot mention the account: skipped unless every message is served.
    assert adapter().parse(request(webhook(media_event(message, IN_GROUP)))) == []
    (grouped,) = adapter(group_messages="all").parse(
        request(webhook(media_event(message, IN_GROUP)))
    )
    assert grouped.media == media


def test_at_all_is_taken_out_of_the_question() -> None:
    # The line-bot-sdk's "@All Good Morning!!" recording: a mentionee of type "all".
    event = text_event(
        "@All Good Morning!!",
        source=IN_GROUP,
        mentionees=[{"index": 0, "length": 4, "type": "all"}],
    )
    (message,) = adapter(group_messages="all").parse(request(webhook(event)))
    assert message.text == "Good Morning!!"


def test_the_accounts_mention_in_the_middle_is_taken_out() -> None:
    event = text_event(
        "请问 @政务助手 诉讼费怎么交",
        source=IN_GROUP,
        mentionees=[{"index": 3, "length": 5, "type": "user", "isSelf": True}],
    )
    (message,) = adapter().parse(request(webhook(event)))
    assert message.text == "请问 诉讼费怎么交"

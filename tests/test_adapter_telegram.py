"""The Telegram adapter: the secret_token header, updates as Telegram sends them (fixtures from
opsdroid's tests, and variants of them for groups), replies through a fake Bot API, and the
channel served by the real app."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_telegram_slack import Answer, FakeApi, fake_api, settled, telegram_ok
from web_support import SMALL_KB, count_rows, served_app

from adapters import ADAPTERS
from adapters.telegram import SECRET_HEADER, TelegramAdapter
from bot.config.settings import ConfigError, Secret, read_channels
from bot.platform.adapter import BadRequest, RawRequest, Unauthorized
from bot.platform.messages import OutboundMessage

FIXTURES = Path(__file__).parent / "fixtures" / "telegram"
TOKEN = "123456789:AAE-fake_token_for_tests_only"
SECRET_TOKEN = "s3cret-token_for-setWebhook"
BOT_ID = "123456789"
USERNAME = "civicdesk_bot"

Client = TestClient[web.Request, web.Application]


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def adapter(username: str | None = USERNAME, api_base: str = "http://127.0.0.1:1") -> Any:
    return TelegramAdapter(
        "telegram", Secret(TOKEN), Secret(SECRET_TOKEN), username=username, api_base=api_base
    )


def request(update: dict[str, Any] | bytes, **headers: str) -> RawRequest:
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    return RawRequest("POST", "/webhooks/telegram", {}, headers, body)


def delivery(update: dict[str, Any]) -> RawRequest:
    return request(update, **{SECRET_HEADER: SECRET_TOKEN, "Content-Type": "application/json"})


def group_update(
    text: str, entities: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    update = fixture("update_message_supergroup.json")
    update["message"]["text"] = text
    if entities is not None:
        update["message"]["entities"] = entities
    update["message"].update(extra)
    return update


def mention(text: str, offset: int = 0, kind: str = "mention") -> dict[str, Any]:
    return {"type": kind, "offset": offset, "length": len(text)}


# --- verify -----------------------------------------------------------------------------------


def test_the_secret_token_header_is_the_proof() -> None:
    update = fixture("update_message_private_reply_to.json")
    adapter().verify(request(update, **{SECRET_HEADER: SECRET_TOKEN}))
    # Header names are case-insensitive.
    adapter().verify(request(update, **{SECRET_HEADER.lower(): SECRET_TOKEN}))


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing X-Telegram-Bot-Api-Secret-Token"),
        ({SECRET_HEADER: ""}, "missing X-Telegram-Bot-Api-Secret-Token"),
        ({SECRET_HEADER: SECRET_TOKEN[:-1] + "X"}, "does not match"),
        ({SECRET_HEADER: SECRET_TOKEN + "x"}, "does not match"),
        ({"X-Telegram-Bot-Api-Secret": SECRET_TOKEN}, "missing"),
    ],
)
def test_a_missing_or_wrong_secret_token_is_unauthorized(
    headers: dict[str, str], reason: str
) -> None:
    with pytest.raises(Unauthorized, match=reason):
        adapter().verify(request(fixture("update_message_supergroup.json"), **headers))


def test_telegram_sends_no_handshake() -> None:
    assert adapter().handshake(RawRequest("GET", "/webhooks/telegram", {}, {}, b"")) is None


# --- parse ------------------------------------------------------------------------------------


def test_a_private_message_replying_to_another_is_private_with_ids_as_strings() -> None:
    (message,) = adapter().parse(delivery(fixture("update_message_private_reply_to.json")))

    assert message.platform_id == "639348:1272"
    assert message.conversation == "639348"
    assert message.sender == "639348"
    assert message.sender_name == "Fabio Rosado"
    assert message.text == "This is a reply"
    assert message.public is False
    assert message.reply_to == "639348:1271"
    assert message.lang_hint == "en"
    assert json.loads(message.reply_context or "") == {"message_id": 1272}


def test_group_chatter_not_addressed_to_the_bot_is_left_alone() -> None:
    assert adapter().parse(delivery(fixture("update_message_supergroup.json"))) == []


def test_a_mention_in_a_group_is_public_and_keeps_the_question() -> None:
    text = "@civicdesk_bot How do I pay the court fee?"
    update = group_update(text, [mention("@civicdesk_bot")])

    (message,) = adapter().parse(delivery(update))

    assert message.public is True
    assert message.conversation == "-10014170000"
    assert message.platform_id == "-10014170000:31"
    assert message.sender == "100000"
    assert message.sender_name == "Fabio"
    assert message.text == "How do I pay the court fee?"
    assert message.reply_to is None
    assert json.loads(message.reply_context or "") == {"message_id": 31}
    # The answer quotes the question instead of naming the asker: "@Fabio" is no mention on
    # Telegram (an @ takes a username, and may be someone else's).
    assert message.mention is None


def test_mention_offsets_count_utf16_code_units() -> None:
    # The emoji is two UTF-16 code units: the mention starts at 3, not at 2.
    text = "😀 @CivicDesk_Bot 诉讼费怎么交？"
    update = group_update(text, [{"type": "mention", "offset": 3, "length": 14}])

    (message,) = adapter().parse(delivery(update))

    assert message.text == "😀 诉讼费怎么交？"


def test_a_mention_of_another_account_is_not_for_the_bot() -> None:
    update = group_update("@someone_else hi", [mention("@someone_else")])
    assert adapter().parse(delivery(update)) == []


def test_without_a_username_mentions_are_not_recognised_but_replies_are() -> None:
    mentioned = group_update("@civicdesk_bot hi", [mention("@civicdesk_bot")])
    bot_message = {"message_id": 30, "from": {"id": int(BOT_ID), "is_bot": True}, "text": "..."}
    replying = group_update("and the fee?", reply_to_message=bot_message)

    assert adapter(username=None).parse(delivery(mentioned)) == []
    (message,) = adapter(username=None).parse(delivery(replying))
    assert message.public is True
    assert message.reply_to == "-10014170000:30"


def test_a_text_mention_of_the_bot_counts() -> None:
    entity = {"type": "text_mention", "offset": 0, "length": 4, "user": {"id": int(BOT_ID)}}
    (message,) = adapter(username=None).parse(delivery(group_update("Desk, hi", [entity])))
    assert message.public is True


def test_commands_start_is_a_greeting_and_commands_for_other_bots_are_skipped() -> None:
    private = fixture("update_message_private_reply_to.json")
    del private["message"]["reply_to_message"]
    private["message"]["text"] = "/start"
    private["message"]["entities"] = [mention("/start", kind="bot_command")]
    addressed = group_update(
        "/help@civicdesk_bot 诉讼费", [mention("/help@civicdesk_bot", kind="bot_command")]
    )
    elsewhere = group_update("/help@other_bot", [mention("/help@other_bot", kind="bot_command")])
    bare = group_update("/help", [mention("/help", kind="bot_command")])

    (start,) = adapter().parse(delivery(private))
    (help_,) = adapter().parse(delivery(addressed))

    assert start.text == ""
    assert start.public is False
    assert help_.text == "诉讼费"
    assert adapter().parse(delivery(elsewhere)) == []
    assert adapter().parse(delivery(bare)) == []


def _from_bot() -> dict[str, Any]:
    update = fixture("update_message_private_reply_to.json")
    update["message"]["from"]["is_bot"] = True
    return update


def _from_itself() -> dict[str, Any]:
    return group_update(
        "@civicdesk_bot echo", [mention("@civicdesk_bot")], **{"from": {"id": int(BOT_ID)}}
    )


def _sticker() -> dict[str, Any]:
    # In a group, not addressed to the bot (a private sticker is a message: see the media tests).
    update = fixture("update_message_supergroup.json")
    del update["message"]["text"]
    update["message"]["sticker"] = {"file_id": "x", "width": 512, "height": 512}
    return update


def _joined() -> dict[str, Any]:
    update = fixture("update_message_supergroup.json")
    del update["message"]["text"]
    update["message"]["new_chat_members"] = [{"id": int(BOT_ID), "is_bot": True}]
    return update


def _automatic_forward() -> dict[str, Any]:
    return group_update(
        "@civicdesk_bot news", [mention("@civicdesk_bot")], is_automatic_forward=True
    )


def _callback() -> dict[str, Any]:
    return {"update_id": 5, "callback_query": {"id": "1", "from": {"id": 1}, "data": "x"}}


@pytest.mark.parametrize(
    "update",
    [
        fixture("update_edited_message.json"),
        fixture("update_channel_post.json"),
        _from_bot(),
        _from_itself(),
        _sticker(),
        _joined(),
        _automatic_forward(),
        _callback(),
    ],
    ids=[
        "edited",
        "channel-post",
        "bot",
        "itself",
        "sticker",
        "join",
        "automatic-forward",
        "callback",
    ],
)
def test_what_is_not_a_citizen_s_text_is_skipped_without_error(update: dict[str, Any]) -> None:
    assert adapter().parse(delivery(update)) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "one JSON object"),
        (b'{"message": {"text": "hi"}}', "update_id"),
        (b'{"update_id": 1, "message": {"message_id": 2, "text": "hi"}}', "chat"),
        (b'{"update_id": 1, "message": "hi"}', "must be an object"),
        (
            b'{"update_id": 1, "message": {"message_id": 2, "chat": {"id": 3, "type": "private"},'
            b' "from": {"first_name": "A"}, "text": "hi"}}',
            "from.id",
        ),
    ],
)
def test_malformed_updates_are_bad_requests(body: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        adapter().parse(request(body))


def test_the_acknowledgement_is_an_empty_200() -> None:
    reply = adapter().acknowledge(delivery(fixture("update_message_supergroup.json")))
    assert (reply.status, reply.body) == (200, b"")


# --- configuration ------------------------------------------------------------------------------


def _environ(**extra: str) -> dict[str, str]:
    return {
        "CIVICDESK_TELEGRAM_TOKEN": TOKEN,
        "CIVICDESK_TELEGRAM_SECRET_TOKEN": SECRET_TOKEN,
        **extra,
    }


def test_the_channel_is_built_from_its_settings() -> None:
    (config,) = read_channels(
        _environ(CIVICDESK_TELEGRAM_BOT_USERNAME="@CivicDesk_Bot"), ["telegram"], ADAPTERS
    )
    built = ADAPTERS["telegram"].build(config)

    assert isinstance(built, TelegramAdapter)
    assert built.username == "CivicDesk_Bot"
    assert built.bot_id == BOT_ID
    assert built.api_base == "https://api.telegram.org"
    assert TOKEN not in repr(config)
    assert SECRET_TOKEN not in repr(config)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"CIVICDESK_TELEGRAM_SECRET_TOKEN": SECRET_TOKEN}, "CIVICDESK_TELEGRAM_TOKEN"),
        ({"CIVICDESK_TELEGRAM_TOKEN": TOKEN}, "CIVICDESK_TELEGRAM_SECRET_TOKEN"),
        (_environ(CIVICDESK_TELEGRAM_TOKEN="not-a-token"), "CIVICDESK_TELEGRAM_TOKEN"),
        (_environ(CIVICDESK_TELEGRAM_SECRET_TOKEN="has space"), "CIVICDESK_TELEGRAM_SECRET"),
        (_environ(CIVICDESK_TELEGRAM_BOT_USERNAME="a b"), "CIVICDESK_TELEGRAM_BOT_USERNAME"),
    ],
)
def test_missing_or_malformed_settings_name_the_variable(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable) as caught:
        read_channels(environ, ["telegram"], ADAPTERS)
    assert "has space" not in str(caught.value)  # secret values are never shown


def test_the_text_limit_is_4096_characters() -> None:
    rules = adapter().text_rules
    mixed = "诉讼费 court fee https://court.example.gov/fees 😀 @someone "
    text = (mixed * 100)[:4096]
    assert rules.limit == 4096
    assert rules.count(text) == 4096
    assert rules.count(text + "x") > rules.limit


# --- send -------------------------------------------------------------------------------------


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeApi]:
    async with fake_api(telegram_ok) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def outbound(public: bool, **extra: Any) -> OutboundMessage:
    base: dict[str, Any] = {
        "id": 7,
        "channel": "telegram",
        "conversation": "-10014170000" if public else "639348",
        "text": "Pay online or at the litigation service centre.",
        "public": public,
        "reply_to": "-10014170000:31" if public else "639348:1272",
        "reply_context": '{"message_id":31}' if public else '{"message_id":1272}',
    }
    return OutboundMessage(**{**base, **extra})


def connected(fake: FakeApi, session: aiohttp.ClientSession) -> Any:
    built = adapter(api_base=fake.url)
    built.attach_session(session)
    return built


async def test_a_private_reply_goes_to_the_chat_quoting_the_question(
    telegram_api: FakeApi, session: aiohttp.ClientSession
) -> None:
    # Quoted in private chats too: an answer from staff may come days after the question.
    result = await connected(telegram_api, session).send(outbound(public=False))

    (call,) = telegram_api.calls
    assert call.path == f"/bot{TOKEN}/sendMessage"
    assert call.headers["Content-Type"].startswith("application/json")
    assert call.body == {
        "chat_id": 639348,
        "text": "Pay online or at the litigation service centre.",
        "reply_parameters": {"message_id": 1272, "allow_sending_without_reply": True},
    }
    assert result.ok
    assert result.platform_id == "639348:9001"


async def test_a_public_reply_quotes_the_question_in_the_group(
    telegram_api: FakeApi, session: aiohttp.ClientSession
) -> None:
    result = await connected(telegram_api, session).send(outbound(public=True))

    (call,) = telegram_api.calls
    assert call.body["chat_id"] == -10014170000
    assert call.body["reply_parameters"] == {"message_id": 31, "allow_sending_without_reply": True}
    assert result.platform_id == "-10014170000:9001"


async def test_the_reply_text_is_sent_as_written(
    telegram_api: FakeApi, session: aiohttp.ClientSession
) -> None:
    # Nothing is taken off or put before the text: the quote of the question says whom a
    # public answer is for.
    for public in (True, False):
        await connected(telegram_api, session).send(outbound(public=public, text="@Fabio hi"))

    assert [call.body["text"] for call in telegram_api.calls] == ["@Fabio hi", "@Fabio hi"]


async def test_a_reply_in_a_forum_topic_stays_in_the_topic(
    telegram_api: FakeApi, session: aiohttp.ClientSession
) -> None:
    msg = outbound(public=True, reply_context='{"message_id":31,"thread_id":4}')
    await connected(telegram_api, session).send(msg)
    assert telegram_api.calls[0].body["message_thread_id"] == 4


async def test_without_reply_context_the_question_id_comes_from_reply_to(
    telegram_api: FakeApi, session: aiohttp.ClientSession
) -> None:
    await connected(telegram_api, session).send(outbound(public=True, reply_context=None))
    assert telegram_api.calls[0].body["reply_parameters"]["message_id"] == 31


def _error(status: int, description: str, **parameters: Any) -> Answer:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Answer(status, body)


@pytest.mark.parametrize(
    ("answer", "retryable", "retry_after", "says"),
    [
        (_error(429, "Too Many Requests: retry after 7", retry_after=7), True, 7.0, "retry after"),
        (_error(500, "Internal Server Error"), True, None, "HTTP 500"),
        (Answer(502, {"ok": False}), True, None, "HTTP 502"),
        (_error(403, "Forbidden: bot was blocked by the user"), False, None, "blocked"),
        (_error(400, "Bad Request: chat not found"), False, None, "chat not found"),
        (_error(400, "Bad Request: message is too long"), False, None, "too long"),
        (_error(401, "Unauthorized"), False, None, "TOKEN"),
    ],
)
async def test_failures_are_classified(
    telegram_api: FakeApi,
    session: aiohttp.ClientSession,
    answer: Answer,
    retryable: bool,
    retry_after: float | None,
    says: str,
) -> None:
    telegram_api.scripted.append(answer)

    result = await connected(telegram_api, session).send(outbound(public=False))

    assert not result.ok
    assert result.retryable is retryable
    assert result.retry_after == retry_after
    assert says in (result.error or "")
    assert TOKEN not in (result.error or "")


async def test_a_group_that_became_a_supergroup_is_answered_at_its_new_id(
    telegram_api: FakeApi, session: aiohttp.ClientSession
) -> None:
    telegram_api.scripted.append(
        _error(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            migrate_to_chat_id=-100777,
        )
    )

    result = await connected(telegram_api, session).send(outbound(public=True))

    first, second = telegram_api.calls
    assert first.body["chat_id"] == -10014170000
    assert second.body["chat_id"] == -100777
    assert "reply_parameters" not in second.body
    assert result.ok
    assert result.platform_id == "-100777:9002"


async def test_the_token_in_the_url_never_reaches_errors_or_logs(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with fake_api(telegram_ok) as fake:
        url = fake.url
    built = adapter(api_base=url)  # the server is gone: connection refused
    built.attach_session(session)

    result = await built.send(outbound(public=False))

    assert not result.ok
    assert result.retryable
    assert TOKEN not in (result.error or "")
    assert TOKEN.split(":")[1] not in caplog.text


async def test_without_a_session_the_send_is_retried_later() -> None:
    result = await adapter().send(outbound(public=False))
    assert not result.ok
    assert result.retryable


# --- through the real app ---------------------------------------------------------------------


@pytest.fixture
async def served(
    aiohttp_client: Any, telegram_api: FakeApi, tmp_path: Path
) -> tuple[Client, FakeApi, Path]:
    database = tmp_path / "d.db"
    environ = {
        "CIVICDESK_CHANNELS": "telegram",
        "CIVICDESK_TELEGRAM_TOKEN": TOKEN,
        "CIVICDESK_TELEGRAM_SECRET_TOKEN": SECRET_TOKEN,
        "CIVICDESK_TELEGRAM_BOT_USERNAME": USERNAME,
        "CIVICDESK_TELEGRAM_API_BASE": telegram_api.url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
    }
    app, _, _ = await served_app(environ, SMALL_KB)
    client: Client = await aiohttp_client(app)
    return client, telegram_api, database


def _post_headers(secret: str = SECRET_TOKEN) -> dict[str, str]:
    return {SECRET_HEADER: secret, "Content-Type": "application/json"}


async def test_a_group_mention_is_stored_and_answered_in_the_group(
    served: tuple[Client, FakeApi, Path],
) -> None:
    client, fake, database = served
    text = "@civicdesk_bot How do I pay the court fee?"
    update = group_update(text, [mention("@civicdesk_bot")])

    response = await client.post("/webhooks/telegram", json=update, headers=_post_headers())

    assert response.status == 200
    (call,) = await fake.wait_for(1)
    assert call.path == f"/bot{TOKEN}/sendMessage"
    assert call.body["chat_id"] == -10014170000
    assert call.body["reply_parameters"]["message_id"] == 31
    # The quote says whom the answer is for: no "@Fabio" in front.
    assert call.body["text"].startswith("Pay online or at the litigation service centre.")
    assert count_rows(database, "inbox") == 1


async def test_a_forged_update_gets_401_and_nothing_is_stored(
    served: tuple[Client, FakeApi, Path],
) -> None:
    client, fake, database = served
    update = fixture("update_message_private_reply_to.json")

    forged = await client.post("/webhooks/telegram", json=update, headers=_post_headers("guess"))
    unsigned = await client.post("/webhooks/telegram", json=update)

    assert forged.status == 401
    assert "does not match" in (await forged.json())["error"]
    assert unsigned.status == 401
    assert count_rows(database, "inbox") == 0
    assert fake.calls == []


async def test_a_redelivered_update_is_answered_once(
    served: tuple[Client, FakeApi, Path],
) -> None:
    client, fake, database = served
    update = fixture("update_message_private_reply_to.json")
    update["message"]["text"] = "How do I pay the court fee?"
    again = copy.deepcopy(update)

    first, second = await asyncio.gather(
        client.post("/webhooks/telegram", json=update, headers=_post_headers()),
        client.post("/webhooks/telegram", json=again, headers=_post_headers()),
    )
    third = await client.post("/webhooks/telegram", json=update, headers=_post_headers())

    assert [first.status, second.status, third.status] == [200, 200, 200]
    (call,) = await fake.wait_for(1)
    assert call.body["chat_id"] == 639348
    assert call.body["reply_parameters"]["message_id"] == 1272
    await settled(database)
    assert len(fake.calls) == 1
    assert count_rows(database, "inbox") == 1


# --- Issue 12: captions, media, mentions anywhere ---------------------------------------------


def private_update(**content: Any) -> dict[str, Any]:
    """The private-chat fixture (opsdroid's recording) with its text replaced by `content`."""
    update = fixture("update_message_private_reply_to.json")
    del update["message"]["text"]
    update["message"].update(content)
    return update


PHOTO = [
    {"file_id": "AgAD1", "file_unique_id": "A1", "width": 90, "height": 67, "file_size": 1254},
    {"file_id": "AgAD2", "file_unique_id": "A2", "width": 320, "height": 240, "file_size": 15237},
]


@pytest.mark.parametrize(
    ("content", "media"),
    [
        ({"photo": PHOTO}, "image"),
        ({"document": {"file_id": "BQAD", "file_unique_id": "B", "file_name": "fee.pdf"}}, "file"),
        ({"video": {"file_id": "BAAD", "file_unique_id": "V", "duration": 3}}, "video"),
        ({"voice": {"file_id": "AwAD", "file_unique_id": "W", "duration": 2}}, "audio"),
        ({"sticker": {"file_id": "CAAD", "width": 512, "height": 512, "emoji": "😂"}}, "sticker"),
        ({"location": {"latitude": 52.52, "longitude": 13.40}}, "location"),
        ({"contact": {"phone_number": "+4930123", "first_name": "Ann"}}, "contact"),
        ({"poll": {"id": "1", "question": "?", "options": []}}, "unsupported"),
        ({"some_future_content": {"x": 1}}, "unsupported"),
    ],
)
def test_media_without_text_in_a_private_chat_is_a_message_with_its_kind(
    content: dict[str, Any], media: str
) -> None:
    (message,) = adapter().parse(delivery(private_update(**content)))
    assert (message.text, message.media, message.public) == ("", media, False)


@pytest.mark.parametrize("kind", ["photo", "document"])
def test_a_captioned_photo_or_document_has_the_caption_as_its_question(kind: str) -> None:
    content: dict[str, Any] = (
        {"photo": PHOTO}
        if kind == "photo"
        else {"document": {"file_id": "BQAD", "file_unique_id": "B", "file_name": "bill.pdf"}}
    )
    update = private_update(caption="这个怎么交", **content)
    (message,) = adapter().parse(delivery(update))
    assert message.text == "这个怎么交"
    assert message.media == ("image" if kind == "photo" else "file")


def test_a_captioned_photo_in_a_group_is_taken_when_its_caption_mentions_the_bot() -> None:
    update = group_update("x")
    del update["message"]["text"]
    update["message"]["photo"] = PHOTO
    update["message"]["caption"] = "@civicdesk_bot 这个怎么交"
    update["message"]["caption_entities"] = [mention("@civicdesk_bot")]
    (message,) = adapter().parse(delivery(update))
    assert (message.text, message.media, message.public) == ("这个怎么交", "image", True)


def test_the_bots_mentions_are_taken_out_wherever_they_stand() -> None:
    text = "请问 Desk 诉讼费怎么交 @civicdesk_bot"
    entities = [
        {"type": "text_mention", "offset": 3, "length": 4, "user": {"id": int(BOT_ID)}},
        mention("@civicdesk_bot", offset=15),
    ]
    (message,) = adapter().parse(delivery(group_update(text, entities)))
    assert message.text == "请问 诉讼费怎么交"

"""The Slack adapter: v0 request signatures (the vector from python-slack-sdk), the signed
url_verification handshake, events as bolt-python's tests carry them, replies through a fake Web
API, and the channel served by the real app."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_telegram_slack import Answer, FakeApi, fake_api, settled, slack_ok
from web_support import SMALL_KB, count_rows, served_app

from adapters import ADAPTERS
from adapters.slack import SlackAdapter, sign
from bot.config.settings import ConfigError, Secret, read_channels
from bot.platform.adapter import BadRequest, RawRequest, Unauthorized
from bot.platform.messages import OutboundMessage

FIXTURES = Path(__file__).parent / "fixtures" / "slack"
VECTOR: dict[str, Any] = json.loads((FIXTURES / "signature_vector.json").read_text("utf-8"))
SECRET = VECTOR["signing_secret"]
NOW = float(VECTOR["mock_now"])
BOT_TOKEN = "xoxb-1111-2222-fakeTokenForTests"

Client = TestClient[web.Request, web.Application]


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def adapter(now: float = NOW, api_base: str = "http://127.0.0.1:1/api") -> Any:
    return SlackAdapter(
        "slack", Secret(SECRET), Secret(BOT_TOKEN), api_base=api_base, clock=lambda: now
    )


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Written from Slack's documentation, not with the adapter's code."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed(data: dict[str, Any] | bytes, at: float = NOW, secret: str = SECRET) -> RawRequest:
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    timestamp = str(int(at))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(secret, timestamp, body),
    }
    return RawRequest("POST", "/webhooks/slack", {}, headers, body)


def unsigned(data: dict[str, Any]) -> RawRequest:
    return RawRequest("POST", "/webhooks/slack", {}, {}, json.dumps(data).encode())


# --- signatures ---------------------------------------------------------------------------------


def vector_request(body: bytes | None = None, /, **headers: str) -> RawRequest:
    raw_body = VECTOR["body"].encode() if body is None else body
    return RawRequest("POST", "/webhooks/slack", {}, {**VECTOR["headers"], **headers}, raw_body)


def test_the_signature_matches_slacks_own_vector() -> None:
    timestamp = VECTOR["headers"]["X-Slack-Request-Timestamp"]
    assert sign(SECRET, timestamp, VECTOR["body"].encode()) == VECTOR["expected_signature"]
    adapter().verify(vector_request())
    adapter(now=NOW + 300).verify(vector_request())  # the edge of the window still passes


def _changed_byte() -> RawRequest:
    body = bytearray(VECTOR["body"].encode())
    body[10] ^= 0x01
    return vector_request(bytes(body))


@pytest.mark.parametrize(
    ("raw", "now", "reason"),
    [
        (_changed_byte(), NOW, "does not match"),
        (vector_request(**{"X-Slack-Signature": "v0=" + "0" * 64}), NOW, "does not match"),
        (vector_request(), NOW + 301, "away from the server's clock"),
        (vector_request(), NOW - 301, "away from the server's clock"),
        (vector_request(**{"X-Slack-Signature": ""}), NOW, "missing X-Slack-Signature"),
        (vector_request(**{"X-Slack-Request-Timestamp": ""}), NOW, "missing X-Slack-Request"),
        (vector_request(**{"X-Slack-Request-Timestamp": "soon"}), NOW, "unix time"),
    ],
)
def test_forged_stale_or_unsigned_requests_are_unauthorized(
    raw: RawRequest, now: float, reason: str
) -> None:
    with pytest.raises(Unauthorized, match=reason):
        adapter(now=now).verify(raw)


def test_a_signature_with_another_secret_fails() -> None:
    with pytest.raises(Unauthorized, match="Signing Secret"):
        adapter().verify(signed(fixture("event_callback_app_mention.json"), secret="other"))


# --- url_verification ---------------------------------------------------------------------------


def test_a_signed_url_verification_echoes_the_challenge() -> None:
    reply = adapter().handshake(signed(fixture("url_verification.json")))

    assert reply is not None
    assert reply.status == 200
    assert reply.content_type == "application/json"
    assert json.loads(reply.body) == {
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    }


def test_an_unsigned_or_stale_url_verification_is_refused() -> None:
    data = fixture("url_verification.json")

    for raw, now, reason in (
        (unsigned(data), NOW, "missing X-Slack-Request-Timestamp"),
        (signed(data), NOW + 3600, "away from the server's clock"),
    ):
        with pytest.raises(Unauthorized, match=reason) as refused:
            adapter(now=now).handshake(raw)
        assert refused.value.status == 401


def test_other_requests_are_no_handshake() -> None:
    assert adapter().handshake(signed(fixture("event_callback_app_mention.json"))) is None
    assert adapter().handshake(RawRequest("GET", "/webhooks/slack", {}, {}, b"")) is None
    assert adapter().handshake(signed(b"url_verification, but not JSON")) is None


# --- parse ------------------------------------------------------------------------------------


def test_an_app_mention_is_public_and_answered_in_a_thread_on_it() -> None:
    (message,) = adapter().parse(signed(fixture("event_callback_app_mention.json")))

    assert message.platform_id == "Ev111"
    assert message.conversation == "C111"
    assert message.sender == "W222"
    assert message.text == "Hi there!"  # the app's own mention <@W111> taken out
    assert message.public is True
    assert message.mention == "<@W222>"  # a public reply starts with a real mention of the asker
    assert message.reply_to is None
    assert json.loads(message.reply_context or "") == {"thread_ts": "1595926230.009600"}


def test_an_app_mention_inside_a_thread_is_answered_in_that_thread() -> None:
    data = fixture("event_callback_app_mention.json")
    data["event"]["thread_ts"] = "1595926000.000100"
    data["event"]["text"] = "<@W111> what about &lt;refunds&gt; &amp; fees? cc <@W333>"

    (message,) = adapter().parse(signed(data))

    assert message.reply_to == "C111:1595926000.000100"
    assert json.loads(message.reply_context or "") == {"thread_ts": "1595926000.000100"}
    assert message.text == "what about <refunds> & fees? cc <@W333>"


def test_a_direct_message_in_a_thread_is_private_and_stays_in_the_thread() -> None:
    (message,) = adapter().parse(signed(fixture("event_callback_message_im_thread_reply.json")))

    assert message.public is False
    assert message.conversation == "D111"
    assert message.sender == "W222"
    assert message.text == "When Slack was released?"
    assert message.reply_to == "D111:1726133698.626339"
    assert json.loads(message.reply_context or "") == {"thread_ts": "1726133698.626339"}
    assert message.mention is None  # private replies address nobody


def test_a_plain_direct_message_is_answered_in_the_dm() -> None:
    data = fixture("event_callback_message_im_thread_reply.json")
    del data["event"]["thread_ts"], data["event"]["parent_user_id"]

    (message,) = adapter().parse(signed(data))

    assert message.public is False
    assert message.reply_to is None
    assert message.reply_context is None


def _event(name: str, **changes: Any) -> dict[str, Any]:
    data = fixture(name)
    data["event"].update(changes)
    return data


@pytest.mark.parametrize(
    "data",
    [
        # Channel messages: a mention of the app arrives as app_mention as well.
        fixture("event_callback_message_channel.json"),
        fixture("event_callback_message_channel_thread_reply.json"),
        _event("event_callback_message_channel_thread_reply.json", subtype="thread_broadcast"),
        _event("event_callback_app_mention.json", bot_id="B999"),
        _event("event_callback_app_mention.json", user="W111"),  # the app itself
        _event("event_callback_message_im_thread_reply.json", subtype="message_changed"),
        _event("event_callback_message_im_thread_reply.json", subtype="bot_message"),
        _event("event_callback_message_im_thread_reply.json", subtype="channel_join"),
        _event("event_callback_message_im_thread_reply.json", user="W111"),
        _event("event_callback_app_mention.json", type="reaction_added"),
        {"type": "app_rate_limited", "team_id": "T111", "minute_rate_limited": 1518467820},
        {"type": "block_actions"},
    ],
    ids=[
        "channel-message",
        "channel-thread-reply",
        "thread-broadcast",
        "bot",
        "itself-mention",
        "edited",
        "bot-message",
        "join",
        "itself-dm",
        "reaction",
        "app-rate-limited",
        "other-type",
    ],
)
def test_what_is_not_a_citizen_s_question_is_skipped_without_error(data: dict[str, Any]) -> None:
    assert adapter().parse(signed(data)) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "one JSON object"),
        (b'{"type": "event_callback", "event": {}}', "event_id"),
        (b'{"type": "event_callback", "event_id": "Ev1"}', "event_id"),
    ],
)
def test_malformed_bodies_are_bad_requests(body: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        adapter().parse(signed(body))


def test_the_acknowledgement_is_an_empty_200() -> None:
    reply = adapter().acknowledge(signed(fixture("event_callback_app_mention.json")))
    assert (reply.status, reply.body) == (200, b"")


# --- configuration ------------------------------------------------------------------------------


def test_the_channel_is_built_from_its_settings() -> None:
    environ = {"CIVICDESK_SLACK_SIGNING_SECRET": SECRET, "CIVICDESK_SLACK_BOT_TOKEN": BOT_TOKEN}
    (config,) = read_channels(environ, ["slack"], ADAPTERS)
    built = ADAPTERS["slack"].build(config)

    assert isinstance(built, SlackAdapter)
    assert built.api_base == "https://slack.com/api"
    assert SECRET not in repr(config)
    assert BOT_TOKEN not in repr(config)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"CIVICDESK_SLACK_BOT_TOKEN": BOT_TOKEN}, "CIVICDESK_SLACK_SIGNING_SECRET"),
        ({"CIVICDESK_SLACK_SIGNING_SECRET": SECRET}, "CIVICDESK_SLACK_BOT_TOKEN"),
        (
            {"CIVICDESK_SLACK_SIGNING_SECRET": SECRET, "CIVICDESK_SLACK_BOT_TOKEN": "hunter2"},
            "CIVICDESK_SLACK_BOT_TOKEN",
        ),
    ],
)
def test_missing_or_malformed_settings_name_the_variable(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable) as caught:
        read_channels(environ, ["slack"], ADAPTERS)
    assert "hunter2" not in str(caught.value)


def test_the_text_limit_is_4000_characters() -> None:
    rules = adapter().text_rules
    text = ("诉讼费 fee https://court.example.gov/fees 😀 <@W222> " * 100)[:4000]
    assert (rules.limit, rules.count(text)) == (4000, 4000)


# --- send -------------------------------------------------------------------------------------


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeApi]:
    async with fake_api(slack_ok, prefix="/api") as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def connected(fake: FakeApi, session: aiohttp.ClientSession) -> Any:
    built = adapter(api_base=fake.url)
    built.attach_session(session)
    return built


def outbound(public: bool = True, **extra: Any) -> OutboundMessage:
    base: dict[str, Any] = {
        "id": 3,
        "channel": "slack",
        "conversation": "C111" if public else "D111",
        "text": "Pay online or at the litigation service centre.",
        "public": public,
        "recipient": "W222",
        "reply_to": "Ev111",
        "reply_context": '{"thread_ts":"1595926230.009600"}' if public else None,
    }
    return OutboundMessage(**{**base, **extra})


async def test_a_public_reply_is_posted_in_the_thread_with_the_bot_token(
    slack_api: FakeApi, session: aiohttp.ClientSession
) -> None:
    result = await connected(slack_api, session).send(outbound())

    (call,) = slack_api.calls
    assert call.path == "/api/chat.postMessage"
    assert call.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert call.headers["Content-Type"] == "application/json; charset=utf-8"
    assert call.body == {
        "channel": "C111",
        "text": "Pay online or at the litigation service centre.",
        "thread_ts": "1595926230.009600",
    }
    assert result.ok
    assert result.platform_id == "C111:1700000000.000001"


async def test_a_private_reply_goes_to_the_dm_without_a_thread(
    slack_api: FakeApi, session: aiohttp.ClientSession
) -> None:
    await connected(slack_api, session).send(outbound(public=False))
    assert slack_api.calls[0].body == {
        "channel": "D111",
        "text": "Pay online or at the litigation service centre.",
    }


async def test_the_asker_s_mention_stays_markup_and_the_rest_is_escaped(
    slack_api: FakeApi, session: aiohttp.ClientSession
) -> None:
    # The core starts a public reply with the question's mention, <@W222>: Slack's markup for a
    # real mention, kept; anything else that looks like markup is the answer's text, escaped.
    text = "<@W222> Fees < 100 & > 0: see <https://court.example.gov/fees> or ask <@W999>"

    await connected(slack_api, session).send(outbound(text=text))
    await connected(slack_api, session).send(outbound(text=text, public=False))

    public, private = (call.body["text"] for call in slack_api.calls)
    escaped = (
        " Fees &lt; 100 &amp; &gt; 0: see &lt;https://court.example.gov/fees&gt;"
        " or ask &lt;@W999&gt;"
    )
    assert public == "<@W222>" + escaped
    assert private == "&lt;@W222&gt;" + escaped


def _ok_false(error: str, status: int = 200, **headers: str) -> Answer:
    return Answer(status, {"ok": False, "error": error}, headers)


@pytest.mark.parametrize(
    ("answer", "retryable", "retry_after", "says"),
    [
        (_ok_false("ratelimited", 429, **{"Retry-After": "30"}), True, 30.0, "ratelimited"),
        (_ok_false("ratelimited"), True, None, "ratelimited"),
        (_ok_false("internal_error"), True, None, "internal_error"),
        (Answer(503, {"ok": False}), True, None, "HTTP 503"),
        (_ok_false("channel_not_found"), False, None, "channel_not_found"),
        (_ok_false("not_in_channel"), False, None, "/invite"),
        (_ok_false("invalid_auth"), False, None, "BOT_TOKEN"),
        (_ok_false("missing_scope"), False, None, "chat:write"),
        (Answer(404, {"ok": False}), False, None, "HTTP 404"),
    ],
)
async def test_failures_are_classified(
    slack_api: FakeApi,
    session: aiohttp.ClientSession,
    answer: Answer,
    retryable: bool,
    retry_after: float | None,
    says: str,
) -> None:
    slack_api.scripted.append(answer)

    result = await connected(slack_api, session).send(outbound())

    assert not result.ok
    assert result.retryable is retryable
    assert result.retry_after == retry_after
    assert says in (result.error or "")
    assert BOT_TOKEN not in (result.error or "")


# --- through the real app ---------------------------------------------------------------------


@pytest.fixture
async def served(
    aiohttp_client: Any, slack_api: FakeApi, tmp_path: Path
) -> tuple[Client, FakeApi, Path]:
    database = tmp_path / "d.db"
    environ = {
        "CIVICDESK_CHANNELS": "slack",
        "CIVICDESK_SLACK_SIGNING_SECRET": SECRET,
        "CIVICDESK_SLACK_BOT_TOKEN": BOT_TOKEN,
        "CIVICDESK_SLACK_API_BASE": slack_api.url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
    }
    app, _, _ = await served_app(environ, SMALL_KB)
    client: Client = await aiohttp_client(app)
    return client, slack_api, database


def signed_now(data: dict[str, Any], secret: str = SECRET, **extra: str) -> dict[str, Any]:
    body = json.dumps(data).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(secret, timestamp, body),
        **extra,
    }
    return {"data": body, "headers": headers}


def question(text: str) -> dict[str, Any]:
    return _event("event_callback_app_mention.json", text=f"<@W111> {text}")


async def test_the_url_verification_through_the_app(served: tuple[Client, FakeApi, Path]) -> None:
    client, _, database = served
    data = fixture("url_verification.json")

    verified = await client.post("/webhooks/slack", **signed_now(data))
    refused = await client.post("/webhooks/slack", json=data)

    assert verified.status == 200
    assert (await verified.json())["challenge"] == data["challenge"]
    assert refused.status == 401
    assert "missing X-Slack-Request-Timestamp" in (await refused.json())["error"]
    assert count_rows(database, "inbox") == 0
    metrics = await (await client.get("/metrics")).text()
    assert 'civicdesk_requests_rejected_total{channel="slack",status="401"} 1' in metrics


async def test_a_mention_is_stored_and_answered_in_its_thread(
    served: tuple[Client, FakeApi, Path],
) -> None:
    client, fake, database = served

    response = await client.post(
        "/webhooks/slack", **signed_now(question("How do I pay the court fee?"))
    )

    assert response.status == 200
    assert await response.read() == b""
    (call,) = await fake.wait_for(1)
    assert call.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert call.body["channel"] == "C111"
    assert call.body["thread_ts"] == "1595926230.009600"
    assert call.body["text"].startswith("<@W222> Pay online or at the litigation service centre.")
    assert count_rows(database, "inbox") == 1


async def test_a_forged_event_gets_401_and_nothing_is_stored(
    served: tuple[Client, FakeApi, Path],
) -> None:
    client, fake, database = served
    data = question("How do I pay the court fee?")

    forged = await client.post("/webhooks/slack", **signed_now(data, secret="guessed"))
    unsigned_ = await client.post("/webhooks/slack", json=data)

    assert forged.status == 401
    assert "does not match" in (await forged.json())["error"]
    assert unsigned_.status == 401
    assert count_rows(database, "inbox") == 0
    assert fake.calls == []


async def test_slack_retries_of_an_event_are_answered_once(
    served: tuple[Client, FakeApi, Path],
) -> None:
    client, fake, database = served
    data = question("Where can I pay litigation costs?")

    first, second = await asyncio.gather(
        client.post("/webhooks/slack", **signed_now(data)),
        client.post(
            "/webhooks/slack",
            **signed_now(copy.deepcopy(data), **{"X-Slack-Retry-Num": "1"}),
        ),
    )
    third = await client.post(
        "/webhooks/slack",
        **signed_now(data, **{"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"}),
    )

    assert [first.status, second.status, third.status] == [200, 200, 200]
    await fake.wait_for(1)
    await settled(database)
    assert len(fake.calls) == 1
    assert count_rows(database, "inbox") == 1


# --- Issue 12: mentions of the app, files ----------------------------------------------------


def _without_authorizations(text: str) -> dict[str, Any]:
    data = fixture("event_callback_app_mention.json")  # slack-sdk's recorded app_mention
    del data["authed_users"]
    data["event"]["text"] = text
    return data


def test_an_app_mention_without_authorizations_loses_its_leading_mention() -> None:
    (message,) = adapter().parse(signed(_without_authorizations("<@W111> 诉讼费怎么交")))
    assert message.text == "诉讼费怎么交"
    (message,) = adapter().parse(signed(_without_authorizations("<@U0LAN0Z89|civicdesk>: fee?")))
    assert message.text == "fee?"


async def test_the_bot_user_from_auth_test_is_taken_out_anywhere_in_the_text(
    session: aiohttp.ClientSession,
) -> None:
    def answer(call: Any, number: int) -> Answer:
        if call.path.endswith("/auth.test"):
            return Answer(200, {"ok": True, "user_id": "W111", "bot_id": "B111"})
        return slack_ok(call, number)

    async with fake_api(answer, prefix="/api") as fake:
        built = connected(fake, session)
        raw = signed(_without_authorizations("please <@W111> how do I pay, ask <@W333>"))
        await built.prepare(raw)
        (message,) = built.parse(raw)
        assert message.text == "please how do I pay, ask <@W333>"  # another member stays
        await built.prepare(raw)  # asked once
        assert [c.path for c in fake.calls].count("/api/auth.test") == 1


def test_a_file_shared_in_a_dm_is_a_message_with_its_kind() -> None:
    data = fixture("event_callback_message_im_thread_reply.json")
    data["event"].update(
        subtype="file_share",
        text="",
        files=[{"id": "F1", "name": "bill.png", "mimetype": "image/png", "filetype": "png"}],
    )
    data["event"].pop("thread_ts", None)
    (message,) = adapter().parse(signed(data))
    assert (message.text, message.media, message.public) == ("", "image", False)

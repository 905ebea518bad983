"""The Matrix adapter on its own: events → messages (fixtures from the spec and matrix-nio), the
application service's token check and endpoints, replies and their errors against a fake
homeserver, and /sync polling with its cursor."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from fake_apis import serve

from adapters.matrix import SPEC
from adapters.matrix_appservice import MatrixAppServiceAdapter
from adapters.matrix_client import transaction_id
from adapters.matrix_events import Identity, OwnEvents, ReplyContext, message_from
from adapters.matrix_sync import MatrixSyncAdapter
from bot.config.settings import ConfigError, Secret, read_channels
from bot.platform.adapter import (
    BadRequest,
    Poller,
    PollFailed,
    RawRequest,
    RetryLater,
    Unauthorized,
)
from bot.platform.messages import OutboundMessage

FIXTURES = Path(__file__).parent / "fixtures" / "matrix"
BOT = Identity("@civicdesk:example.org", "Civic Desk")
HS_TOKEN = "hs-token-from-the-registration"
ROOM = "!jEsUZKDJdhlrceRyVU:example.org"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def text_event(
    body: str,
    event_id: str = "$q1",
    sender: str = "@alice:example.org",
    extra: dict[str, Any] | None = None,
    **content: str,
) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "event_id": event_id,
        "sender": sender,
        "room_id": ROOM,
        "content": {"msgtype": "m.text", "body": body, **content, **(extra or {})},
    }


def parse_one(
    event: dict[str, Any], *, direct: bool | None = False, own: OwnEvents | None = None
) -> Any:
    return message_from("matrix", event, ROOM, BOT, direct=direct, own=own or OwnEvents())


# --- Events ----------------------------------------------------------------------------------


def test_the_nio_text_message_in_a_private_room_is_a_private_question() -> None:
    message = parse_one(fixture("nio_events_message_text.json"), direct=True)
    assert message.text == "is dancing"
    assert message.public is False
    assert message.platform_id == "$152037280074GZeOm:localhost"
    assert message.sender == "@example:localhost"
    assert message.conversation == ROOM
    assert message.reply_to is None
    assert ReplyContext.loads(message.reply_context) == ReplyContext("$152037280074GZeOm:localhost")


def test_in_a_group_room_only_what_names_the_bot_or_replies_to_it_is_taken() -> None:
    assert parse_one(text_event("how do I pay the court fee?")) is None
    mentioned = parse_one(text_event("@civicdesk:example.org how do I pay?"))
    assert mentioned.text == "how do I pay?"
    assert mentioned.public is True
    assert mentioned.mention is None  # the answer replies to it and names the asker in m.mentions
    by_name = parse_one(text_event("Civic Desk: 诉讼费怎么交"))
    assert by_name.text == "诉讼费怎么交"
    # An intentional mention (m.mentions) is the whole truth when a client sends it.
    pill = text_event("Civic Desk: how?", extra={"m.mentions": {"user_ids": [BOT.user_id]}})
    assert parse_one(pill).text == "how?"
    quoted = text_event("what Civic Desk said is wrong", extra={"m.mentions": {}})
    assert parse_one(quoted) is None
    # A reply to one of the bot's messages needs no mention.
    own = OwnEvents()
    own.add("$answer")
    reply = text_event(
        "and on Sundays?", extra={"m.relates_to": {"m.in_reply_to": {"event_id": "$answer"}}}
    )
    message = parse_one(reply, own=own)
    assert message.reply_to == "$answer"
    assert parse_one(reply) is None  # a reply to someone else's message


def test_a_question_in_a_thread_keeps_the_thread_root_for_the_reply() -> None:
    events = fixture("thread_reply_events.json")
    event = {**events["thread_reply_1"], "content": {**events["thread_reply_1"]["content"]}}
    message = parse_one(event, direct=True)
    assert message.text == "I'm doing okay, thank you! How about yourself?"
    assert message.reply_to == "$alice_hello"
    assert ReplyContext.loads(message.reply_context) == ReplyContext("$bob_hello", "$alice_hello")
    rich = {
        "type": "m.room.message",
        "event_id": "$r",
        "sender": "@bob:example.org",
        "content": {"msgtype": "m.text", **events["rich_reply_content"]},
    }
    assert parse_one(rich, direct=True).reply_to == "$another_event"


def test_the_quoted_fallback_of_older_clients_is_not_part_of_the_question() -> None:
    body = "> <@civicdesk:example.org> Pay online.\n> more\n\nand on Sundays?"
    event = text_event(body, extra={"m.relates_to": {"m.in_reply_to": {"event_id": "$a"}}})
    assert parse_one(event, direct=True).text == "and on Sundays?"


@pytest.mark.parametrize(
    "event",
    [
        text_event("mine", sender=BOT.user_id),
        text_event("a notice", msgtype="m.notice"),
        text_event("waves", msgtype="m.emote"),
        text_event("* fixed", extra={"m.relates_to": {"rel_type": "m.replace", "event_id": "$q0"}}),
        {**text_event("gone"), "unsigned": {"redacted_because": {"type": "m.room.redaction"}}},
        {**text_event("state?"), "state_key": ""},
        {
            "type": "m.room.redaction",
            "event_id": "$x",
            "sender": "@a:b",
            "redacts": "$q1",
            "content": {},
        },
        {
            "type": "m.room.message",
            "event_id": "$v",
            "sender": "@a:b",
            "content": {"msgtype": "m.key.verification.request", "body": "verify?"},
        },
        text_event("   "),
        {"type": "m.room.message", "event_id": 5, "sender": "@a:b", "content": {}},
    ],
)
def test_skipped_events_make_no_message_and_no_error(event: dict[str, Any]) -> None:
    assert parse_one(event, direct=True) is None


def test_the_bots_own_events_are_remembered_as_its_own() -> None:
    own = OwnEvents(size=2)
    for event_id in ("$1", "$2", "$3"):
        parse_one(text_event("x", event_id=event_id, sender=BOT.user_id), own=own)
    assert "$3" in own and "$2" in own and "$1" not in own


# --- Application service: tokens, endpoints, transactions ------------------------------------


def appservice(api_base: str = "http://127.0.0.1:1") -> MatrixAppServiceAdapter:
    return MatrixAppServiceAdapter("matrix", api_base, Secret("as-token"), Secret(HS_TOKEN), BOT)


def request(
    path: str,
    body: Any = None,
    method: str = "PUT",
    token: str | None = HS_TOKEN,
    query: dict[str, str] | None = None,
) -> RawRequest:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    raw = b"" if body is None else json.dumps(body).encode()
    return RawRequest(method, "/webhooks/matrix" + path, query or {}, headers, raw)


def transaction(txn: str = "35", body: Any = None) -> RawRequest:
    body = fixture("appservice_transaction.json")["body"] if body is None else body
    return request(f"/_matrix/app/v1/transactions/{txn}", body)


def test_the_spec_transaction_with_the_right_token_is_parsed() -> None:
    adapter = appservice()
    adapter.verify(transaction())
    adapter.rooms.count(ROOM, joined=2)  # a private room: every message is answered
    (message,) = adapter.parse(transaction())
    assert message.text == "This is an example text message"
    assert message.platform_id == "$143273582443PhrSn:example.org"
    assert message.conversation == ROOM
    assert message.public is False
    reply = adapter.acknowledge(transaction())
    assert (reply.status, reply.body, reply.content_type) == (200, b"{}", "application/json")


def test_a_transaction_already_acknowledged_is_not_read_again() -> None:
    adapter = appservice()
    adapter.rooms.count(ROOM, joined=2)
    assert len(adapter.parse(transaction("7"))) == 1
    assert len(adapter.parse(transaction("7"))) == 1  # not stored yet: the retry counts
    adapter.acknowledge(transaction("7"))
    assert adapter.parse(transaction("7")) == []
    assert len(adapter.parse(transaction("8"))) == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (request("/_matrix/app/v1/transactions/1", {}, token="wrong"), "does not match"),
        (request("/_matrix/app/v1/transactions/1", {}, token=HS_TOKEN + "x"), "does not match"),
        (request("/_matrix/app/v1/transactions/1", {}, token=None), "no hs_token"),
        # Legacy ?access_token= alone is accepted (below); with a header both must match.
        (
            request("/_matrix/app/v1/transactions/1", {}, query={"access_token": "wrong"}),
            "does not match",
        ),
    ],
)
def test_a_wrong_or_missing_hs_token_is_unauthorized(raw: RawRequest, reason: str) -> None:
    with pytest.raises(Unauthorized, match=reason) as refused:
        appservice().verify(raw)
    # The application service spec: 401 without credentials, 403 with wrong ones.
    assert refused.value.status == (401 if reason == "no hs_token" else 403)


def test_the_legacy_query_token_is_accepted() -> None:
    raw = request(
        "/_matrix/app/v1/transactions/1", {}, token=None, query={"access_token": HS_TOKEN}
    )
    appservice().verify(raw)


def test_the_ping_and_queries_are_answered_as_the_spec_says() -> None:
    adapter = appservice()
    assert adapter.handshake(transaction()) is None  # transactions go on to verify and parse
    ping = adapter.handshake(request("/_matrix/app/v1/ping", {"transaction_id": "t"}, "POST"))
    assert ping is not None and (ping.status, ping.body) == (200, b"{}")
    user = adapter.handshake(request("/_matrix/app/v1/users/@x:example.org", method="GET"))
    assert user is not None and user.status == 404
    assert json.loads(user.body)["errcode"] == "M_NOT_FOUND"
    # A ping or query with a wrong hs_token is refused like a transaction: 403, none at all 401.
    with pytest.raises(Unauthorized, match="does not match") as forged:
        adapter.handshake(request("/_matrix/app/v1/ping", {}, "POST", token="nope"))
    assert forged.value.status == 403
    with pytest.raises(Unauthorized, match="no hs_token") as missing:
        adapter.handshake(request("/_matrix/app/v1/users/@x:example.org", method="GET", token=None))
    assert missing.value.status == 401


@pytest.mark.parametrize(
    "raw",
    [
        transaction(body={"no": "events"}),
        request("/_matrix/app/v1/transactions/9", None),
        request("", {"events": []}, method="POST"),
    ],
)
def test_malformed_transactions_are_bad_requests(raw: RawRequest) -> None:
    with pytest.raises(BadRequest):
        appservice().parse(raw)


def test_an_unknown_room_is_refused_for_a_retry_and_a_direct_invite_marks_a_private_room() -> None:
    # Issue 12, finding 2: a direct message after a restart was taken for group chatter and
    # dropped while the transaction was acknowledged. The homeserver cannot be asked here
    # (nothing listens on port 1), so the transaction is refused: the homeserver sends it again.
    adapter = appservice()
    question = text_event("how do I pay?")
    with pytest.raises(RetryLater):
        adapter.parse(transaction("1", {"events": [question]}))
    invite = {
        "type": "m.room.member",
        "state_key": BOT.user_id,
        "sender": "@alice:example.org",
        "room_id": "!dm:example.org",
        "event_id": "$inv",
        "content": {"membership": "invite", "is_direct": True},
    }
    asked = {**question, "room_id": "!dm:example.org"}
    (message,) = adapter.parse(transaction("2", {"events": [invite, asked]}))
    assert message.public is False


# --- Replies against a fake homeserver -------------------------------------------------------


@dataclass
class Homeserver:
    requests: list[tuple[str, str, dict[str, str], Any, dict[str, str]]] = field(
        default_factory=list
    )
    answers: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.requests.append(
            (request.method, request.path, dict(request.query), body, dict(request.headers))
        )
        status, data, headers = (
            self.answers.pop(0) if self.answers else (200, {"event_id": "$sent"}, {})
        )
        return web.json_response(data, status=status, headers=headers)


@pytest.fixture
async def homeserver() -> AsyncIterator[tuple[Homeserver, str, aiohttp.ClientSession]]:
    fake = Homeserver()
    async with serve([("*", "/{tail:.*}", fake.handle)]) as url, aiohttp.ClientSession() as session:
        yield fake, url, session


def outbound(**kw: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "id": 42,
        "channel": "matrix",
        "conversation": ROOM,
        "text": "Pay online.",
        "public": True,
        "recipient": "@alice:example.org",
        "reply_to": "$q1",
        "reply_context": ReplyContext("$q1").dumps(),
    }
    return OutboundMessage(**{**values, **kw})


def sync_adapter(base: str, session: aiohttp.ClientSession) -> MatrixSyncAdapter:
    adapter = MatrixSyncAdapter("matrix", base, Secret("bot-access-token"), BOT, sync_timeout=1)
    adapter.attach_session(session)
    return adapter


async def test_a_reply_is_put_in_the_room_quoting_the_question(homeserver: Any) -> None:
    fake, base, session = homeserver
    adapter = sync_adapter(base, session)
    result = await adapter.send(outbound())
    assert result.ok and result.platform_id == "$sent"
    method, path, query, body, headers = fake.requests[0]
    assert method == "PUT"
    assert (
        path == f"/_matrix/client/v3/rooms/{ROOM}/send/m.room.message/{transaction_id(outbound())}"
    )
    assert headers["Authorization"] == "Bearer bot-access-token"
    assert query == {}
    assert body == {
        "msgtype": "m.notice",
        "body": "Pay online.",
        "m.relates_to": {"m.in_reply_to": {"event_id": "$q1"}},
        "m.mentions": {"user_ids": ["@alice:example.org"]},
    }
    # The same outbox row sends with the same transaction id: the homeserver drops a repeat.
    await adapter.send(outbound(attempt=2))
    assert fake.requests[1][1] == path
    # A reply to the bot's answer is a reply to the bot.
    assert "$sent" in adapter.own


async def test_a_reply_in_a_thread_stays_in_the_thread(homeserver: Any) -> None:
    fake, base, session = homeserver
    context = ReplyContext("$bob_hello", "$alice_hello").dumps()
    await sync_adapter(base, session).send(outbound(reply_context=context, public=False))
    body = fake.requests[0][3]
    assert body["m.relates_to"] == {
        "rel_type": "m.thread",
        "event_id": "$alice_hello",
        "is_falling_back": False,
        "m.in_reply_to": {"event_id": "$bob_hello"},
    }
    assert body["m.mentions"] == {"user_ids": []}


async def test_the_application_service_acts_as_its_user(homeserver: Any) -> None:
    fake, base, session = homeserver
    adapter = appservice(base)
    adapter.attach_session(session)
    assert (await adapter.send(outbound())).ok
    _, _, query, _, headers = fake.requests[0]
    assert query == {"user_id": BOT.user_id}
    assert headers["Authorization"] == "Bearer as-token"


@pytest.mark.parametrize(
    ("status", "data", "headers", "retryable", "retry_after"),
    [
        (429, fixture("nio_limit_exceeded_error.json"), {}, True, 0.5),
        (
            429,
            {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 500},
            {"Retry-After": "7"},
            True,
            7.0,
        ),
        (502, {"errcode": "M_UNKNOWN"}, {}, True, None),
        (403, {"errcode": "M_FORBIDDEN", "error": "not in room"}, {}, False, None),
        (401, {"errcode": "M_UNKNOWN_TOKEN", "error": "bad token"}, {}, False, None),
        (413, {"errcode": "M_TOO_LARGE"}, {}, False, None),
    ],
)
async def test_errors_are_classified(
    homeserver: Any,
    status: int,
    data: Any,
    headers: dict[str, str],
    retryable: bool,
    retry_after: float | None,
) -> None:
    fake, base, session = homeserver
    fake.answers.append((status, data, headers))
    result = await sync_adapter(base, session).send(outbound())
    assert not result.ok
    assert result.retryable is retryable
    assert result.retry_after == retry_after
    assert data["errcode"] in (result.error or "")


async def test_an_unreachable_homeserver_is_retryable_and_the_token_never_shows() -> None:
    async with aiohttp.ClientSession() as session:
        adapter = sync_adapter("http://127.0.0.1:1", session)
        result = await adapter.send(outbound())
    assert not result.ok and result.retryable
    assert "bot-access-token" not in (result.error or "")


# --- /sync -----------------------------------------------------------------------------------


def sync_answer(
    next_batch: str, rooms: dict[str, Any] | None = None
) -> tuple[int, Any, dict[str, str]]:
    return 200, {"next_batch": next_batch, "rooms": rooms or {}}, {}


async def test_the_first_poll_starts_from_now_and_the_cursor_goes_round(homeserver: Any) -> None:
    fake, base, session = homeserver
    adapter = sync_adapter(base, session)
    assert isinstance(adapter, Poller)
    old = text_event("an old question", event_id="$old")
    fake.answers.append(
        sync_answer(
            "s1",
            {
                "join": {
                    ROOM: {"summary": {"m.joined_member_count": 2}, "timeline": {"events": [old]}}
                }
            },
        )
    )
    first = await adapter.poll(None)
    assert first.messages == [] and first.cursor == "s1"
    method, path, query, _, headers = fake.requests[0]
    assert (method, path, query["timeout"]) == ("GET", "/_matrix/client/v3/sync", "0")
    assert "since" not in query and json.loads(query["filter"])["room"]["timeline"]["limit"] == 50
    assert headers["Authorization"] == "Bearer bot-access-token"

    new = text_event("how do I pay?", event_id="$new")
    fake.answers.append(sync_answer("s2", {"join": {ROOM: {"timeline": {"events": [new]}}}}))
    second = await adapter.poll(first.cursor)
    assert [m.platform_id for m in second.messages] == ["$new"]
    assert second.messages[0].public is False  # two members, from the first poll's summary
    assert second.cursor == "s2"
    assert fake.requests[1][2]["since"] == "s1" and fake.requests[1][2]["timeout"] == "1000"


async def test_an_invite_is_accepted_and_only_what_follows_it_is_answered(homeserver: Any) -> None:
    fake, base, session = homeserver
    adapter = sync_adapter(base, session)
    invite_state = {
        "events": [
            {
                "type": "m.room.member",
                "state_key": BOT.user_id,
                "sender": "@alice:example.org",
                "content": {"membership": "invite", "is_direct": True},
            }
        ]
    }
    fake.answers += [
        sync_answer("s1", {"invite": {"!dm:x": {"invite_state": invite_state}}}),
        (200, {"room_id": "!dm:x"}, {}),
    ]
    await adapter.poll("s0")
    assert fake.requests[1][:2] == ("POST", "/_matrix/client/v3/join/!dm:x")

    def member(membership: str, event_id: str) -> dict[str, Any]:
        return {
            "type": "m.room.member",
            "state_key": BOT.user_id,
            "event_id": event_id,
            "sender": BOT.user_id,
            "content": {"membership": membership},
        }

    timeline = [
        text_event("before the bot came", event_id="$before"),
        member("invite", "$i"),
        text_event("hello, fees?", event_id="$asked"),
        member("join", "$j"),
    ]
    fake.answers.append(
        sync_answer(
            "s2",
            {
                "join": {
                    "!dm:x": {
                        "summary": {"m.joined_member_count": 2},
                        "timeline": {"events": timeline},
                    }
                }
            },
        )
    )
    result = await adapter.poll("s1")
    assert [m.platform_id for m in result.messages] == ["$asked"]
    assert result.messages[0].conversation == "!dm:x"


async def test_a_room_unknown_after_a_restart_is_counted_once(homeserver: Any) -> None:
    fake, base, session = homeserver
    adapter = sync_adapter(base, session)
    for batch in ("s2", "s3"):
        fake.answers.append(
            sync_answer(
                batch,
                {
                    "join": {
                        ROOM: {
                            "timeline": {"events": [text_event("chatter", event_id=f"$c{batch}")]}
                        }
                    }
                },
            )
        )
        if batch == "s2":
            fake.answers.append((200, {"joined": {"@a:x": {}, "@b:x": {}, BOT.user_id: {}}}, {}))
        assert (await adapter.poll("s1")).messages == []  # a group room, no mention
    paths = [r[1] for r in fake.requests]
    assert paths.count(f"/_matrix/client/v3/rooms/{ROOM}/joined_members") == 1


@pytest.mark.parametrize(
    ("answer", "retry_after"),
    [
        ((429, {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 2000}, {}), 2.0),
        ((500, {"errcode": "M_UNKNOWN"}, {}), 5.0),
        ((401, {"errcode": "M_UNKNOWN_TOKEN"}, {}), 5.0),
        ((200, {"rooms": {}}, {}), 5.0),
    ],
)
async def test_a_failed_sync_keeps_the_cursor(
    homeserver: Any, answer: Any, retry_after: float
) -> None:
    fake, base, session = homeserver
    fake.answers.append(answer)
    with pytest.raises(PollFailed) as failed:
        await sync_adapter(base, session).poll("s1")
    assert failed.value.retry_after == retry_after


def test_a_sync_channel_takes_no_deliveries() -> None:
    adapter = MatrixSyncAdapter("matrix", "http://x", Secret("t"), BOT)
    with pytest.raises(Unauthorized, match="MODE to appservice"):
        adapter.verify(transaction())


# --- Configuration ---------------------------------------------------------------------------


def test_the_mode_picks_the_adapter_and_its_tokens() -> None:
    registry = {"matrix": SPEC}
    base = {"CIVICDESK_MATRIX_USER_ID": "@civicdesk:example.org"}
    sync = {**base, "CIVICDESK_MATRIX_ACCESS_TOKEN": "syt_x"}
    (config,) = read_channels(sync, ["matrix"], registry)
    assert isinstance(SPEC.build(config), MatrixSyncAdapter)
    service = {
        **base,
        "CIVICDESK_MATRIX_MODE": "appservice",
        "CIVICDESK_MATRIX_AS_TOKEN": "a",
        "CIVICDESK_MATRIX_HS_TOKEN": "h",
    }
    (config,) = read_channels(service, ["matrix"], registry)
    assert isinstance(SPEC.build(config), MatrixAppServiceAdapter)
    (config,) = read_channels(base, ["matrix"], registry)
    with pytest.raises(ConfigError, match="CIVICDESK_MATRIX_ACCESS_TOKEN"):
        SPEC.build(config)
    (config,) = read_channels({**base, "CIVICDESK_MATRIX_MODE": "appservice"}, ["matrix"], registry)
    with pytest.raises(ConfigError, match="CIVICDESK_MATRIX_AS_TOKEN"):
        SPEC.build(config)
    with pytest.raises(ConfigError, match="full user id"):
        read_channels({"CIVICDESK_MATRIX_USER_ID": "civicdesk"}, ["matrix"], registry)


# --- Issue 12: restarts, mentions in the text, media -----------------------------------------


async def test_a_first_direct_message_after_a_restart_is_answered_privately(
    homeserver: Any,
) -> None:
    # The adapter knows nothing of the room (a restart): it asks the homeserver before parsing
    # instead of taking the message for group chatter and acknowledging it as handled.
    fake, base, session = homeserver
    adapter = MatrixAppServiceAdapter("matrix", base, Secret("as"), Secret(HS_TOKEN), BOT)
    adapter.attach_session(session)
    fake.answers.append((200, {"joined": {BOT.user_id: {}, "@alice:example.org": {}}}, {}))
    raw = transaction("7", {"events": [text_event("how do I pay the court fee?")]})
    await adapter.prepare(raw)
    (message,) = adapter.parse(raw)
    assert (message.text, message.public) == ("how do I pay the court fee?", False)
    assert fake.requests[0][1] == f"/_matrix/client/v3/rooms/{ROOM}/joined_members"


async def test_a_room_the_bot_is_not_in_is_not_retried_forever(homeserver: Any) -> None:
    fake, base, session = homeserver
    adapter = MatrixAppServiceAdapter("matrix", base, Secret("as"), Secret(HS_TOKEN), BOT)
    adapter.attach_session(session)
    fake.answers.append((403, {"errcode": "M_FORBIDDEN"}, {}))
    raw = transaction("8", {"events": [text_event("chatter")]})
    await adapter.prepare(raw)
    assert adapter.parse(raw) == []  # a room it is not in: group chatter, acknowledged


async def test_an_outage_refuses_the_transaction_so_the_homeserver_sends_it_again(
    homeserver: Any,
) -> None:
    fake, base, session = homeserver
    adapter = MatrixAppServiceAdapter("matrix", base, Secret("as"), Secret(HS_TOKEN), BOT)
    adapter.attach_session(session)
    fake.answers.append((502, {}, {}))
    raw = transaction("9", {"events": [text_event("how do I pay?")]})
    await adapter.prepare(raw)
    with pytest.raises(RetryLater):
        adapter.parse(raw)
    await adapter.settle()  # the lookup started meanwhile (the default answer: no "joined")
    fake.answers.append((200, {"joined": {BOT.user_id: {}, "@alice:example.org": {}}}, {}))
    await adapter.prepare(raw)
    (message,) = adapter.parse(raw)
    assert message.public is False


@pytest.mark.parametrize(
    ("content", "direct"),
    [
        # Element: a pill in the middle of the sentence, its text copied into body.
        (
            {
                "body": "请问 Civic Desk 诉讼费怎么交",
                "format": "org.matrix.custom.html",
                "formatted_body": '请问 <a href="https://matrix.to/#/@civicdesk:example.org">'
                "Civic Desk</a> 诉讼费怎么交",
                "m.mentions": {"user_ids": ["@civicdesk:example.org"]},
            },
            False,
        ),
        ({"body": "请问 Civic Desk 诉讼费怎么交"}, False),  # an old client: no m.mentions
        ({"body": "请问 Civic Desk 诉讼费怎么交", "m.mentions": {}}, True),
        ({"body": "请问 @civicdesk:example.org 诉讼费怎么交"}, False),
    ],
)
def test_the_bots_name_is_taken_out_wherever_it_stands(
    content: dict[str, Any], direct: bool
) -> None:
    message = parse_one(text_event("", extra=content), direct=direct)
    assert message.text == "请问 诉讼费怎么交"


def test_a_pill_names_the_bot_even_when_its_display_name_is_not_configured() -> None:
    event = text_event(
        "Desk Bot 诉讼费怎么交",
        formatted_body='<a href="https://matrix.to/#/%40civicdesk%3Aexample.org">Desk Bot</a> '
        "诉讼费怎么交",
        extra={"m.mentions": {"user_ids": ["@civicdesk:example.org"]}},
    )
    anonymous = Identity("@civicdesk:example.org")
    message = message_from("matrix", event, ROOM, anonymous, direct=False, own=OwnEvents())
    assert message is not None and message.text == "诉讼费怎么交"


def media_event(msgtype: str, body: str = "IMG_0001.jpg", **extra: Any) -> dict[str, Any]:
    """Shaped as the spec's examples (event-schemas/examples/m.room.message$m.image.yaml ...)."""
    return {
        "type": "m.room.message",
        "event_id": "$m1",
        "sender": "@alice:example.org",
        "room_id": ROOM,
        "origin_server_ts": 1432735824653,
        "content": {
            "msgtype": msgtype,
            "body": body,
            "url": "mxc://example.org/JWEIFJgwEIhweiWJE",
            "info": {"mimetype": "image/jpeg", "size": 31037},
            **extra,
        },
        "unsigned": {"age": 1234},
    }


@pytest.mark.parametrize(
    ("event", "media"),
    [
        (media_event("m.image"), "image"),
        (media_event("m.file", "something-important.doc"), "file"),
        (media_event("m.audio", "Bee Gees - Stayin' Alive"), "audio"),
        (media_event("m.video", "Gangnam Style"), "video"),
        (
            media_event("m.location", "Big Ben, London, UK", geo_uri="geo:51.5008,0.1247"),
            "location",
        ),
        ({**media_event("m.image"), "type": "m.sticker"}, "sticker"),
        (media_event("org.example.poll", "Vote!"), "unsupported"),
        (
            {
                "type": "m.room.encrypted",
                "event_id": "$e",
                "sender": "@alice:example.org",
                "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEn..."},
            },
            "unsupported",
        ),
    ],
)
def test_media_in_a_private_room_come_with_their_kind_and_no_text(
    event: dict[str, Any], media: str
) -> None:
    message = parse_one(event, direct=True)
    assert (message.text, message.media, message.public) == ("", media, False)
    assert parse_one(event, direct=False) is None  # group chatter: not addressed to the bot


def test_a_captioned_image_has_the_caption_as_its_text() -> None:
    event = media_event("m.image", "这个怎么交", filename="IMG_0001.jpg")
    message = parse_one(event, direct=True)
    assert (message.text, message.media) == ("这个怎么交", "image")

"""The Matrix adapter as a staff channel (`STAFF_ROOM` set): staff messages in the staff room
parsed from hand-built events, tickets and updates sent to a fake homeserver, invitations to
other rooms declined, and the staff room's id checked in the configuration."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from fake_apis import serve

from adapters.matrix import SPEC
from adapters.matrix_appservice import MatrixAppServiceAdapter
from adapters.matrix_events import DisplayNames, Identity, staff_message_from
from adapters.matrix_sync import MatrixSyncAdapter
from bot.config.settings import ConfigError, Secret, read_channels
from bot.platform.adapter import RawRequest
from bot.platform.messages import InboundMessage, OutboundMessage

BOT = Identity("@civicdesk-duty:example.org", "Duty Desk")
STAFF_ROOM = "!duty:example.org"
TICKET = "$ticket-post"
LI = "@li:example.org"


def member(user_id: str, name: str | None, membership: str = "join") -> dict[str, Any]:
    content: dict[str, Any] = {"membership": membership}
    if name is not None:
        content["displayname"] = name
    return {
        "type": "m.room.member",
        "state_key": user_id,
        "sender": user_id,
        "event_id": f"$m-{user_id}-{membership}",
        "room_id": STAFF_ROOM,
        "content": content,
    }


def said(
    body: str,
    event_id: str = "$s1",
    sender: str = LI,
    relates: dict[str, Any] | None = None,
    **content: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {"msgtype": "m.text", "body": body, **content}
    if relates is not None:
        data["m.relates_to"] = relates
    return {
        "type": "m.room.message",
        "event_id": event_id,
        "sender": sender,
        "room_id": STAFF_ROOM,
        "content": data,
    }


def in_thread(root: str = TICKET, latest: str | None = None) -> dict[str, Any]:
    """As Element sends a message in a thread: the relation and the fallback reply."""
    return {
        "rel_type": "m.thread",
        "event_id": root,
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": latest or root},
    }


def parse(event: dict[str, Any], names: DisplayNames | None = None) -> InboundMessage | None:
    return staff_message_from("duty", event, STAFF_ROOM, BOT, names=names or DisplayNames())


# --- Events ----------------------------------------------------------------------------------


def test_a_reply_in_a_tickets_thread_answers_the_ticket_post_with_the_staff_members_name() -> None:
    names = DisplayNames()
    names.learn(member(LI, "Li  Wei\n"))
    answer = "Your case was filed on 20 November.\n\nThe hearing is in January."
    message = parse(said(answer, relates=in_thread(latest="$update-1")), names)
    assert message is not None
    assert message.reply_to == TICKET  # the thread root, not the latest event it falls back to
    assert message.text == answer  # paragraphs kept
    assert message.sender == LI and message.sender_name == "Li Wei"
    assert (message.platform_id, message.conversation, message.public) == ("$s1", STAFF_ROOM, False)
    assert message.reply_context is None


def test_a_plain_reply_outside_a_thread_answers_the_replied_to_message() -> None:
    quoted = f"> <{BOT.user_id}> [civicdesk] New ticket K7Q2 ...\n\nclose duplicate of K7Q1"
    message = parse(said(quoted, relates={"m.in_reply_to": {"event_id": "$update-2"}}))
    assert message is not None
    assert message.reply_to == "$update-2"
    assert message.text == "close duplicate of K7Q1"  # without the quoted fallback
    assert message.sender_name == LI  # no member event seen: the user id


def test_a_leading_bot_name_is_not_part_of_a_command() -> None:
    message = parse(said("Duty Desk: claim", relates=in_thread()))
    assert message is not None and message.text == "claim"


@pytest.mark.parametrize(
    "event",
    [
        said("lunch at noon?"),  # top-level talk among staff
        said("[civicdesk] New ticket", sender=BOT.user_id, relates=in_thread()),  # the bot's own
        said("fixed", relates={"rel_type": "m.replace", "event_id": "$s0"}),
        said("a notice", relates=in_thread(), msgtype="m.notice"),
        said("thumbs up", relates={"rel_type": "m.annotation", "event_id": TICKET}),
        {**said("gone", relates=in_thread()), "unsigned": {"redacted_because": {}}},
        said("   ", relates=in_thread()),
        member(LI, "Li Wei"),
    ],
)
def test_what_is_no_answer_to_a_ticket_makes_no_message(event: dict[str, Any]) -> None:
    assert parse(event) is None


def test_display_names_are_bounded_and_follow_changes() -> None:
    names = DisplayNames(size=2)
    names.learn(member("@a:x", "A"))
    names.learn(member("@b:x", "B"))
    names.learn(member("@a:x", "A2"))
    names.learn(member("@c:x", "C"))
    names.learn(member("@d:x", None))  # no display name: nothing learnt
    assert (names.get("@a:x"), names.get("@b:x"), names.get("@c:x")) == ("A2", None, "C")


# --- Against a fake homeserver ---------------------------------------------------------------


@dataclass
class Homeserver:
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    answers: list[tuple[int, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path, dict(request.query), body))
        status, data = self.answers.pop(0) if self.answers else (200, {"event_id": "$posted"})
        return web.json_response(data, status=status)


@pytest.fixture
async def homeserver() -> AsyncIterator[tuple[Homeserver, str, aiohttp.ClientSession]]:
    fake = Homeserver()
    async with serve([("*", "/{tail:.*}", fake.handle)]) as url, aiohttp.ClientSession() as session:
        yield fake, url, session


def staff_sync(base: str, session: aiohttp.ClientSession) -> MatrixSyncAdapter:
    adapter = MatrixSyncAdapter(
        "duty", base, Secret("duty-token"), BOT, sync_timeout=1, staff_room=STAFF_ROOM
    )
    adapter.attach_session(session)
    return adapter


def post(reply_to: str | None, text: str = "[civicdesk] New ticket K7Q2") -> OutboundMessage:
    return OutboundMessage(
        id=7, channel="duty", conversation=STAFF_ROOM, text=text, public=False, reply_to=reply_to
    )


async def test_a_ticket_is_posted_at_the_top_level_and_its_event_id_returned(
    homeserver: Any,
) -> None:
    fake, base, session = homeserver
    result = await staff_sync(base, session).send(post(None))
    assert result.ok and result.platform_id == "$posted"
    method, path, _, body = fake.requests[0]
    assert method == "PUT"
    assert path.startswith(f"/_matrix/client/v3/rooms/{STAFF_ROOM}/send/m.room.message/")
    # m.text: the default push rule .m.rule.suppress_notices would silence an m.notice.
    assert body == {"msgtype": "m.text", "body": "[civicdesk] New ticket K7Q2", "m.mentions": {}}


async def test_an_update_goes_into_the_tickets_thread(homeserver: Any) -> None:
    fake, base, session = homeserver
    update = post(TICKET, "[K7Q2] answered · Li Wei · 11-26 09:00")
    assert (await staff_sync(base, session).send(update)).ok
    body = fake.requests[0][3]
    assert body["msgtype"] == "m.text" and body["body"] == update.text
    assert body["m.relates_to"] == {
        "rel_type": "m.thread",
        "event_id": TICKET,
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": TICKET},
    }


async def test_the_staff_bot_joins_only_its_staff_room_and_reads_only_there(
    homeserver: Any,
) -> None:
    fake, base, session = homeserver
    adapter = staff_sync(base, session)
    invite = {"invite_state": {"events": [member(BOT.user_id, None, "invite")]}}
    fake.answers += [
        (200, {"next_batch": "s1", "rooms": {"invite": {"!other:x": invite, STAFF_ROOM: invite}}}),
        (200, {}),  # leave !other:x
        (200, {"room_id": STAFF_ROOM}),  # join the staff room
    ]
    await adapter.poll("s0")
    assert json.loads(fake.requests[0][2]["filter"])["room"]["state"] == {
        "lazy_load_members": True,
        "types": ["m.room.member"],
        "include_redundant_members": True,  # names after a restart too
    }
    calls = [(m, p) for m, p, _, _ in fake.requests[1:]]
    assert calls == [
        ("POST", "/_matrix/client/v3/rooms/!other:x/leave"),
        ("POST", f"/_matrix/client/v3/join/{STAFF_ROOM}"),
    ]

    rooms = {
        "join": {
            STAFF_ROOM: {
                "state": {"events": [member(LI, "Li Wei")]},
                "timeline": {
                    "events": [
                        said("lunch?", event_id="$chat"),
                        said("It was filed.", event_id="$a", relates=in_thread()),
                    ]
                },
            },
            "!other:x": {"timeline": {"events": [said("hi", event_id="$o", relates=in_thread())]}},
        }
    }
    fake.answers.append((200, {"next_batch": "s2", "rooms": rooms}))
    result = await adapter.poll("s1")
    assert [(m.platform_id, m.reply_to, m.sender_name) for m in result.messages] == [
        ("$a", TICKET, "Li Wei")
    ]
    assert result.cursor == "s2"
    assert len(fake.requests) == 4  # no member counts asked for: staff need no mention


def test_the_application_service_reads_the_staff_room_the_same_way() -> None:
    adapter = MatrixAppServiceAdapter(
        "duty", "http://127.0.0.1:1", Secret("as"), Secret("hs"), BOT, staff_room=STAFF_ROOM
    )
    events = [
        member(LI, "Li Wei"),
        said("claim", event_id="$c", relates=in_thread()),
        {**said("in another room", event_id="$x", relates=in_thread()), "room_id": "!other:x"},
    ]
    body = json.dumps({"events": events}).encode()
    raw = RawRequest("PUT", "/webhooks/duty/_matrix/app/v1/transactions/1", {}, {}, body)
    [message] = adapter.parse(raw)
    assert (message.text, message.reply_to, message.sender_name) == ("claim", TICKET, "Li Wei")


# --- Configuration ---------------------------------------------------------------------------


def test_the_staff_room_must_be_a_room_id() -> None:
    environ = {
        "CIVICDESK_DUTY_ADAPTER": "matrix",
        "CIVICDESK_DUTY_USER_ID": BOT.user_id,
        "CIVICDESK_DUTY_ACCESS_TOKEN": "syt_x",
        "CIVICDESK_DUTY_STAFF_ROOM": STAFF_ROOM,
    }
    (config,) = read_channels(environ, ["duty"], {"matrix": SPEC})
    adapter = SPEC.build(config)
    assert isinstance(adapter, MatrixSyncAdapter) and adapter.staff_room == STAFF_ROOM
    aliased = {**environ, "CIVICDESK_DUTY_STAFF_ROOM": "#duty:example.org"}
    (config,) = read_channels(aliased, ["duty"], {"matrix": SPEC})
    with pytest.raises(ConfigError, match=r"CIVICDESK_DUTY_STAFF_ROOM.*not a room id"):
        SPEC.build(config)

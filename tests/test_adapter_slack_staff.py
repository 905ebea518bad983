"""The Slack adapter in staff mode (a channel with a STAFF_ROOM): tickets posted at the top of the
staff channel, updates in the ticket's thread, and what staff write in a thread there read back
as acting on that ticket (events shaped like bolt-python's fixtures)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from fake_telegram_slack import Answer, FakeApi, fake_api, slack_ok
from test_adapter_slack import BOT_TOKEN, NOW, SECRET, fixture, signed

from adapters import ADAPTERS
from adapters.slack import SlackAdapter
from bot.config.settings import ConfigError, Secret, read_channels
from bot.platform.messages import OutboundMessage

ROOM = "C0STAFF"
TICKET_TS = "1726133698.626339"


def staff_adapter(api_base: str = "http://127.0.0.1:1/api") -> SlackAdapter:
    return SlackAdapter(
        "slack",
        Secret(SECRET),
        Secret(BOT_TOKEN),
        api_base=api_base,
        staff_room=ROOM,
        clock=lambda: NOW,
    )


def thread_reply(text: str = "Your case was filed on 20 November.", **changes: Any) -> Any:
    """A staff member's reply in the thread of the ticket posted at TICKET_TS."""
    data = fixture("event_callback_message_channel_thread_reply.json")
    data["event"].update(
        {"channel": ROOM, "text": text, "thread_ts": TICKET_TS, "user": "U0LI"}, **changes
    )
    data["authorizations"][0]["user_id"] = "U0APP"
    return data


def test_a_reply_in_a_tickets_thread_is_staff_acting_on_it_without_a_mention() -> None:
    (message,) = staff_adapter().parse(signed(thread_reply()))

    assert message.reply_to == f"{ROOM}:{TICKET_TS}"  # the id the ticket post was sent under
    assert message.platform_id == f"{ROOM}:1726133700.887259"  # the message itself
    assert message.text == "Your case was filed on 20 November."
    assert message.sender == "U0LI"
    assert message.sender_name is None  # no profile in the event: the member id stands for them
    assert message.conversation == ROOM
    assert message.public is False


def test_the_profile_name_is_taken_when_the_event_carries_one() -> None:
    profile = {"display_name": "", "real_name": "Li Wei", "name": "li.wei"}
    (message,) = staff_adapter().parse(signed(thread_reply(user_profile=profile)))
    assert message.sender_name == "Li Wei"
    (message,) = staff_adapter().parse(signed(thread_reply(user_profile={"display_name": "li"})))
    assert message.sender_name == "li"


def test_a_mention_in_the_thread_arrives_twice_but_is_one_message() -> None:
    """With message.channels and app_mention both subscribed, a reply that @mentions the app
    comes as two events with two event ids; both carry the message's ts, the dedup key."""
    text = "<@U0APP> claim"
    as_message = thread_reply(text)
    as_mention = thread_reply(text, type="app_mention")
    as_mention["event_id"] = "Ev222"

    (first,) = staff_adapter().parse(signed(as_message))
    (second,) = staff_adapter().parse(signed(as_mention))

    assert first.platform_id == second.platform_id
    assert first.text == second.text == "claim"  # the app's mention taken out


def test_a_reply_also_sent_to_the_channel_counts() -> None:
    (message,) = staff_adapter().parse(signed(thread_reply(subtype="thread_broadcast")))
    assert message.reply_to == f"{ROOM}:{TICKET_TS}"


@pytest.mark.parametrize(
    "changes",
    [
        {"thread_ts": None},  # talk at the top level of the staff channel
        {"ts": TICKET_TS},  # the thread's root itself
        {"channel": "C0OTHER"},  # another channel the app is in
        {"channel": "D0DM", "channel_type": "im"},  # a direct message to the app
        {"bot_id": "B0APP", "user": "U0APP"},  # the app's own ticket updates
        {"user": "U0APP"},
        {"subtype": "message_changed"},
        {"subtype": "channel_join"},
        {"type": "reaction_added"},
    ],
    ids=["top-level", "root", "other-channel", "dm", "bot", "itself", "edit", "join", "reaction"],
)
def test_everything_else_is_skipped_without_error(changes: dict[str, Any]) -> None:
    data = thread_reply()
    data["event"].update(changes)
    data["event"] = {k: v for k, v in data["event"].items() if v is not None}
    assert staff_adapter().parse(signed(data)) == []


def test_the_staff_room_is_read_from_its_setting_and_must_be_a_channel_id() -> None:
    environ = {
        "CIVICDESK_SLACK_SIGNING_SECRET": SECRET,
        "CIVICDESK_SLACK_BOT_TOKEN": BOT_TOKEN,
        "CIVICDESK_SLACK_STAFF_ROOM": ROOM,
    }
    (config,) = read_channels(environ, ["slack"], ADAPTERS)
    built = ADAPTERS["slack"].build(config)
    assert isinstance(built, SlackAdapter) and built.staff_room == ROOM

    (named,) = read_channels(
        {**environ, "CIVICDESK_SLACK_STAFF_ROOM": "#duty"}, ["slack"], ADAPTERS
    )
    with pytest.raises(ConfigError, match="CIVICDESK_SLACK_STAFF_ROOM='#duty' must be"):
        ADAPTERS["slack"].build(named)


# --- send -------------------------------------------------------------------------------------


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeApi]:
    async with fake_api(slack_ok, prefix="/api") as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def post(reply_to: str | None, text: str = "[civicdesk] New ticket Q7K2M9") -> OutboundMessage:
    return OutboundMessage(
        id=11, channel="slack", conversation=ROOM, text=text, public=False, reply_to=reply_to
    )


async def test_a_ticket_is_posted_at_the_top_and_its_update_in_its_thread(
    slack_api: FakeApi, session: aiohttp.ClientSession
) -> None:
    channel = staff_adapter(slack_api.url)
    channel.attach_session(session)

    ticket = await channel.send(post(None, "[civicdesk] New ticket Q7K2M9 · <wechat> & co"))
    assert ticket.ok and ticket.platform_id == f"{ROOM}:1700000000.000001"
    update = await channel.send(post(ticket.platform_id, "[Q7K2M9] answered · li"))
    assert update.ok

    first, second = slack_api.calls
    assert first.path == second.path == "/api/chat.postMessage"
    assert first.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert first.body == {
        "channel": ROOM,
        "text": "[civicdesk] New ticket Q7K2M9 · &lt;wechat&gt; &amp; co",
    }
    assert second.body == {
        "channel": ROOM,
        "text": "[Q7K2M9] answered · li",
        "thread_ts": "1700000000.000001",
    }
    # A staff reply in that thread names the ticket post by the id it was sent under.
    reply = thread_reply(thread_ts="1700000000.000001")
    (message,) = channel.parse(signed(reply))
    assert message.reply_to == ticket.platform_id


async def test_a_members_name_is_asked_of_slack_once_and_kept(
    slack_api: FakeApi, session: aiohttp.ClientSession
) -> None:
    channel = staff_adapter(slack_api.url)
    channel.attach_session(session)

    assert await channel.staff_name("U0LI") == "Li Wei"  # the profile's full name
    assert await channel.staff_name("U0LI") == "Li Wei"
    assert await channel.staff_name("U0NOBODY") is None  # user_not_found: the id stands in
    assert [(c.path, c.body) for c in slack_api.calls] == [
        ("/api/users.info", {"user": "U0LI"}),
        ("/api/users.info", {"user": "U0NOBODY"}),
    ]


async def test_without_the_users_read_scope_the_log_says_what_to_add(
    slack_api: FakeApi, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    slack_api.scripted.append(Answer(200, {"ok": False, "error": "missing_scope"}))
    channel = staff_adapter(slack_api.url)
    channel.attach_session(session)

    assert await channel.staff_name("U0LI") is None
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "missing_scope" in warning.getMessage() and "users:read" in warning.getMessage()
    assert BOT_TOKEN not in caplog.text

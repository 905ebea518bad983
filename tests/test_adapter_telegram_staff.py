"""The Telegram adapter in staff mode (a channel with a STAFF_ROOM, the staff group's chat id):
tickets posted in the group, updates as replies to the ticket, and a staff member's reply to one
of the bot's messages there read back as acting on that ticket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from fake_telegram_slack import FakeApi, fake_api, telegram_ok
from test_adapter_telegram import BOT_ID, SECRET_TOKEN, TOKEN, USERNAME, delivery, fixture

from adapters import ADAPTERS
from adapters.telegram import TelegramAdapter
from bot.config.settings import ConfigError, Secret, read_channels
from bot.platform.messages import OutboundMessage

ROOM = "-1001234567890"


def staff_adapter(api_base: str = "http://127.0.0.1:1") -> TelegramAdapter:
    return TelegramAdapter(
        "telegram-staff",
        Secret(TOKEN),
        Secret(SECRET_TOKEN),
        username=USERNAME,
        api_base=api_base,
        staff_room=ROOM,
    )


def bot_message(message_id: int = 501) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "from": {"id": int(BOT_ID), "is_bot": True, "first_name": "Civic Desk"},
        "chat": {"id": int(ROOM), "title": "Duty desk", "type": "supergroup"},
        "date": 1700000000,
        "text": "[civicdesk] New ticket Q7K2M9 · telegram (private) · Fabio",
    }


def staff_reply(text: str = "Your case was filed on 20 November.", **changes: Any) -> Any:
    """Li's reply, in the staff group, to the bot's ticket message 501."""
    update = fixture("update_message_supergroup.json")
    update["message"].update(
        {
            "message_id": 502,
            "from": {"id": 200001, "is_bot": False, "first_name": "Li", "last_name": "Wei"},
            "chat": {"id": int(ROOM), "title": "Duty desk", "type": "supergroup"},
            "text": text,
            "reply_to_message": bot_message(),
        },
        **changes,
    )
    return update


def test_a_reply_to_the_bots_ticket_is_staff_acting_on_it() -> None:
    (message,) = staff_adapter().parse(delivery(staff_reply()))

    assert message.reply_to == f"{ROOM}:501"  # the ticket post's id, as sendMessage gave it
    assert message.platform_id == f"{ROOM}:502"
    assert message.text == "Your case was filed on 20 November."
    assert (message.sender, message.sender_name) == ("200001", "Li Wei")
    assert message.conversation == ROOM
    assert message.public is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/claim@civicdesk_bot", "/claim"),
        ("/claim", "/claim"),
        ("note called @civicdesk_bot", "note called"),
    ],
)
def test_commands_keep_their_word_without_the_bots_name(text: str, expected: str) -> None:
    (message,) = staff_adapter().parse(delivery(staff_reply(text)))
    assert message.text == expected


def _other_chat() -> Any:
    update = staff_reply()
    update["message"]["chat"] = {"id": -100999, "title": "Elsewhere", "type": "supergroup"}
    return update


def _private() -> Any:
    update = fixture("update_message_private_reply_to.json")
    update["message"]["reply_to_message"] = bot_message()
    return update


def _to_a_colleague() -> Any:
    update = staff_reply()
    update["message"]["reply_to_message"]["from"] = {
        "id": 200002,
        "is_bot": False,
        "first_name": "Z",
    }
    return update


def _from(sender: dict[str, Any]) -> Any:
    update = staff_reply()
    update["message"]["from"] = sender
    return update


def _top_level() -> Any:
    update = staff_reply("@civicdesk_bot lunch?")
    del update["message"]["reply_to_message"]
    return update


@pytest.mark.parametrize(
    "update",
    [
        _other_chat(),
        _private(),
        _to_a_colleague(),
        _top_level(),
        _from({"id": int(BOT_ID), "is_bot": True, "first_name": "Civic Desk"}),
        _from({"id": 1087968824, "is_bot": True, "first_name": "Group"}),
        fixture("update_edited_message.json"),
    ],
    ids=[
        "other-chat",
        "private",
        "to-a-colleague",
        "top-level",
        "itself",
        "anonymous-admin",
        "edit",
    ],
)
def test_everything_else_is_skipped_without_error(update: Any) -> None:
    assert staff_adapter().parse(delivery(update)) == []


def test_the_staff_room_is_read_from_its_setting_and_must_be_a_group_chat_id() -> None:
    environ = {
        "CIVICDESK_TELEGRAM_TOKEN": TOKEN,
        "CIVICDESK_TELEGRAM_SECRET_TOKEN": SECRET_TOKEN,
        "CIVICDESK_TELEGRAM_STAFF_ROOM": ROOM,
    }
    (config,) = read_channels(environ, ["telegram"], ADAPTERS)
    built = ADAPTERS["telegram"].build(config)
    assert isinstance(built, TelegramAdapter) and built.staff_room == ROOM

    named = {**environ, "CIVICDESK_TELEGRAM_STAFF_ROOM": "Duty desk"}
    (config,) = read_channels(named, ["telegram"], ADAPTERS)
    with pytest.raises(ConfigError, match="CIVICDESK_TELEGRAM_STAFF_ROOM='Duty desk' must be"):
        ADAPTERS["telegram"].build(config)


# --- send -------------------------------------------------------------------------------------


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeApi]:
    async with fake_api(telegram_ok) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def post(reply_to: str | None, text: str) -> OutboundMessage:
    return OutboundMessage(
        id=11, channel="telegram-staff", conversation=ROOM, text=text, public=False,
        reply_to=reply_to,
    )  # fmt: skip


async def test_a_ticket_is_posted_in_the_group_and_its_update_replies_to_it(
    telegram_api: FakeApi, session: aiohttp.ClientSession
) -> None:
    channel = staff_adapter(telegram_api.url)
    channel.attach_session(session)

    ticket = await channel.send(post(None, "[civicdesk] New ticket Q7K2M9"))
    assert ticket.ok and ticket.platform_id == f"{ROOM}:9001"
    update = await channel.send(post(ticket.platform_id, "[Q7K2M9] answered · Li Wei"))
    assert update.ok

    first, second = telegram_api.calls
    assert first.path == second.path == f"/bot{TOKEN}/sendMessage"
    assert first.body == {"chat_id": int(ROOM), "text": "[civicdesk] New ticket Q7K2M9"}
    assert second.body == {
        "chat_id": int(ROOM),
        "text": "[Q7K2M9] answered · Li Wei",
        "reply_parameters": {"message_id": 9001, "allow_sending_without_reply": True},
    }
    # A staff reply to the ticket names it by the id it was sent under.
    reply = staff_reply()
    reply["message"]["reply_to_message"] = bot_message(9001)
    (message,) = channel.parse(delivery(reply))
    assert message.reply_to == ticket.platform_id

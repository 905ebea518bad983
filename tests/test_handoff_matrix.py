"""The human handoff on a real Matrix homeserver (Synapse, tests/synapse_support.py), configured
through the environment as a deployer would, and served by the real app with its poll runner and
workers.

Two bot accounts, as a deployer sets them up: the citizen-facing bot (channel `matrix`) that
citizens invite into their rooms, and the duty-desk bot (channel `duty`, the staff channel) that
is a member of the staff room only. One account cannot serve both: civicdesk takes every message
of a staff channel as staff acting on tickets, so the staff room needs a channel of its own, and
two channels reading /sync of one account would each see every room (staff talk would reach the
citizen channel, citizens' questions the staff channel).

A citizen asks what the FAQ leaves to a person; they get an acknowledgement with a reference code
and a ticket appears in the staff room; a staff member answers in the ticket's thread; the
citizen gets that answer as a reply to the question, the thread says it was answered, and the
escalation log shows it closed, answered by the staff member's display name.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from synapse_support import (
    NEEDS_SYNAPSE,
    Event,
    Person,
    Synapse,
    relation,
    replied_to,
)
from web_support import SMALL_KB, served_app

from bot.cli.main import main as cli

pytestmark = NEEDS_SYNAPSE

CASE_QUESTION = "我的案件进展到哪一步了"  # an entry of SMALL_KB that always goes to a person
ANSWER = "Your case was filed on 20 November.\nThe hearing is set for 8 January."
STAFF_NAME = "Li Wei"
TICKET = re.compile(r"^\[civicdesk\] New ticket (\S+) · matrix \(private\)")


def deployment(
    synapse: Synapse, citizen_bot: Person, duty_bot: Person, staff_room: str, database: Path
) -> dict[str, str]:
    """The environment of the deployment: what a deployer writes into .env."""
    return {
        "CIVICDESK_CHANNELS": "matrix,duty",
        "CIVICDESK_ESCALATE_TO": "duty",
        "CIVICDESK_DEFAULT_LANGUAGE": "en",
        # The citizen-facing bot.
        "CIVICDESK_MATRIX_USER_ID": citizen_bot.user.user_id,
        "CIVICDESK_MATRIX_ACCESS_TOKEN": citizen_bot.user.access_token,
        "CIVICDESK_MATRIX_API_BASE": synapse.url,
        "CIVICDESK_MATRIX_SYNC_TIMEOUT": "2",
        # The duty-desk bot, in the staff room.
        "CIVICDESK_DUTY_ADAPTER": "matrix",
        "CIVICDESK_DUTY_USER_ID": duty_bot.user.user_id,
        "CIVICDESK_DUTY_ACCESS_TOKEN": duty_bot.user.access_token,
        "CIVICDESK_DUTY_API_BASE": synapse.url,
        "CIVICDESK_DUTY_SYNC_TIMEOUT": "2",
        "CIVICDESK_DUTY_STAFF_ROOM": staff_room,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
    }


async def show_ticket(database: Path, reference: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`civicdesk escalations show REF --json`, as an operator runs it (in a thread: the command
    runs an event loop of its own)."""
    out = StringIO()
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    args = ["escalations", "show", reference, "--json"]
    assert await asyncio.to_thread(cli, args, out) == 0
    return json.loads(out.getvalue())


def joined(user_id: str) -> Callable[[Event], bool]:
    def match(event: Event) -> bool:
        content = event.get("content", {})
        return bool(
            event["type"] == "m.room.member"
            and event.get("state_key") == user_id
            and content.get("membership") == "join"
        )

    return match


async def test_a_staff_answer_in_the_tickets_thread_reaches_the_citizen_in_their_room(
    synapse: Synapse,
    aiohttp_client: Any,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = time.monotonic()
    tag = secrets.token_hex(3)
    citizen_bot = Person(http, synapse.url, synapse.register(f"civicdesk-{tag}"))
    duty_bot = Person(http, synapse.url, synapse.register(f"civicdesk-duty-{tag}"))
    citizen = Person(http, synapse.url, synapse.register(f"citizen-{tag}"))
    staff = Person(http, synapse.url, synapse.register(f"li-{tag}"))
    await staff.set_name(STAFF_NAME)

    # The deployer's part: a staff room with the staff in it, the duty-desk bot invited.
    staff_room = await staff.room(duty_bot.user.user_id)
    database = tmp_path / "d.db"
    environ = deployment(synapse, citizen_bot, duty_bot, staff_room, database)
    app, _, _ = await served_app(environ, SMALL_KB)
    await aiohttp_client(app)  # starts the app: its poll runner reads both bots' /sync
    # The duty-desk bot accepts the invitation on its first poll.
    await staff.wait_for(staff_room, joined(duty_bot.user.user_id), "duty bot's join")

    # A citizen brings the citizen-facing bot into a private room and asks.
    room = await citizen.room(citizen_bot.user.user_id, direct=True)
    question = await citizen.say(room, CASE_QUESTION)
    ack = await citizen.reply_to(room, question, citizen_bot.user.user_id)

    def is_ticket(event: Event) -> bool:
        body = event.get("content", {}).get("body", "")
        return event["sender"] == duty_bot.user.user_id and TICKET.match(body) is not None

    ticket = await staff.wait_for(staff_room, is_ticket, "ticket")
    found = TICKET.match(ticket["content"]["body"])
    assert found is not None
    reference = found.group(1)
    assert reference in ack["content"]["body"]  # the citizen was given the same code
    assert CASE_QUESTION in ticket["content"]["body"]
    assert ticket["content"]["msgtype"] == "m.text"  # notifies staff (a notice would not)
    assert relation(ticket) == {}  # at the top level of the staff room

    # The staff member answers in the ticket's thread, as Element sends it.
    thread = {
        "rel_type": "m.thread",
        "event_id": ticket["event_id"],
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": ticket["event_id"]},
    }
    await staff.say(staff_room, ANSWER, relates=thread)

    def is_answer(event: Event) -> bool:
        body: str | None = event.get("content", {}).get("body")
        return event["sender"] == citizen_bot.user.user_id and body == ANSWER

    answer = await citizen.wait_for(room, is_answer, "staff answer")
    assert replied_to(answer) == question  # a reply to the question, in the citizen's room

    def is_update(event: Event) -> bool:
        body: str = event.get("content", {}).get("body", "")
        return (
            event["sender"] == duty_bot.user.user_id
            and relation(event).get("event_id") == ticket["event_id"]
            and body.startswith(f"[{reference}] answered")
        )

    update = await staff.wait_for(staff_room, is_update, "'answered' in the ticket's thread")
    assert relation(update) == thread  # in the thread, with the fallback to the ticket
    assert STAFF_NAME in update["content"]["body"]

    record = await show_ticket(database, reference, monkeypatch)
    assert (record["status"], record["answered_by"]) == ("closed", STAFF_NAME)
    assert [e["kind"] for e in record["history"]] == ["opened", "answered"]
    assert record["history"][1]["channel"] == "duty"
    print(f"handoff through Synapse in {time.monotonic() - started:.1f} s")

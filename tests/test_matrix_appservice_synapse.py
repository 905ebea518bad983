"""Matrix for real, as an application service: a Synapse homeserver with civicdesk's
registration pushes transactions to the app on a loopback port.

Issue 12, finding 2: a citizen opens a direct chat with the bot, the bot joins; civicdesk
restarts (a new process knows no room); the citizen's next message names nobody. It must be
answered privately, not taken for group chatter and acknowledged as handled."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from synapse_support import NEEDS_SYNAPSE, Person, Synapse, free_port, running_synapse
from web_support import SMALL_KB, served_app

pytestmark = NEEDS_SYNAPSE

QUESTION = "How do I pay the court fee?"
ANSWER = "Pay online or at the litigation service centre. https://court.example.gov/fees"
BOT = "@civicdesk:localhost"
AS_TOKEN = "as-" + secrets.token_hex(12)
HS_TOKEN = "hs-" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def civicdesk_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def appservice_synapse(
    tmp_path_factory: pytest.TempPathFactory, civicdesk_port: int
) -> Iterator[Synapse]:
    folder = tmp_path_factory.mktemp("synapse-as")
    registration = folder / "civicdesk.yaml"
    registration.write_text(  # JSON is YAML
        json.dumps(
            {
                "id": "civicdesk",
                "url": f"http://127.0.0.1:{civicdesk_port}/webhooks/matrix",
                "as_token": AS_TOKEN,
                "hs_token": HS_TOKEN,
                "sender_localpart": "civicdesk",
                "namespaces": {
                    "users": [{"exclusive": True, "regex": "@civicdesk:localhost"}],
                    "rooms": [],
                    "aliases": [],
                },
                "rate_limited": False,
            }
        )
    )
    with running_synapse(folder, (registration,)) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def start_civicdesk(aiohttp_server: Any, synapse: Synapse, port: int, db: Path) -> Any:
    environ = {
        "CIVICDESK_CHANNELS": "matrix",
        "CIVICDESK_MATRIX_MODE": "appservice",
        "CIVICDESK_MATRIX_USER_ID": BOT,
        "CIVICDESK_MATRIX_AS_TOKEN": AS_TOKEN,
        "CIVICDESK_MATRIX_HS_TOKEN": HS_TOKEN,
        "CIVICDESK_MATRIX_API_BASE": synapse.url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
    }
    app, _, _ = await served_app(environ, SMALL_KB)
    return await aiohttp_server(app, host="127.0.0.1", port=port)


async def joined(person: Person, room_id: str, user_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        members = await person.call("GET", f"/rooms/{quote(room_id)}/joined_members")
        if user_id in members["joined"]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{user_id} did not join {room_id} within {timeout:g} s")


async def test_a_first_direct_message_after_a_restart_is_answered_privately(
    appservice_synapse: Synapse,
    civicdesk_port: int,
    aiohttp_server: Any,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    synapse = appservice_synapse
    citizen = Person(http, synapse.url, synapse.register(f"citizen-{secrets.token_hex(3)}"))
    first = await start_civicdesk(aiohttp_server, synapse, civicdesk_port, tmp_path / "d.db")
    room_id = await citizen.room(BOT, direct=True)
    await joined(citizen, room_id, BOT)  # the bot accepted the invitation
    await first.close()  # the restart: the next process knows nothing of the room

    await start_civicdesk(aiohttp_server, synapse, civicdesk_port, tmp_path / "d.db")
    question = await citizen.say(room_id, QUESTION)  # no mention: a direct chat needs none
    reply = await citizen.reply_to(room_id, question, BOT)

    assert reply["content"]["body"] == ANSWER
    assert reply["content"]["m.mentions"] == {"user_ids": []}  # answered as a private question

"""Matrix for real: a Synapse homeserver (tests/synapse_support.py), a citizen's account on it,
and civicdesk's bot account reading /sync through the real app, with its poll runner and workers.

The citizen makes a room, invites the bot and asks; the bot joins on its own and its answer
arrives in the room as a reply to the question. Skipped, saying how to install Synapse, when
`.ci/.synapse-venv` is missing outside CI (CI installs it with `bash .ci/synapse install`)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import aiohttp
from synapse_support import NEEDS_SYNAPSE, MatrixUser, Person, Synapse
from web_support import SMALL_KB, count_rows, served_app

pytestmark = NEEDS_SYNAPSE

QUESTION = "How do I pay the court fee?"
ANSWER = "Pay online or at the litigation service centre. https://court.example.gov/fees"


async def start_civicdesk(aiohttp_client: Any, synapse: Synapse, bot: MatrixUser, db: Path) -> Any:
    environ = {
        "CIVICDESK_CHANNELS": "matrix",
        "CIVICDESK_MATRIX_USER_ID": bot.user_id,
        "CIVICDESK_MATRIX_ACCESS_TOKEN": bot.access_token,
        "CIVICDESK_MATRIX_API_BASE": synapse.url,
        "CIVICDESK_MATRIX_SYNC_TIMEOUT": "2",
        "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
    }
    app, _, _ = await served_app(environ, SMALL_KB)
    return await aiohttp_client(app)  # starts the app: its poll runner reads the bot's /sync


async def test_a_question_in_a_group_room_is_answered_as_a_reply_when_it_mentions_the_bot(
    synapse: Synapse, aiohttp_client: Any, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    tag = secrets.token_hex(3)
    bot = synapse.register(f"civicdesk-{tag}")
    citizen = Person(http, synapse.url, synapse.register(f"citizen-{tag}"))
    neighbour = synapse.register(f"neighbour-{tag}")
    await start_civicdesk(aiohttp_client, synapse, bot, tmp_path / "d.db")

    room_id = await citizen.room(bot.user_id, neighbour.user_id)
    await citizen.say(room_id, "Is anyone else here about the parking permit?")
    question = await citizen.say(room_id, QUESTION, mention=bot.user_id)

    reply = await citizen.reply_to(room_id, question, bot.user_id)

    # In a group room the answer is a reply to the question (clients show the question above
    # it), and m.mentions makes the asker's client notify them; the text itself names nobody.
    assert reply["content"]["body"] == ANSWER
    assert reply["content"]["msgtype"] == "m.notice"
    assert reply["content"]["m.mentions"] == {"user_ids": [citizen.user.user_id]}
    # Only the question was taken: the chatter before it named nobody and was sent earlier.
    assert count_rows(tmp_path / "d.db", "inbox") == 1


async def test_a_private_room_is_answered_without_a_mention(
    synapse: Synapse, aiohttp_client: Any, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    tag = secrets.token_hex(3)
    bot = synapse.register(f"civicdesk-{tag}")
    citizen = Person(http, synapse.url, synapse.register(f"citizen-{tag}"))
    await start_civicdesk(aiohttp_client, synapse, bot, tmp_path / "d.db")

    room_id = await citizen.room(bot.user_id, direct=True)
    question = await citizen.say(room_id, QUESTION)

    reply = await citizen.reply_to(room_id, question, bot.user_id)

    assert reply["content"]["body"] == ANSWER
    assert reply["content"]["m.mentions"] == {"user_ids": []}
    assert count_rows(tmp_path / "d.db", "inbox") == 1

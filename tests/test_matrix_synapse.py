"""Matrix for real: a Synapse homeserver (tests/synapse_support.py), a citizen's account on it,
and civicdesk's bot account reading /sync through the real app, with its poll runner and workers.

The citizen makes a room, invites the bot and asks; the bot joins on its own and its answer
arrives in the room as a reply to the question. Skipped, saying how to install Synapse, when
`.ci/.synapse-venv` is missing (CI installs it with `bash .ci/synapse install`)."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from synapse_support import MISSING, SYNAPSE_PYTHON, MatrixUser, Synapse, running_synapse
from web_support import SMALL_KB, count_rows, served_app

pytestmark = pytest.mark.skipif(not SYNAPSE_PYTHON.exists(), reason=MISSING)

QUESTION = "How do I pay the court fee?"
ANSWER = "Pay online or at the litigation service centre. https://court.example.gov/fees"
WAIT = 60.0  # seconds for an answer to arrive: generous, it takes about one


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    started = time.monotonic()
    with running_synapse(tmp_path_factory.mktemp("synapse")) as server:
        print(f"Synapse up in {time.monotonic() - started:.1f} s at {server.url}")
        yield server


class Citizen:
    """A person with a Matrix client: makes rooms, invites, talks, and reads the room."""

    def __init__(self, http: aiohttp.ClientSession, base: str, user: MatrixUser) -> None:
        self.http, self.base, self.user = http, base, user
        self.since: str | None = None

    async def call(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        headers = {"Authorization": f"Bearer {self.user.access_token}"}
        url = f"{self.base}/_matrix/client/v3{path}"
        async with self.http.request(
            method, url, json=body, params=params, headers=headers
        ) as response:
            data = await response.json()
            assert response.status == 200, (method, path, response.status, data)
            return data

    async def room(self, *invite: str, direct: bool = False) -> str:
        body = {"preset": "private_chat", "invite": list(invite), "is_direct": direct}
        room_id: str = (await self.call("POST", "/createRoom", body))["room_id"]
        return room_id

    async def say(self, room_id: str, text: str, *, mention: str | None = None) -> str:
        content: dict[str, Any] = {"msgtype": "m.text", "body": text, "m.mentions": {}}
        if mention:
            content["body"] = f"{mention}: {text}"
            content["m.mentions"] = {"user_ids": [mention]}
        txn = secrets.token_hex(8)
        path = f"/rooms/{quote(room_id)}/send/m.room.message/{txn}"
        event_id: str = (await self.call("PUT", path, content))["event_id"]
        return event_id

    async def reply_to(self, room_id: str, event_id: str, sender: str) -> dict[str, Any]:
        """The first message of `sender` in the room that replies to `event_id`."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            params = {"timeout": "5000"}
            if self.since:
                params["since"] = self.since
            data = await self.call("GET", "/sync", **params)
            self.since = data["next_batch"]
            room = data.get("rooms", {}).get("join", {}).get(room_id, {})
            for event in room.get("timeline", {}).get("events", []):
                content = event.get("content", {})
                relates = content.get("m.relates_to", {})
                answered = relates.get("m.in_reply_to", {}).get("event_id")
                if event["sender"] == sender and answered == event_id:
                    found: dict[str, Any] = event
                    return found
        raise AssertionError(f"no reply from {sender} to {event_id} within {WAIT:g} s")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


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
    citizen = Citizen(http, synapse.url, synapse.register(f"citizen-{tag}"))
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
    citizen = Citizen(http, synapse.url, synapse.register(f"citizen-{tag}"))
    await start_civicdesk(aiohttp_client, synapse, bot, tmp_path / "d.db")

    room_id = await citizen.room(bot.user_id, direct=True)
    question = await citizen.say(room_id, QUESTION)

    reply = await citizen.reply_to(room_id, question, bot.user_id)

    assert reply["content"]["body"] == ANSWER
    assert reply["content"]["m.mentions"] == {"user_ids": []}
    assert count_rows(tmp_path / "d.db", "inbox") == 1

"""Stand-ins for the Telegram Bot API and the Slack Web API on port 0, shared by the Telegram and
Slack adapter tests. They answer the way the real APIs document (Telegram: `{"ok": true,
"result": Message}`; Slack: HTTP 200 `{"ok": true, "channel", "ts"}`) unless a test scripts
another answer, and record every call for the test to check."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from fake_apis import serve, until


@dataclass(frozen=True)
class Call:
    path: str
    headers: Mapping[str, str]
    body: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


Answerer = Callable[[Call, int], Answer]


@dataclass
class FakeApi:
    answer: Answerer
    calls: list[Call] = field(default_factory=list)
    scripted: list[Answer] = field(default_factory=list)  # answered first, in order
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        # Reads (Slack's users.info) are GETs with their arguments in the query.
        body = dict(request.query) if request.method == "GET" else json.loads(await request.read())
        call = Call(request.path, dict(request.headers), body)
        self.calls.append(call)
        self.arrived.set()
        answer = self.scripted.pop(0) if self.scripted else self.answer(call, len(self.calls))
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Call]:
        await until(self.arrived, lambda: len(self.calls) >= count, f"{count} calls", timeout)
        return self.calls


def telegram_ok(call: Call, number: int) -> Answer:
    message = {
        "message_id": 9000 + number,
        "chat": {"id": call.body["chat_id"]},
        "date": 1700000000,
        "text": call.body["text"],
    }
    return Answer(200, {"ok": True, "result": message})


STAFF_NAMES = {"U0LI": "Li Wei"}  # the members the fake Slack workspace knows


def slack_ok(call: Call, number: int) -> Answer:
    if call.path.endswith("/users.info"):
        user = call.body.get("user")
        if user not in STAFF_NAMES:
            return Answer(200, {"ok": False, "error": "user_not_found"})
        profile = {"display_name": "", "real_name": STAFF_NAMES[user]}
        return Answer(200, {"ok": True, "user": {"id": user, "name": "li", "profile": profile}})
    ts = f"1700000000.{number:06d}"
    return Answer(200, {"ok": True, "channel": call.body["channel"], "ts": ts})


@asynccontextmanager
async def fake_api(answer: Answerer, prefix: str = "") -> AsyncIterator[FakeApi]:
    """A fake API; its `url` is the base URL to configure (`prefix` is Slack's /api)."""
    fake = FakeApi(answer)
    async with serve(
        [("POST", "/{tail:.*}", fake.handle), ("GET", "/{tail:.*}", fake.handle)]
    ) as url:
        fake.url = url + prefix
        yield fake


async def settled(database: Path, timeout: float = 5.0) -> None:
    """Wait until the inbox and outbox of a served app's SQLite file have nothing left to do."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(database) as connection:
            (busy,) = connection.execute(
                "SELECT (SELECT count(*) FROM inbox WHERE status IN ('new','claimed'))"
                " + (SELECT count(*) FROM outbox WHERE status IN ('pending','sending'))"
            ).fetchone()
        if busy == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("work still pending")

"""A fake Mastodon instance on port 0, written from the API docs: mention notifications with
min_id / limit and rate-limit headers, status posts with Idempotency-Key."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from fake_apis import serve, until

TOKEN = "mastodon-test-token"
FIXTURES = Path(__file__).parent / "fixtures" / "mastodon"


def recorded_mention() -> dict[str, Any]:
    """The real server's mention notification (Mastodon.py's cassette)."""
    data = json.loads((FIXTURES / "notifications_mentions_response.json").read_text("utf-8"))
    notification: dict[str, Any] = data[0]
    return notification


def sse_notifications() -> list[dict[str, Any]]:
    """The notification events of the recorded user stream (a public and a direct mention)."""
    found = []
    for block in (FIXTURES / "streaming_user_sse.txt").read_text("utf-8").split("\n\n"):
        lines = block.strip().splitlines()
        if "event: notification" in lines:
            data = next(line[len("data: ") :] for line in lines if line.startswith("data: "))
            found.append(json.loads(data))
    return found


def mention(number: int, html: str, visibility: str = "public", acct: str = "citizen") -> Any:
    """A mention notification shaped like the recorded one, with another id and text."""
    notification = copy.deepcopy(recorded_mention())
    notification["id"] = str(number)
    status = notification["status"]
    status["id"] = str(117_000_000_000_000_000 + number)
    status["content"] = html
    status["visibility"] = visibility
    status["account"]["acct"] = acct
    status["account"]["id"] = f"9{number}"
    return notification


@dataclass
class FakeMastodon:
    notifications: list[dict[str, Any]] = field(default_factory=list)
    gets: list[dict[str, str]] = field(default_factory=list)
    posts: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    remaining: str = "299"
    answer: tuple[int, dict[str, Any], dict[str, str]] | None = None
    posted: asyncio.Event = field(default_factory=asyncio.Event)
    polled: asyncio.Event = field(default_factory=asyncio.Event)
    base: str = ""

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    async def notifications_page(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.gets.append(query)
        self.polled.set()
        if not self._authorised(request):
            return web.json_response({"error": "The access token is invalid"}, status=401)
        assert request.query.getall("types[]") == ["mention"]
        chosen = sorted(self.notifications, key=lambda n: int(n["id"]))
        limit = int(query.get("limit", "40"))
        if "min_id" in query:  # the page right after min_id, newest first within it
            chosen = [n for n in chosen if int(n["id"]) > int(query["min_id"])][:limit]
        else:
            chosen = chosen[-limit:]
        headers = {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": self.remaining,
            "X-RateLimit-Reset": "2023-11-14T22:18:20.000Z",
        }
        return web.json_response(list(reversed(chosen)), headers=headers)

    async def post(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.posts.append((dict(request.headers), body))
        self.posted.set()
        if not self._authorised(request):
            return web.json_response({"error": "The access token is invalid"}, status=401)
        if self.answer is not None:
            status_code, answer, headers = self.answer
            return web.json_response(answer, status=status_code, headers=headers)
        recorded = json.loads((FIXTURES / "status_post_direct_reply.json").read_text("utf-8"))
        reply = {**recorded["response"], "visibility": body["visibility"]}
        return web.json_response(reply)

    async def wait_posts(self, count: int) -> list[tuple[dict[str, str], dict[str, Any]]]:
        await until(self.posted, lambda: len(self.posts) >= count, f"{count} statuses")
        return self.posts


@asynccontextmanager
async def fake_mastodon() -> AsyncIterator[FakeMastodon]:
    """The fake instance on port 0; its `base` is the channel's API_BASE."""
    fake = FakeMastodon()
    routes = [
        ("GET", "/api/v1/notifications", fake.notifications_page),
        ("POST", "/api/v1/statuses", fake.post),
    ]
    async with serve(routes) as url:
        fake.base = url
        yield fake

"""A fake of X's API v2 on port 0: posts, direct messages, media upload, the mentions timeline
and /2/users/me, each call's OAuth 1.0a signature checked (written from RFC 5849, not with the
adapter's code) and recorded."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web
from fake_apis import serve, until

CONSUMER_KEY = "x-consumer-key"
CONSUMER_SECRET = "x-consumer-secret"
ACCESS_TOKEN = "6253282-x-access-token"
ACCESS_TOKEN_SECRET = "x-access-token-secret"
ACCOUNT_ID = "2244994945"


def _enc(text: str) -> str:
    return quote(text, safe="-._~")


def oauth_valid(request: web.Request) -> bool:
    """Whether the request's Authorization header is a valid HMAC-SHA1 OAuth 1.0a signature."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("OAuth "):
        return False
    fields = {k: unquote(v) for k, v in re.findall(r'([\w]+)="([^"]*)"', header)}
    given = fields.pop("oauth_signature", "")
    if (
        fields.get("oauth_consumer_key") != CONSUMER_KEY
        or fields.get("oauth_token") != ACCESS_TOKEN
    ):
        return False
    params = {**dict(request.query), **fields}
    normalized = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(params.items()))
    base_url = f"{request.scheme}://{request.host}{request.path}"
    base = f"{request.method}&{_enc(base_url)}&{_enc(normalized)}"
    key = f"{CONSUMER_SECRET}&{ACCESS_TOKEN_SECRET}".encode()
    expected = base64.b64encode(hmac.new(key, base.encode(), hashlib.sha1).digest()).decode()
    return hmac.compare_digest(given, expected)


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeX:
    calls: list[Call] = field(default_factory=list)
    answers: dict[str, list[web.Response]] = field(default_factory=dict)  # path → queued answers
    mentions: list[dict[str, Any]] = field(default_factory=list)  # pages, in order
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    uploads: list[tuple[str, bytes, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        if not oauth_valid(request):
            return web.json_response({"title": "Unauthorized", "status": 401}, status=401)
        if request.path == "/2/media/upload":
            body: Any = await self._upload(request)
        else:
            raw = await request.read()
            body = json.loads(raw) if raw else None
        self.calls.append(Call(request.method, request.path, dict(request.query), body))
        self.arrived.set()
        queued = self.answers.get(request.path)
        if queued:
            return queued.pop(0)
        return self._answer(request, body)

    async def _upload(self, request: web.Request) -> dict[str, str]:
        form = await request.post()
        media = form["media"]
        assert isinstance(media, web.FileField)
        self.uploads.append((media.content_type, media.file.read(), str(form["media_category"])))
        return {"media_category": str(form["media_category"])}

    def _answer(self, request: web.Request, body: Any) -> web.Response:
        number = len(self.calls)
        if request.path == "/2/tweets":
            return web.json_response(
                {"data": {"id": f"18650000000000009{number:02d}", "text": body["text"]}}, status=201
            )
        if request.path.startswith("/2/dm_conversations/with/"):
            return web.json_response(
                {"data": {"dm_conversation_id": "c", "dm_event_id": f"9{number}"}}, status=201
            )
        if request.path == "/2/media/upload":
            return web.json_response(
                {"data": {"id": "1880028106020515840", "media_key": "3_1880028106020515840"}}
            )
        if request.path == "/2/users/me":
            return web.json_response({"data": {"id": ACCOUNT_ID, "username": "CourtDesk"}})
        if request.path.endswith("/mentions"):
            page = self.mentions.pop(0) if self.mentions else {"meta": {"result_count": 0}}
            return web.json_response(page)
        return web.json_response({"title": "Not Found"}, status=404)

    async def wait_for(self, count: int) -> list[Call]:
        await until(self.arrived, lambda: len(self.calls) >= count, f"{count} X API calls")
        return self.calls


@asynccontextmanager
async def fake_x() -> AsyncIterator[tuple[FakeX, str]]:
    fake = FakeX()
    routes = [
        ("POST", "/2/tweets", fake.handle),
        ("POST", "/2/dm_conversations/with/{participant}/messages", fake.handle),
        ("POST", "/2/media/upload", fake.handle),
        ("GET", "/2/users/me", fake.handle),
        ("GET", "/2/users/{id}/mentions", fake.handle),
    ]
    async with serve(routes) as url:
        yield fake, url

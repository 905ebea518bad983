"""A fake Weibo API on port 0, written from the API docs (open.weibo.com/wiki/2/...): mention
lists with since_id / max_id / count, comment and private-message posts, JSON error codes."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from fake_apis import serve, until

TOKEN = "2.00weibo-test-token"
APP_SECRET = "xyz123xyz"
OWN_UID = "1902538057"


def user(uid: str, name: str) -> dict[str, Any]:
    return {"id": int(uid), "idstr": uid, "screen_name": name, "name": name}


def status(sid: str, text: str, uid: str = "2489518277", name: str = "市民小王") -> dict[str, Any]:
    return {
        "created_at": "Tue May 31 17:46:55 +0800 2011",
        "id": int(sid),
        "idstr": sid,
        "mid": sid,
        "text": text,
        "user": user(uid, name),
    }


def comment(
    cid: str, text: str, on: dict[str, Any], uid: str = "2489518277", name: str = "市民小王"
) -> dict[str, Any]:
    return {
        "created_at": "Tue May 31 17:50:01 +0800 2011",
        "id": int(cid),
        "idstr": cid,
        "mid": cid,
        "text": text,
        "user": user(uid, name),
        "status": on,
    }


def sign(timestamp: str, nonce: str, secret: str = APP_SECRET) -> str:
    """Written from the docs, not with the adapter's code."""
    return hashlib.sha1("".join(sorted([secret, timestamp, nonce])).encode()).hexdigest()


@dataclass
class FakeWeibo:
    statuses: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    comments_to_me: list[dict[str, Any]] = field(default_factory=list)  # on the account's posts
    own_statuses: list[dict[str, Any]] = field(default_factory=list)  # statuses/user_timeline
    gets: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    posts: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    answer: tuple[int, dict[str, Any]] | None = None  # the next post's answer, when set
    posted: asyncio.Event = field(default_factory=asyncio.Event)
    polled: asyncio.Event = field(default_factory=asyncio.Event)

    async def mentions(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.gets.append((request.path, query))
        self.polled.set()
        if query.get("access_token") != TOKEN:
            return web.json_response({"error_code": 21327, "error": "expired_token"}, status=401)
        if request.path.endswith("account/get_uid.json"):
            return web.json_response({"uid": int(OWN_UID)})
        key = "statuses" if "statuses" in request.path else "comments"
        items = self.statuses if key == "statuses" else self.comments
        if request.path.endswith("comments/to_me.json"):
            items = self.comments_to_me
        elif request.path.endswith("statuses/user_timeline.json"):
            items = self.own_statuses
        since = int(query.get("since_id", "0"))
        most = int(query["max_id"]) if "max_id" in query else None
        chosen = [i for i in items if int(i["idstr"]) > since]
        chosen = [i for i in chosen if most is None or int(i["idstr"]) <= most]
        chosen.sort(key=lambda i: int(i["idstr"]), reverse=True)
        return web.json_response({key: chosen[: int(query.get("count", "20"))]})

    async def post(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        self.posts.append((request.path, dict(request.query), form))
        self.posted.set()
        if self.answer is not None:
            status_code, body = self.answer
            return web.json_response(body, status=status_code)
        if request.path.endswith("messages/reply.json"):
            return web.json_response({"result": True})
        return web.json_response({"id": 5315630371706462, "idstr": "5315630371706462"})

    async def wait_posts(self, count: int) -> list[tuple[str, dict[str, str], dict[str, str]]]:
        await until(self.posted, lambda: len(self.posts) >= count, f"{count} posts")
        return self.posts


@asynccontextmanager
async def fake_weibo() -> AsyncIterator[tuple[FakeWeibo, str]]:
    """The fake API on port 0, and its base URL (the channel's API_BASE)."""
    fake = FakeWeibo()
    gets = (
        "statuses/mentions",
        "comments/mentions",
        "comments/to_me",
        "account/get_uid",
        "statuses/user_timeline",
    )
    posts = ("comments/create", "comments/reply", "messages/reply")
    routes = [("GET", f"/2/{path}.json", fake.mentions) for path in gets]
    routes += [("POST", f"/2/{path}.json", fake.post) for path in posts]
    async with serve(routes) as url:
        yield fake, url


def push_query(timestamp: str, nonce: str = "57155157") -> dict[str, str]:
    return {"signature": sign(timestamp, nonce), "timestamp": timestamp, "nonce": nonce}


def text_push(text: str, sender: int = 2489518277, created: str = "") -> bytes:
    body = {
        "type": "text",
        "receiver_id": int(OWN_UID),
        "sender_id": sender,
        "created_at": created or "Mon Jul 16 18:09:20 +0800 2012",
        "text": text,
        "data": {},
    }
    return json.dumps(body, ensure_ascii=False).encode()

"""Fake platforms that take announcements, on port 0, written from their API docs, for the
publishing tests: Weibo (`statuses/share`, `statuses/user_timeline`, comments on own posts),
Mastodon (`POST /api/v2/media`, `POST /api/v1/statuses` honouring `Idempotency-Key`, mention
notifications), Telegram (`sendMessage`, `sendPhoto`), Matrix (`PUT .../send/{txnId}` dropping a
repeated transaction id, `POST /_matrix/media/v3/upload`, an idle `/sync`) and an SMTP server
(aiosmtpd) standing for the mailing list.

Every fake records a post when the request arrives, as a platform that creates the post before
its answer is lost would; `hold` keeps the answers back (a publication in flight) until it is
released. `posts` counts what each platform really posted, after its own deduplication.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import itertools
import json
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web
from aiosmtpd.controller import Controller
from fake_apis import serve, until
from fake_mastodon import mention
from serve_support import free_port

WEIBO_TOKEN = "2.00weibo-publish-token"
WEIBO_UID = "1902538057"
MASTODON_TOKEN = "mastodon-publish-token"
TELEGRAM_TOKEN = "123456789:AAHpublishTestTokenAAAAAAAAAAAAAAAAA"
MATRIX_TOKEN = "syt_matrix_publish_token"
MATRIX_ROOM = "!news:example.org"
CHANNEL_ID = -1001234567890
CHANNEL_USERNAME = "court_news"
LINK_IN_SAMPLE = "https://court.example.gov.cn/notice/2026/filing-hours"

_URL = re.compile(r"https?://\S+")


@dataclass
class Request:
    platform: str
    path: str
    headers: dict[str, str]
    fields: dict[str, Any]  # JSON body, form fields, or the query
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # name -> (type, bytes)


@dataclass
class Fakes:
    """All five; `requests` in arrival order, `posts[platform]` the posts really made."""

    requests: list[Request] = field(default_factory=list)
    posts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    replies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # answers in threads
    hold: asyncio.Event | None = None  # set: answer; None: answer at once
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    mastodon_mentions: list[dict[str, Any]] = field(default_factory=list)
    weibo_comments_to_me: list[dict[str, Any]] = field(default_factory=list)
    mastodon_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    mastodon_media_checks: dict[str, int] = field(default_factory=dict)
    matrix_txns: dict[str, str] = field(default_factory=dict)
    weibo_own: list[dict[str, Any]] = field(default_factory=list)
    mail: list[email.message.EmailMessage] = field(default_factory=list)
    mail_hold: threading.Event | None = None
    bases: dict[str, str] = field(default_factory=dict)
    smtp_port: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def record(self, request: Request) -> None:
        self.requests.append(request)
        self.arrived.set()

    def post(self, platform: str, post: dict[str, Any]) -> None:
        self.posts.setdefault(platform, []).append(post)
        self.arrived.set()

    def reply(self, platform: str, reply: dict[str, Any]) -> None:
        self.replies.setdefault(platform, []).append(reply)
        self.arrived.set()

    def next_id(self) -> int:
        return next(self._ids)

    async def held(self) -> None:
        if self.hold is not None:
            await self.hold.wait()

    async def wait(self, done: Any, what: str, timeout: float = 30.0) -> None:
        await until(self.arrived, done, what, timeout)

    def count(self, platform: str) -> int:
        return len(self.posts.get(platform, []))

    # --- Weibo --------------------------------------------------------------------------------

    async def weibo_get(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.record(Request("weibo", request.path, dict(request.headers), query))
        if query.get("access_token") != WEIBO_TOKEN:
            return web.json_response({"error_code": 21327, "error": "expired_token"}, status=401)
        if request.path.endswith("account/get_uid.json"):
            return web.json_response({"uid": int(WEIBO_UID)})
        if request.path.endswith("user_timeline.json"):
            return web.json_response({"statuses": list(reversed(self.weibo_own))})
        if request.path.endswith("comments/to_me.json"):
            since = int(query.get("since_id", "0"))
            chosen = [c for c in self.weibo_comments_to_me if int(c["idstr"]) > since]
            chosen.sort(key=lambda c: int(c["idstr"]), reverse=True)
            return web.json_response({"comments": chosen})
        key = "statuses" if "statuses" in request.path else "comments"
        return web.json_response({key: []})

    async def weibo_share(self, request: web.Request) -> web.Response:
        fields, files = await _form(request)
        self.record(Request("weibo", request.path, dict(request.headers), fields, files))
        if fields.get("access_token") != WEIBO_TOKEN:
            return web.json_response({"error_code": 21327, "error": "expired_token"}, status=401)
        text = str(fields.get("status", ""))
        if not _URL.search(text):  # the docs: the text must carry a link of the safe domain
            return web.json_response({"error_code": 10017, "error": "no url"}, status=400)
        sid = str(5_100_000_000_000_000 + self.next_id())
        # Weibo shows links as t.cn short links.
        shown = _URL.sub("http://t.cn/A6" + sid[-5:], text)
        status = {
            "id": int(sid),
            "idstr": sid,
            "mid": sid,
            "text": shown,
            "user": {"id": int(WEIBO_UID), "idstr": WEIBO_UID},
        }
        self.weibo_own.append(status)
        self.post("weibo", {"id": sid, "text": text, "pic": "pic" in files})
        await self.held()
        return web.json_response(status)

    async def weibo_comment(self, request: web.Request) -> web.Response:
        fields, _ = await _form(request)
        self.record(Request("weibo", request.path, dict(request.headers), fields))
        cid = str(5_200_000_000_000_000 + self.next_id())
        self.reply("weibo", {"path": request.path, **fields})
        return web.json_response({"id": int(cid), "idstr": cid})

    # --- Mastodon -----------------------------------------------------------------------------

    def _mastodon_ok(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {MASTODON_TOKEN}"

    async def mastodon_notifications(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.record(Request("mastodon", request.path, dict(request.headers), query))
        if not self._mastodon_ok(request):
            return web.json_response({"error": "The access token is invalid"}, status=401)
        chosen = sorted(self.mastodon_mentions, key=lambda n: int(n["id"]))
        if "min_id" in query:
            chosen = [n for n in chosen if int(n["id"]) > int(query["min_id"])]
        else:
            chosen = chosen[-int(query.get("limit", "40")) :]
        return web.json_response(list(reversed(chosen)))

    async def mastodon_media(self, request: web.Request) -> web.Response:
        fields, files = await _form(request)
        self.record(Request("mastodon", request.path, dict(request.headers), fields, files))
        if not self._mastodon_ok(request):
            return web.json_response({"error": "The access token is invalid"}, status=401)
        if "file" not in files:
            return web.json_response({"error": "Validation failed: File can't be blank"}, 422)
        media_id = str(110_000 + self.next_id())
        self.mastodon_media_checks[media_id] = 0
        return web.json_response({"id": media_id, "type": "image", "url": None}, status=202)

    async def mastodon_media_check(self, request: web.Request) -> web.Response:
        """The docs: 206 while the picture is processed, 200 once it is (here: at the 2nd)."""
        media_id = request.match_info["id"]
        self.record(Request("mastodon", request.path, dict(request.headers), {}))
        if media_id not in self.mastodon_media_checks:
            return web.json_response({"error": "Record not found"}, status=404)
        self.mastodon_media_checks[media_id] += 1
        done = self.mastodon_media_checks[media_id] >= 2
        url = f"https://files.social.example/{media_id}.png" if done else None
        return web.json_response(
            {"id": media_id, "type": "image", "url": url}, status=200 if done else 206
        )

    async def mastodon_status(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.record(Request("mastodon", request.path, dict(request.headers), body))
        if not self._mastodon_ok(request):
            return web.json_response({"error": "The access token is invalid"}, status=401)
        key = request.headers.get("Idempotency-Key")
        if key and key in self.mastodon_keys:  # the docs: the same status, not a new one
            await self.held()
            return web.json_response(self.mastodon_keys[key])
        sid = str(111_000_000_000_000_000 + self.next_id())
        status = {
            "id": sid,
            "url": f"https://social.example/@court/{sid}",
            "content": body.get("status"),
            "visibility": body.get("visibility"),
            "in_reply_to_id": body.get("in_reply_to_id"),
            "media_attachments": [{"id": m} for m in body.get("media_ids", [])],
        }
        if key:
            self.mastodon_keys[key] = status
        if body.get("in_reply_to_id"):
            self.reply("mastodon", status)
        else:
            self.post("mastodon", status)
            await self.held()
        return web.json_response(status)

    # --- Telegram -----------------------------------------------------------------------------

    async def telegram(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            fields, files = await request.json(), {}
        else:
            fields, files = await _form(request)
        method = request.path.rsplit("/", 1)[-1]
        self.record(Request("telegram", request.path, dict(request.headers), fields, files))
        if request.path.split("/")[1] != f"bot{TELEGRAM_TOKEN}":
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        message_id = self.next_id()
        chat = {
            "id": CHANNEL_ID,
            "title": "Court news",
            "username": CHANNEL_USERNAME,
            "type": "channel",
        }
        message: dict[str, Any] = {"message_id": message_id, "chat": chat, "date": 1765000000}
        if method == "sendPhoto":
            message["caption"] = fields.get("caption")
            message["photo"] = [{"file_id": f"photo{message_id}", "width": 1, "height": 1}]
        else:
            message["text"] = fields.get("text")
        self.post("telegram", {"method": method, "message_id": message_id, **fields})
        await self.held()
        return web.json_response({"ok": True, "result": message})

    # --- Matrix -------------------------------------------------------------------------------

    def _matrix_ok(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {MATRIX_TOKEN}"

    async def matrix_sync(self, request: web.Request) -> web.Response:
        if not self._matrix_ok(request):
            return web.json_response({"errcode": "M_UNKNOWN_TOKEN"}, status=401)
        wait = min(int(request.query.get("timeout", "0")), 1000) / 1000
        await asyncio.sleep(wait)
        return web.json_response({"next_batch": "s1", "rooms": {}})

    async def matrix_upload(self, request: web.Request) -> web.Response:
        data = await request.read()
        self.record(
            Request(
                "matrix",
                request.path,
                dict(request.headers),
                dict(request.query),
                {"body": (request.content_type, data)},
            )
        )
        if not self._matrix_ok(request):
            return web.json_response({"errcode": "M_UNKNOWN_TOKEN"}, status=401)
        return web.json_response({"content_uri": f"mxc://example.org/m{self.next_id()}"})

    async def matrix_send(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.record(Request("matrix", request.path, dict(request.headers), body))
        if not self._matrix_ok(request):
            return web.json_response({"errcode": "M_UNKNOWN_TOKEN"}, status=401)
        txn = request.match_info["txn"]
        if txn not in self.matrix_txns:  # the spec: a repeated txnId is the same event
            self.matrix_txns[txn] = f"$event{self.next_id()}"
            self.post("matrix", {"room": request.match_info["room"], "txn": txn, **body})
        await self.held()
        return web.json_response({"event_id": self.matrix_txns[txn]})


async def _form(request: web.Request) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    fields: dict[str, Any] = {}
    files: dict[str, tuple[str, bytes]] = {}
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename:
                files[part.name] = (part.headers.get("Content-Type", ""), await part.read())
            else:
                fields[part.name] = await part.text()
    else:
        fields = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    return fields, files


class _ListHandler:
    """The SMTP end: takes a message, records it, then (when held) keeps the answer back."""

    def __init__(self, fakes: Fakes, loop: asyncio.AbstractEventLoop) -> None:
        self.fakes = fakes
        self.loop = loop

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.fakes.mail.append(message)  # type: ignore[arg-type]
        posted = {"rcpt": envelope.rcpt_tos, "id": message["Message-ID"]}
        self.loop.call_soon_threadsafe(self.fakes.post, "email", posted)
        hold = self.fakes.mail_hold
        while hold is not None and not hold.is_set():
            await asyncio.sleep(0.05)
        return "250 Message accepted for delivery"


@asynccontextmanager
async def fake_platforms() -> AsyncIterator[Fakes]:
    fakes = Fakes()
    weibo = [
        ("GET", "/2/account/get_uid.json", fakes.weibo_get),
        ("GET", "/2/statuses/mentions.json", fakes.weibo_get),
        ("GET", "/2/comments/mentions.json", fakes.weibo_get),
        ("GET", "/2/comments/to_me.json", fakes.weibo_get),
        ("GET", "/2/statuses/user_timeline.json", fakes.weibo_get),
        ("POST", "/2/statuses/share.json", fakes.weibo_share),
        ("POST", "/2/comments/reply.json", fakes.weibo_comment),
        ("POST", "/2/comments/create.json", fakes.weibo_comment),
    ]
    mastodon = [
        ("GET", "/api/v1/notifications", fakes.mastodon_notifications),
        ("POST", "/api/v2/media", fakes.mastodon_media),
        ("GET", "/api/v1/media/{id}", fakes.mastodon_media_check),
        ("POST", "/api/v1/statuses", fakes.mastodon_status),
    ]
    telegram = [("POST", "/{bot}/{method}", fakes.telegram)]
    matrix = [
        ("GET", "/_matrix/client/v3/sync", fakes.matrix_sync),
        ("POST", "/_matrix/media/v3/upload", fakes.matrix_upload),
        ("PUT", "/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}", fakes.matrix_send),
    ]
    # aiosmtpd checks that its server answers, so it needs the port before it starts.
    port = free_port()
    controller = Controller(
        _ListHandler(fakes, asyncio.get_running_loop()), hostname="127.0.0.1", port=port
    )
    controller.start()
    try:
        async with contextlib.AsyncExitStack() as stack:
            for name, routes in (
                ("weibo", weibo),
                ("mastodon", mastodon),
                ("telegram", telegram),
                ("matrix", matrix),
            ):
                fakes.bases[name] = await stack.enter_async_context(serve(routes))
            fakes.smtp_port = port
            yield fakes
    finally:
        if fakes.mail_hold is not None:
            fakes.mail_hold.set()
        controller.stop()


def channel_environment(fakes: Fakes, imap_port: int) -> dict[str, str]:
    """The five channels, pointed at the fakes; publishing targets set."""
    return {
        "CIVICDESK_CHANNELS": "weibo,mastodon,telegram,matrix,email",
        "CIVICDESK_WEIBO_ACCESS_TOKEN": WEIBO_TOKEN,
        "CIVICDESK_WEIBO_API_BASE": fakes.bases["weibo"],
        "CIVICDESK_WEIBO_POLL_INTERVAL": "0.5",
        "CIVICDESK_WEIBO_CLIENT_IP": "203.0.113.7",
        "CIVICDESK_MASTODON_ACCESS_TOKEN": MASTODON_TOKEN,
        "CIVICDESK_MASTODON_API_BASE": fakes.bases["mastodon"],
        "CIVICDESK_MASTODON_POLL_INTERVAL": "0.5",
        "CIVICDESK_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
        "CIVICDESK_TELEGRAM_SECRET_TOKEN": "publish-secret",
        "CIVICDESK_TELEGRAM_API_BASE": fakes.bases["telegram"],
        "CIVICDESK_TELEGRAM_PUBLISH_TO": f"@{CHANNEL_USERNAME}",
        "CIVICDESK_MATRIX_USER_ID": "@desk:example.org",
        "CIVICDESK_MATRIX_ACCESS_TOKEN": MATRIX_TOKEN,
        "CIVICDESK_MATRIX_API_BASE": fakes.bases["matrix"],
        "CIVICDESK_MATRIX_PUBLISH_ROOM": MATRIX_ROOM,
        "CIVICDESK_MATRIX_SYNC_TIMEOUT": "1",
        "CIVICDESK_EMAIL_IMAP_HOST": "127.0.0.1",
        "CIVICDESK_EMAIL_IMAP_PORT": str(imap_port),
        "CIVICDESK_EMAIL_IMAP_USER": "desk",
        "CIVICDESK_EMAIL_IMAP_PASSWORD": "imap-password",
        "CIVICDESK_EMAIL_IMAP_TLS": "none",
        "CIVICDESK_EMAIL_SMTP_HOST": "127.0.0.1",
        "CIVICDESK_EMAIL_SMTP_PORT": str(fakes.smtp_port),
        "CIVICDESK_EMAIL_SMTP_TLS": "none",
        "CIVICDESK_EMAIL_FROM": "Court Desk <desk@court.example.gov.cn>",
        "CIVICDESK_EMAIL_PUBLISH_TO": "news@lists.court.example.gov.cn",
        "CIVICDESK_EMAIL_POLL_INTERVAL": "3600",
    }


def mastodon_reply(number: int, in_reply_to: str, text: str) -> dict[str, Any]:
    """A mention notification of a reply under one of the account's statuses (clients put the
    author's handle in a reply, so it is a mention), shaped like the recorded one."""
    notification: dict[str, Any] = mention(number, f"<p>@court {text}</p>")
    notification["status"]["in_reply_to_id"] = in_reply_to
    return notification


def weibo_comment_on(cid: str, status_id: str, text: str) -> dict[str, Any]:
    """A comment under the account's status that does not @ it (comments/to_me)."""
    return {
        "created_at": "Tue Dec 08 10:00:00 +0800 2026",
        "id": int(cid),
        "idstr": cid,
        "mid": cid,
        "text": text,
        "user": {"id": 2489518277, "idstr": "2489518277", "screen_name": "市民小王"},
        "status": {
            "id": int(status_id),
            "idstr": status_id,
            "user": {"id": int(WEIBO_UID), "idstr": WEIBO_UID},
        },
    }


def body_json(request: Request) -> str:
    return json.dumps(request.fields, ensure_ascii=False)

"""The HTTP edge: routes, and the translation of aiohttp requests into adapters' neutral types.

The webhook handler does as little as possible (DESIGN.md, "The path of a message"): check the
size, let the adapter verify and parse the raw bytes, store the messages durably, answer. Each
refusal is a specific exception turned into a status here, with a message saying what to do.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Protocol, cast, runtime_checkable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from bot.config.settings import Settings
from bot.gateway.reload import KnowledgeHolder
from bot.platform.adapter import (
    Adapter,
    BadRequest,
    HttpReply,
    Preparer,
    RawRequest,
    RetryLater,
    Unauthorized,
)
from bot.platform.messages import InboundMessage
from bot.platform.params import bounded_text, decimal, whole_number
from bot.runtime.metrics import CONTENT_TYPE, Metrics
from bot.storage.engine import DataRefused, StoreUnavailable

log = logging.getLogger("civicdesk.web")

LONG_POLL_SECONDS = 25.0  # below the idle timeout of common proxies (60 s)
PING_TIMEOUT = 3.0
BODY_TIMEOUT = 30.0  # seconds for a request's body to arrive once its head has
# Platforms deliver with POST; Matrix application services receive transactions with PUT.
DELIVERY_METHODS = ("POST", "PUT")
MAX_SEQ = 2**63 - 1  # outbox ids are 64-bit integers
UNKNOWN = "-"  # the metrics label of a channel that does not exist: URLs must not make labels


class InboxStore(Protocol):
    """What the web layer needs of `bot.storage.store.Store`."""

    async def accept(self, messages: Sequence[InboundMessage]) -> list[bool]: ...
    async def ping(self) -> None: ...
    async def queue_depths(self) -> dict[str, int]: ...
    async def load_cursor(self, channel: str) -> str | None: ...
    async def conversation_replies(
        self, channel: str, conversation: str, after: int, limit: int = 50
    ) -> list[Any]: ...
    async def save_cursor(self, channel: str, cursor: str) -> None: ...
    async def close(self) -> None: ...


class Runnable(Protocol):
    """What the app needs of `bot.gateway.worker.Workers`."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def notify(self) -> None: ...


# (conversation, after outbox id) -> that conversation's outbox rows after it (Store)
OutboxReader = Callable[[str, int], Awaitable[list[Any]]]


@runtime_checkable
class LiveChat(Protocol):
    """An adapter whose replies a page fetches by long poll (the web chat)."""

    name: str

    async def replies(
        self, conversation: str, after: int, timeout: float
    ) -> list[dict[str, Any]]: ...

    def read_outbox(self, reader: OutboxReader) -> None: ...

    def stop_waiting(self) -> None: ...


@dataclass
class Gateway:
    """Everything a request handler may need, stored once on the app under `GATEWAY`."""

    settings: Settings
    adapters: Mapping[str, Adapter]
    store: InboxStore
    knowledge: KnowledgeHolder
    metrics: Metrics
    workers: Runnable | None = None
    chat: LiveChat | None = None  # the web chat, when a channel of it is configured


GATEWAY = web.AppKey("gateway", Gateway)


def json_response(status: int, data: Mapping[str, Any], **headers: str) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(data, ensure_ascii=False),
        content_type="application/json",
        headers=headers or None,
    )


def error(status: int, message: str, **headers: str) -> web.Response:
    return json_response(status, {"error": message}, **headers)


def _reply(reply: HttpReply) -> web.Response:
    headers = dict(reply.headers) if reply.headers else None
    # aiohttp takes the charset apart from the type ("text/plain; charset=utf-8").
    content_type, _, parameters = reply.content_type.partition(";")
    charset = parameters.strip().removeprefix("charset=").strip() or None
    return web.Response(
        status=reply.status,
        body=reply.body,
        headers=headers,
        content_type=content_type.strip(),
        charset=charset,
    )


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refused above `limit` before reading when the length is declared, and
    while reading otherwise (the app's client_max_size)."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(request, limit)
    try:
        if request.content.is_eof():  # all there already (most webhooks): no timer needed
            body = await request.read()
        else:
            async with asyncio.timeout(BODY_TIMEOUT):  # a body sent a byte at a time ends here
                body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(request, limit) from None
    except TimeoutError:
        raise web.HTTPRequestTimeout(
            text=json.dumps({"error": f"the body took longer than {BODY_TIMEOUT:g} s to arrive"}),
            content_type="application/json",
        ) from None
    if len(body) > limit:
        raise _too_large(request, limit)
    return body


def _too_large(request: web.Request, limit: int) -> web.HTTPRequestEntityTooLarge:
    """Built only when refusing: building it for every request cost about 6 % of ingest CPU."""
    return web.HTTPRequestEntityTooLarge(
        max_size=limit,
        actual_size=request.content_length or 0,
        text=json.dumps({"error": f"the body is larger than {limit} bytes: send less"}),
        content_type="application/json",
    )


_PREPARES: dict[type, bool] = {}


def _prepares(adapter: Adapter) -> bool:
    """Whether the adapter's class has `prepare`, asked once per class: an isinstance check
    against a runtime-checkable protocol costs ~7 µs, on every webhook request."""
    kind = type(adapter)
    found = _PREPARES.get(kind)
    if found is None:
        found = _PREPARES[kind] = isinstance(adapter, Preparer)
    return found


async def webhook(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    metrics = gateway.metrics
    name = request.match_info["channel"]
    adapter = gateway.adapters.get(name)
    if adapter is None:
        metrics.rejected.inc(UNKNOWN, "404")
        return error(404, "no such channel: check the URL against CIVICDESK_CHANNELS")
    try:
        body = await _read_body(request, gateway.settings.max_body_bytes)
    except web.HTTPRequestEntityTooLarge:
        metrics.rejected.inc(name, "413")
        log.warning("channel=%s refused: body over %d bytes", name, gateway.settings.max_body_bytes)
        raise
    raw = RawRequest(
        method=request.method,
        path=request.path,
        query=request.query,
        headers=request.headers,  # read-only and case-insensitive: no copy needed
        body=body,
        remote=request.remote,
    )
    try:
        # A handshake that must be signed (Slack's url_verification) verifies itself.
        handshake = adapter.handshake(raw)
        if handshake is not None:
            return _reply(handshake)
        if request.method not in DELIVERY_METHODS:
            return error(405, "this channel takes POST requests", Allow="POST")
        adapter.verify(raw)
    except Unauthorized as exc:
        metrics.rejected.inc(name, str(exc.status))
        log.warning("channel=%s refused: %s (from %s)", name, exc, request.remote)
        return error(exc.status, str(exc))
    if _prepares(adapter):
        await cast(Preparer, adapter).prepare(raw)
    try:
        messages = adapter.parse(raw)
    except BadRequest as exc:
        metrics.rejected.inc(name, "400")
        log.warning("channel=%s bad request: %s", name, exc)
        return error(400, str(exc))
    except RetryLater as exc:
        metrics.rejected.inc(name, "503")
        log.warning("channel=%s not classified yet (the platform will retry): %s", name, exc)
        retry = str(max(1, round(exc.retry_after)))
        return error(503, str(exc), **{"Retry-After": retry})
    if messages:
        try:
            fresh = await gateway.store.accept(messages)
        except DataRefused as exc:  # sending it again cannot help: no retry, no 503
            metrics.rejected.inc(name, "400")
            log.warning("channel=%s not stored, the database refused it: %s", name, exc)
            return error(400, "the message holds text the database cannot store (bad Unicode)")
        except StoreUnavailable as exc:
            metrics.rejected.inc(name, "503")
            log.error("channel=%s not stored (the platform will retry): %s", name, exc)
            return error(503, "the database is unavailable: retry later", **{"Retry-After": "5"})
        _count_accepted(metrics, name, messages, fresh)
    return _reply(adapter.acknowledge(raw))


def _count_accepted(
    metrics: Metrics, channel: str, messages: Sequence[InboundMessage], fresh: Sequence[bool]
) -> None:
    metrics.received(channel, fresh)
    # A line per message at INFO cost a sixth of ingest CPU; the access log has each request.
    for message, new in zip(messages, fresh, strict=True):
        if not new:
            log.info(
                "channel=%s platform_id=%s duplicate, already stored", channel, message.platform_id
            )
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("channel=%s platform_id=%s stored", channel, message.platform_id)


async def healthz(request: web.Request) -> web.Response:
    return json_response(200, {"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers. A failed knowledge reload does not make the process
    unready: it still serves the last good version, and a balancer taking every process out of
    rotation over a staff member's typo would take the whole service down. It shows here."""
    gateway = request.app[GATEWAY]
    database: dict[str, Any] = {"ok": True}
    try:
        await asyncio.wait_for(gateway.store.ping(), PING_TIMEOUT)
    except (StoreUnavailable, TimeoutError, OSError) as exc:
        log.error("readiness: the database does not answer: %s", exc)
        database = {"ok": False, "error": f"the database does not answer ({type(exc).__name__})"}
    knowledge = gateway.knowledge.public_status()
    ready = bool(database["ok"])
    body = {"ready": ready, "database": database, "knowledge": knowledge}
    return json_response(200 if ready else 503, body)


async def metrics(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    try:
        depths = await asyncio.wait_for(gateway.store.queue_depths(), PING_TIMEOUT)
    except (StoreUnavailable, TimeoutError, OSError) as exc:
        log.warning("metrics: queue depths unavailable: %s", exc)
        depths = {}
    text = gateway.metrics.render(depths)
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


# --- The web chat page ----------------------------------------------------------------------

_ASSETS = {
    "chat.js": "text/javascript",
    "chat.css": "text/css",
    "icon.svg": "image/svg+xml",
}
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _asset(name: str) -> bytes:
    return files("bot").joinpath("static", name).read_bytes()


async def chat_page(request: web.Request) -> web.StreamResponse:
    chat = request.app[GATEWAY].chat
    if chat is None:
        return error(404, "the web chat is off: add webchat to CIVICDESK_CHANNELS")
    # The channel name is validated (letters, digits, - and _) but escaped all the same.
    page = _asset("chat.html").decode().replace("{{channel}}", html.escape(chat.name, quote=True))
    return web.Response(text=page, content_type="text/html", headers=_PAGE_HEADERS)


async def chat_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in _ASSETS:
        raise web.HTTPNotFound()
    return web.Response(body=_asset(name), content_type=_ASSETS[name], headers=_PAGE_HEADERS)


async def chat_replies(request: web.Request) -> web.Response:
    chat = request.app[GATEWAY].chat
    if chat is None:
        return error(404, "the web chat is off: add webchat to CIVICDESK_CHANNELS")
    query = request.query
    try:
        after = whole_number(query.get("after"), name="after", low=0, high=MAX_SEQ, default=0)
        # A longer wait asked for is shortened, as before; a non-number is refused.
        asked = decimal(query.get("wait"), name="wait", low=0, high=3600, default=LONG_POLL_SECONDS)
        wait = min(asked, LONG_POLL_SECONDS)
        conversation = bounded_text(query.get("conversation"), name="conversation", limit=64)
        replies = await chat.replies(conversation, after, wait)
    except BadRequest as exc:
        return error(400, str(exc))
    return json_response(200, {"replies": replies}, **{"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    # The tail serves platforms that append their own paths to the configured URL (a Matrix
    # application service at /webhooks/matrix gets /webhooks/matrix/_matrix/app/v1/...).
    for path in ("/webhooks/{channel}", "/webhooks/{channel}/{tail:.+}"):
        for method in ("GET", *DELIVERY_METHODS):
            app.router.add_route(method, path, webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/chat", chat_page)
    app.router.add_get("/chat/api/replies", chat_replies)
    app.router.add_get("/chat/{name}", chat_asset)


class AccessLogger(AbstractAccessLogger):
    """One line per request without the query string: the web chat's conversation id travels
    there, and logs must not let a reader follow someone's conversation.

    Deliveries a platform got its 2xx for are logged at DEBUG: they are machine traffic at
    hundreds per second, counted in /metrics, and the line cost a sixth of the CPU of taking
    one in. Refusals, errors and every other path stay at INFO."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        routine = response.status < 300 and request.path.startswith("/webhooks/")
        level = logging.DEBUG if routine else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        self.logger.log(
            level,
            '%s "%s %s" %s %s %.3fs',
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            time,
        )

"""`create_app`: the one factory of the aiohttp application, and its start-up and clean-up.

Resources are opened and closed in `cleanup_ctx`, in this order, and closed in the reverse one:
the store, the shared HTTP client session (handed to the adapters), the knowledge watcher, the
workers, the pollers of channels without push. So at shutdown polling stops first, then the
workers (finishing or releasing what they claimed) while the adapters and the database they use
are still there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from functools import partial
from typing import Protocol, runtime_checkable

import aiohttp
from aiohttp import web

import bot.storage.purge as purge
from bot.config.settings import Settings
from bot.gateway.polling import PollRunner
from bot.gateway.reload import KnowledgeHolder
from bot.gateway.web import GATEWAY, Gateway, InboxStore, LiveChat, Runnable, add_routes
from bot.platform.adapter import Adapter, Poller
from bot.runtime.metrics import Metrics
from bot.storage.poll_leader import PostgresPollLocks
from bot.storage.store import Store

log = logging.getLogger("civicdesk.app")

HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)
POLLING = web.AppKey("polling", PollRunner)
OUTBOUND_CONNECTIONS = 100  # across every adapter; per host aiohttp's default applies


@runtime_checkable
class UsesHttp(Protocol):
    """An adapter that calls out over HTTP takes the app's shared session."""

    def attach_session(self, session: aiohttp.ClientSession) -> None: ...


def create_app(
    settings: Settings,
    adapters: Mapping[str, Adapter],
    *,
    store: InboxStore,
    desk_holder: KnowledgeHolder,
    workers: Runnable | None = None,
    metrics: Metrics | None = None,
    polling: bool = True,
    extensions: Sequence[Callable[[web.Application], None]] = (),
) -> web.Application:
    """The application. It takes over `store` (closed at clean-up) and runs `workers`, if any,
    between start-up and clean-up; `adapters` maps each channel name to its adapter. Adapters
    that poll their platform (`bot.platform.adapter.Poller`) are polled then too, unless `polling`
    is off.
    Each of `extensions` is then given the app to add to (the composition root mounts /admin so)."""
    chats = [a for a in adapters.values() if isinstance(a, LiveChat)]
    app = web.Application(client_max_size=settings.max_body_bytes)
    gateway = Gateway(
        settings=settings,
        adapters=dict(adapters),
        store=store,
        knowledge=desk_holder,
        metrics=metrics or Metrics(),
        workers=workers,
        chat=chats[0] if chats else None,
    )
    app[GATEWAY] = gateway
    for chat in chats:  # replies delivered by any process reach the page (adapters.webchat)
        chat.read_outbox(partial(store.conversation_replies, chat.name))
    pollers = [a for a in adapters.values() if isinstance(a, Poller)]
    if polling and pollers:
        # On PostgreSQL several processes may run: one of them polls each channel.
        url = settings.database_url
        leadership = PostgresPollLocks(url) if url.startswith("postgresql") else None
        app[POLLING] = PollRunner(store, pollers, events=gateway.metrics, leadership=leadership)
    add_routes(app)
    for extend in extensions:
        extend(app)
    app.cleanup_ctx.append(_store)
    app.cleanup_ctx.append(_http_session)
    app.cleanup_ctx.append(_knowledge)
    app.cleanup_ctx.append(_workers)
    app.cleanup_ctx.append(_polling)
    app.cleanup_ctx.append(_daily_purge)
    app.on_shutdown.append(_release_long_polls)
    return app


async def _store(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[GATEWAY].store.close()


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=OUTBOUND_CONNECTIONS),
        headers={"User-Agent": "civicdesk"},
    )
    app[HTTP_SESSION] = session
    adapters = app[GATEWAY].adapters
    for adapter in adapters.values():
        if isinstance(adapter, UsesHttp):
            adapter.attach_session(session)
    try:
        yield
    finally:
        for adapter in adapters.values():
            try:
                await adapter.close()
            except Exception:  # one adapter failing to close must not keep the others open
                log.exception("closing the adapter of channel %s failed", adapter.name)
        await session.close()


async def _knowledge(app: web.Application) -> AsyncIterator[None]:
    holder = app[GATEWAY].knowledge
    holder.start()
    try:
        yield
    finally:
        await holder.stop()


async def _workers(app: web.Application) -> AsyncIterator[None]:
    workers = app[GATEWAY].workers
    if workers is None:
        yield
        return
    await workers.start()
    try:
        yield
    finally:
        await workers.stop()


async def _polling(app: web.Application) -> AsyncIterator[None]:
    runner = app.get(POLLING)
    if runner is None:
        yield
        return
    await runner.start()
    try:
        yield
    finally:
        await runner.stop()


async def _release_long_polls(app: web.Application) -> None:
    """Shutdown waits for running requests: answer the web chat's long polls at once."""
    chat = app[GATEWAY].chat
    if chat is not None:
        chat.stop_waiting()


async def _daily_purge(app: web.Application) -> AsyncIterator[None]:
    """The daily purge (`bot.storage.purge`), as a cleanup context: in processes with workers
    (`civicdesk serve`, `civicdesk work`), unless CIVICDESK_RETENTION_DAYS is 0."""
    gateway = app[GATEWAY]
    days = gateway.settings.retention_days
    if gateway.workers is None or days == 0 or not isinstance(gateway.store, Store):
        yield
        return
    task = asyncio.create_task(purge.purge_every_day(gateway.store, days), name="civicdesk-purge")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

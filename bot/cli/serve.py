"""`civicdesk serve`: the composition root of the server.

Settings → adapters (from the `adapters.ADAPTERS` registry) → store (a new SQLite file is
created and upgraded by itself) → knowledge → workers → `create_app` → aiohttp's runner, which
turns SIGINT and SIGTERM into a graceful stop: stop accepting, let running requests finish,
then stop the workers (they finish or release what they claimed) and close the store.
SIGHUP reloads the knowledge base.

`civicdesk serve --no-workers` and `civicdesk work` split the same thing in two process types
(Procfile `web` and `worker`): the web process only stores what arrives and answers the
platforms, the worker process answers the messages, delivers the replies and polls the
platforms without push. On one machine that puts the two halves on two cores; a worker
process on SQLite notices the web process's commits within milliseconds
(`bot.storage.commit_watch`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web

from adapters import ADAPTERS
from bot.cli.wiring import assemble_app
from bot.config.handoff import handoff_config
from bot.config.settings import ChannelConfig, ConfigError, Settings, read_channels, redacted_url
from bot.gateway.connections import KEEPALIVE_TIMEOUT, ConnectionGuard, GuardedSite
from bot.gateway.reload import KnowledgeHolder
from bot.gateway.web import GATEWAY, AccessLogger
from bot.gateway.worker import WorkerConfig, Workers
from bot.platform.adapter import Adapter
from bot.runtime.memory import freeze_long_lived
from bot.runtime.metrics import Metrics
from bot.runtime.privacy import install_log_masking
from bot.storage.commit_watch import SqliteCommitWatch
from bot.storage.engine import StoreUnavailable, sqlite_path
from bot.storage.pg_wake import PostgresWake
from bot.storage.store import Store

log = logging.getLogger("civicdesk.serve")

SHUTDOWN_SECONDS = 10.0  # running requests get this long after SIGTERM; webhooks answer fast


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `serve` to the command line's subparsers (argparse's `add_subparsers()` result)."""
    serve: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run the webhook server, the workers and the web chat"
    )
    serve.add_argument("--host", help="address to listen on (default: CIVICDESK_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: CIVICDESK_PORT)")
    serve.add_argument(
        "--no-workers",
        dest="workers",
        action="store_false",
        help="only receive and store: run `civicdesk work` for the answering and delivery",
    )
    work: argparse.ArgumentParser = subparsers.add_parser(
        "work", help="answer stored messages, deliver replies and poll platforms (no web server)"
    )
    work.add_argument(
        "--port", type=int, help="also serve /healthz, /readyz and /metrics on this port"
    )
    work.add_argument("--host", help="address for --port (default: CIVICDESK_HOST)")
    return serve


def build_adapters(channels: Sequence[ChannelConfig]) -> dict[str, Adapter]:
    return {channel.name: ADAPTERS[channel.adapter].build(channel) for channel in channels}


def worker_config(settings: Settings, channels: Sequence[ChannelConfig]) -> WorkerConfig:
    defaults = WorkerConfig()
    if settings.lease_seconds <= defaults.send_timeout:
        raise ConfigError(
            f"CIVICDESK_LEASE_SECONDS={settings.lease_seconds:g} must be longer than one "
            f"delivery attempt may take ({defaults.send_timeout:g} s), or a slow delivery "
            "would be taken over and sent twice"
        )
    if settings.backoff_cap < settings.backoff_base:
        raise ConfigError(
            f"CIVICDESK_BACKOFF_CAP={settings.backoff_cap:g} must be at least "
            f"CIVICDESK_BACKOFF_BASE={settings.backoff_base:g}: it caps the growing pauses"
        )
    return WorkerConfig(
        handoff=handoff_config(settings, channels),
        reminder_every=settings.reminder_every,
        lease_seconds=settings.lease_seconds,
        poll_interval=settings.poll_interval,
        backoff_base=settings.backoff_base,
        backoff_cap=settings.backoff_cap,
        max_attempts=settings.max_attempts,
        rate_per_second=settings.rate_per_second,
        channel_rates={c.name: c.rate for c in channels if c.rate is not None},
    )


@dataclass
class Parts:
    """What both process types are made of."""

    settings: Settings
    adapters: dict[str, Adapter]
    config: WorkerConfig
    metrics: Metrics
    holder: KnowledgeHolder

    @classmethod
    def assemble(cls, settings: Settings) -> Parts:
        channels = read_channels(os.environ, settings.channels, ADAPTERS)
        adapters = build_adapters(channels)
        config = worker_config(settings, channels)
        metrics = Metrics()
        holder = KnowledgeHolder.from_settings(settings, metrics=metrics)
        log.info("knowledge: %d entries from %s", len(holder.desk.knowledge.entries), holder.folder)
        return cls(settings, adapters, config, metrics, holder)

    async def app(self, *, workers: bool) -> tuple[web.Application, Workers | None]:
        # A SQLite file belongs to this machine: bring it up to date here. A shared
        # PostgreSQL is upgraded once per release with `civicdesk db upgrade`.
        url = self.settings.database_url
        store = await Store.open(url, upgrade=url.startswith("sqlite"))
        runner = None
        if workers:
            worker_id = f"{socket.gethostname()}-{os.getpid()}"
            runner = Workers(
                store,
                self.holder.get_desk,
                self.adapters,
                self.config,
                worker_id,
                events=self.metrics,
            )
        app = assemble_app(
            self.settings,
            self.adapters,
            store=store,
            desk_holder=self.holder,
            handoff=self.config.handoff,
            workers=runner,
            metrics=self.metrics,
            polling=workers,
        )
        app.on_startup.append(_reload_on_sighup)
        if runner is not None and url.startswith("postgresql"):
            wake = PostgresWake(url, runner.notify, runner.notify_outbox)
            app.cleanup_ctx.append(partial(_listen_for_work, wake))
        return app, runner


async def _listen_for_work(wake: PostgresWake, _app: web.Application) -> AsyncIterator[None]:
    """Work committed by other processes wakes this one's workers (bot.storage.pg_wake)."""
    wake.start()
    try:
        yield
    finally:
        await wake.stop()


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGINT or SIGTERM; 0 after a clean stop. ConfigError and KnowledgeError
    propagate to the command line, which prints them."""
    _configure_logging()
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    parts = Parts.assemble(settings)

    async def make_app() -> web.Application:
        app, _ = await parts.app(workers=args.workers)
        freeze_long_lived()
        log.info(
            "serving channels %s on http://%s:%d (database %s)%s",
            ", ".join(parts.adapters),
            host,
            port,
            redacted_url(settings.database_url),
            "" if args.workers else ", without workers",
        )
        return app

    try:
        asyncio.run(_serve(make_app, host, port))
    except StoreUnavailable as exc:
        print(f"civicdesk: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"civicdesk: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(make_app: Callable[[], Awaitable[web.Application]], host: str, port: int) -> None:
    """aiohttp's `run_app`, with the connections capped and slow request heads cut off
    (bot.gateway.connections): until SIGINT or SIGTERM, then a graceful stop."""
    app = await make_app()
    runner = web.AppRunner(
        app,
        access_log_class=AccessLogger,
        shutdown_timeout=SHUTDOWN_SECONDS,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        guard = ConnectionGuard()
        await GuardedSite(runner, host, port, guard).start()
        log.info("at most %d connections at once", guard.max_connections)
        await stop.wait()
        log.info("stopping: finishing the requests in hand")
    finally:
        await runner.cleanup()


def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    """`civicdesk work`: the workers and pollers without the webhook server, until SIGINT or
    SIGTERM."""
    _configure_logging()
    parts = Parts.assemble(settings)
    try:
        asyncio.run(_work(parts, args.host or settings.host, args.port))
    except StoreUnavailable as exc:
        print(f"civicdesk: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"civicdesk: cannot listen on port {args.port}: {exc.strerror or exc}", file=sys.stderr
        )
        return 1
    return 0


async def _work(parts: Parts, host: str, port: int | None) -> None:
    app, workers = await parts.app(workers=True)
    assert workers is not None
    runner = web.AppRunner(app, access_log_class=AccessLogger)
    await runner.setup()  # opens the store and the HTTP session, starts workers and pollers
    freeze_long_lived()
    watch = None
    database = sqlite_path(parts.settings.database_url)
    if database is not None:
        watch = SqliteCommitWatch(database, workers.notify, workers.notify_outbox)
        watch.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        if port is not None:
            await web.TCPSite(runner, host, port).start()
        log.info(
            "working channels %s (database %s)%s",
            ", ".join(parts.adapters),
            redacted_url(parts.settings.database_url),
            f"; health and metrics on http://{host}:{port}" if port is not None else "",
        )
        await stop.wait()
        log.info("stopping: finishing or releasing the work in hand")
    finally:
        if watch is not None:
            await watch.stop()
        await runner.cleanup()


async def _reload_on_sighup(app: web.Application) -> None:
    install_sighup(app[GATEWAY].knowledge)


def install_sighup(holder: KnowledgeHolder) -> None:
    """`kill -HUP <pid>` reloads the knowledge base (in the running event loop)."""
    if hasattr(signal, "SIGHUP"):  # not on Windows
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, holder.request_reload)


def _configure_logging() -> None:
    if logging.getLogger().handlers:
        return  # the embedding program (or a test) decides
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    install_log_masking()  # phone numbers, IDs, e-mail addresses, cards (bot.runtime.privacy)

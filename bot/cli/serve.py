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
import math
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web

from adapters import ADAPTERS
from bot.cli.wiring import assemble_app
from bot.config.handoff import handoff_config
from bot.config.settings import ChannelConfig, ConfigError, Settings, read_channels, redacted_url
from bot.gateway.reload import KnowledgeHolder
from bot.gateway.web import GATEWAY, AccessLogger
from bot.gateway.worker import WorkerConfig, Workers
from bot.platform.adapter import Adapter
from bot.runtime.logs import configure_logging
from bot.runtime.memory import freeze_long_lived
from bot.runtime.metrics import Metrics
from bot.storage.commit_watch import SqliteCommitWatch
from bot.storage.engine import StoreUnavailable, sqlite_path
from bot.storage.pg_wake import PostgresWake
from bot.storage.store import Store

log = logging.getLogger("civicdesk.serve")

SHUTDOWN_SECONDS = 10.0  # running requests get this long after SIGTERM; webhooks answer fast
EXIT_USAGE = 2  # as the command line's: the database or an option cannot be used as given
DB_RETRY_MAX_PAUSE = 2.0  # seconds between two tries while waiting for the database


class DatabaseUnreachable(Exception):
    """The database did not answer at start (within --wait-for-db, if given)."""


def port_number(value: str) -> int:
    """An argparse type: a TCP port, 0 to 65535 (0: any free port)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (0 to 65535)") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{number} is not a port number (0 to 65535)")
    return number


def wait_seconds(value: str) -> float:
    """An argparse type: seconds to wait, 0 or more, finite (at most a day)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not (math.isfinite(number) and 0 <= number <= 86400):
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 86400 seconds")
    return number


def _add_wait_for_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait-for-db",
        type=wait_seconds,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for the database to answer at start (default 0: stop at once, "
        "exit status 2)",
    )


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `serve` to the command line's subparsers (argparse's `add_subparsers()` result)."""
    serve: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run the webhook server, the workers and the web chat"
    )
    serve.add_argument("--host", help="address to listen on (default: CIVICDESK_HOST)")
    serve.add_argument(
        "--port", type=port_number, help="port to listen on (default: CIVICDESK_PORT)"
    )
    serve.add_argument(
        "--no-workers",
        dest="workers",
        action="store_false",
        help="only receive and store: run `civicdesk work` for the answering and delivery",
    )
    _add_wait_for_db(serve)
    work: argparse.ArgumentParser = subparsers.add_parser(
        "work", help="answer stored messages, deliver replies and poll platforms (no web server)"
    )
    work.add_argument(
        "--port", type=port_number, help="also serve /healthz, /readyz and /metrics on this port"
    )
    work.add_argument("--host", help="address for --port (default: CIVICDESK_HOST)")
    _add_wait_for_db(work)
    return serve


async def open_store(url: str, *, upgrade: bool, wait_for: float) -> Store:
    """The store at `url` once its database answers; DatabaseUnreachable when it has not within
    `wait_for` seconds (0: one try). A PostgreSQL server is not contacted by `Store.open`
    without an upgrade, so a query proves it is there: better one clear line at start than
    every webhook answered 503."""
    deadline = time.monotonic() + wait_for
    pause = 0.25
    while True:
        try:
            store = await Store.open(url, upgrade=upgrade)
            try:
                await store.ping()
            except StoreUnavailable:
                await store.close()
                raise
            return store
        except StoreUnavailable as exc:
            reason = str(exc).splitlines()[0]
            left = deadline - time.monotonic()
            if left <= 0:
                hint = (
                    f"still no answer after --wait-for-db {wait_for:g}"
                    if wait_for
                    else "start it, or give --wait-for-db SECONDS to wait for it"
                )
                raise DatabaseUnreachable(
                    f"the database {redacted_url(url)} does not answer ({reason}): {hint}"
                ) from exc
            log.warning("waiting for the database (%.0f s left): %s", left, reason)
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, DB_RETRY_MAX_PAUSE)


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

    async def app(
        self, *, workers: bool, wait_for_db: float = 0.0
    ) -> tuple[web.Application, Workers | None]:
        # A SQLite file belongs to this machine: bring it up to date here. A shared
        # PostgreSQL is upgraded once per release with `civicdesk db upgrade`.
        url = self.settings.database_url
        store = await open_store(url, upgrade=url.startswith("sqlite"), wait_for=wait_for_db)
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
    configure_logging(settings.log_level, settings.log_format)
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    parts = Parts.assemble(settings)

    async def make_app() -> web.Application:
        app, _ = await parts.app(workers=args.workers, wait_for_db=args.wait_for_db)
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
        web.run_app(
            make_app(),
            host=host,
            port=port,
            shutdown_timeout=SHUTDOWN_SECONDS,
            access_log_class=AccessLogger,
            print=None,
        )
    except DatabaseUnreachable as exc:
        print(f"civicdesk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreUnavailable as exc:
        print(f"civicdesk: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"civicdesk: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    """`civicdesk work`: the workers and pollers without the webhook server, until SIGINT or
    SIGTERM."""
    configure_logging(settings.log_level, settings.log_format)
    parts = Parts.assemble(settings)
    try:
        asyncio.run(_work(parts, args.host or settings.host, args.port, args.wait_for_db))
    except DatabaseUnreachable as exc:
        print(f"civicdesk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreUnavailable as exc:
        print(f"civicdesk: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"civicdesk: cannot listen on port {args.port}: {exc.strerror or exc}", file=sys.stderr
        )
        return 1
    return 0


async def _work(parts: Parts, host: str, port: int | None, wait_for_db: float) -> None:
    app, workers = await parts.app(workers=True, wait_for_db=wait_for_db)
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

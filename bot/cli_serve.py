"""`civicdesk serve`: the composition root of the server.

Settings → adapters (from the `adapters.ADAPTERS` registry) → store (a new SQLite file is
created and upgraded by itself) → knowledge → workers → `create_app` → aiohttp's runner, which
turns SIGINT and SIGTERM into a graceful stop: stop accepting, let running requests finish,
then stop the workers (they finish or release what they claimed) and close the store.
SIGHUP reloads the knowledge base.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from adapters import ADAPTERS
from bot.adapter import Adapter
from bot.app import create_app
from bot.config import ChannelConfig, ConfigError, Settings, read_channels, redacted_url
from bot.db import StoreUnavailable
from bot.metrics import Metrics
from bot.reload import KnowledgeHolder
from bot.store import Store
from bot.web import GATEWAY, AccessLogger
from bot.worker import WorkerConfig, Workers

log = logging.getLogger("civicdesk.serve")

SHUTDOWN_SECONDS = 10.0  # running requests get this long after SIGTERM; webhooks answer fast


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `serve` to the command line's subparsers (argparse's `add_subparsers()` result)."""
    serve: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run the webhook server, the workers and the web chat"
    )
    serve.add_argument("--host", help="address to listen on (default: CIVICDESK_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: CIVICDESK_PORT)")
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
        lease_seconds=settings.lease_seconds,
        poll_interval=settings.poll_interval,
        backoff_base=settings.backoff_base,
        backoff_cap=settings.backoff_cap,
        max_attempts=settings.max_attempts,
        rate_per_second=settings.rate_per_second,
        channel_rates={c.name: c.rate for c in channels if c.rate is not None},
        escalation_eta=dict(settings.escalation_eta),
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGINT or SIGTERM; 0 after a clean stop. ConfigError and KnowledgeError
    propagate to the command line, which prints them."""
    _configure_logging()
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    channels = read_channels(os.environ, settings.channels, ADAPTERS)
    adapters = build_adapters(channels)
    config = worker_config(settings, channels)
    metrics = Metrics()
    holder = KnowledgeHolder.from_settings(settings, metrics=metrics)
    log.info("knowledge: %d entries from %s", len(holder.desk.knowledge.entries), holder.folder)

    async def make_app() -> web.Application:
        # A SQLite file belongs to this one process: bring it up to date here. A shared
        # PostgreSQL is upgraded once per release with `civicdesk db upgrade`.
        sqlite = settings.database_url.startswith("sqlite")
        store = await Store.open(settings.database_url, upgrade=sqlite)
        worker_id = f"{socket.gethostname()}-{os.getpid()}"
        workers = Workers(store, holder.get_desk, adapters, config, worker_id, events=metrics)
        app = create_app(
            settings, adapters, store=store, desk_holder=holder, workers=workers, metrics=metrics
        )
        app.on_startup.append(_reload_on_sighup)
        log.info(
            "serving channels %s on http://%s:%d (database %s)",
            ", ".join(adapters),
            host,
            port,
            redacted_url(settings.database_url),
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
    except StoreUnavailable as exc:
        print(f"civicdesk: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"civicdesk: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


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

"""A served civicdesk for tests: the real app, the real Store on a SQLite file, real workers, and
a receiving system on port 0 standing in for the other end of the webhook channel."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters import ADAPTERS
from bot.cli.serve import worker_config
from bot.cli.wiring import assemble_app
from bot.config.institutions import load_institutions
from bot.config.settings import Settings, read_channels
from bot.gateway.institutions import InstitutionDesks, deployment_handoff
from bot.gateway.reload import KnowledgeHolder
from bot.gateway.worker import Workers
from bot.platform.adapter import Adapter
from bot.runtime.metrics import Metrics
from bot.storage.store import Store

ROOT = Path(__file__).resolve().parents[1]
SMALL_KB = ROOT / "tests" / "fixtures" / "kb" / "base"
SAMPLE_KB = ROOT / "knowledge"
SECRET = "receiver-and-sender-share-this"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Written from the README's description, not with the adapter's code."""
    text = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()


def signed_post(body: bytes, *, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    return {
        "Content-Type": "application/json",
        "X-Civicdesk-Timestamp": timestamp,
        "X-Civicdesk-Signature": signature(secret, timestamp, body),
    }


def event(event_id: str, text: str, conversation: str = "case-1", **extra: Any) -> bytes:
    data = {"id": event_id, "conversation": conversation, "sender": "u-1", "text": text, **extra}
    return json.dumps(data, ensure_ascii=False).encode()


@dataclass
class Receiver:
    """The other end of the webhook channel: checks each reply's signature and records it."""

    secret: str = SECRET
    replies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[Mapping[str, str]] = field(default_factory=list)
    bad_signatures: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Civicdesk-Timestamp", "")
        if request.headers.get("X-Civicdesk-Signature") != signature(self.secret, timestamp, body):
            self.bad_signatures += 1
            return web.Response(status=401)
        self.replies.append(json.loads(body))
        self.headers.append(dict(request.headers))
        self.arrived.set()
        return web.json_response({"ok": True})

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.replies) < count:
            self.arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{len(self.replies)} replies arrived, expected {count}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return self.replies


async def start_receiver() -> tuple[Receiver, TestServer]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/replies", receiver.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return receiver, server


def environment(database: Path, outbound_url: str, **extra: str) -> dict[str, str]:
    return {
        "CIVICDESK_CHANNELS": "webchat,webhook",
        "CIVICDESK_WEBHOOK_SECRET": SECRET,
        "CIVICDESK_WEBHOOK_OUTBOUND_URL": outbound_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        **extra,
    }


async def served_app(
    environ: Mapping[str, str], knowledge: Path, *, workers: bool = True
) -> tuple[web.Application, Mapping[str, Adapter], KnowledgeHolder]:
    """The app as `civicdesk serve` assembles it, with quick polling for tests."""
    settings = Settings.from_env({"CIVICDESK_KNOWLEDGE": str(knowledge), **environ})
    channels = read_channels(environ, settings.channels, ADAPTERS)
    adapters = {c.name: ADAPTERS[c.adapter].build(c) for c in channels}
    metrics = Metrics()
    # As `civicdesk serve` configures its workers (staff channels included), polling quicker.
    config = replace(
        worker_config(settings, channels), poll_interval=0.05, lease_seconds=30, backoff_base=0.05
    )
    institutions = load_institutions(settings, environ)
    desks = None
    if institutions.configured:  # as `civicdesk serve` with CIVICDESK_INSTITUTIONS
        config = replace(config, handoff=deployment_handoff(config.handoff, institutions))
        desks = InstitutionDesks.build(
            settings, institutions, config.handoff, metrics=metrics, poll_seconds=0.1
        )
        holder = desks.primary
    else:
        holder = KnowledgeHolder.from_settings(settings, metrics=metrics, poll_seconds=0.1)
    store = await Store.open(settings.database_url)
    runner = Workers(
        store,
        holder.get_desk,
        adapters,
        config,
        "test",
        events=metrics,
        route=desks.route if desks is not None else None,
    )
    app = assemble_app(
        settings,
        adapters,
        store=store,
        desk_holder=holder,
        handoff=config.handoff,
        workers=runner if workers else None,
        metrics=metrics,
        institutions=institutions,
    )
    if desks is not None:
        app.cleanup_ctx.append(desks.watch_others)
    return app, adapters, holder


def count_rows(database: Path, table: str) -> int:
    with sqlite3.connect(database) as connection:
        (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(count)

"""Real `civicdesk serve` processes for the slow tests, and what they talk to.

- `ServeProcess`: `python -m bot serve` as a child process on a free port, with its log in a
  file; started, killed with SIGKILL, or stopped with SIGTERM, always by its own pid.
- `Receiver`: the other end of the webhook channel, an aiohttp server on port 0 that checks each
  reply's signature (with the independent implementation in `web_support`), records every
  delivery attempt with its Idempotency-Key, and answers as a `behaviour` says (slow, failing,
  asking to retry later).
- `Platform`: a platform sending signed events with some concurrency, and re-POSTing an event
  (same id) whenever it got no answer, until it is acknowledged, as platforms do.
- `civicdesk(...)`: the command line as an operator runs it, in a child process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from web_support import SAMPLE_KB, SECRET, event, signature, signed_post

READY_TIMEOUT = 30.0  # the sample FAQ loads in about 3 s here


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def serve_environment(database_url: str, outbound_url: str, **settings: str) -> dict[str, str]:
    """This process's environment without any civicdesk setting of its own, plus the webhook
    channel, the database and the sample FAQ; `settings` add or override."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CIVICDESK_") and key not in ("DATABASE_URL", "PORT")
    }
    return {
        **inherited,
        "CIVICDESK_CHANNELS": "webhook",
        "CIVICDESK_WEBHOOK_SECRET": SECRET,
        "CIVICDESK_WEBHOOK_OUTBOUND_URL": outbound_url,
        "CIVICDESK_KNOWLEDGE": str(SAMPLE_KB),
        "DATABASE_URL": database_url,
        # The answers these tests expect are the lexical matcher's (conftest.py).
        "CIVICDESK_SEMANTIC": os.environ.get("CIVICDESK_SEMANTIC", "off"),
        **settings,
    }


class ServeProcess:
    """One `civicdesk serve` child process (or `command`: `("work",)`, `("serve",
    "--no-workers")`). The working directory is a test folder, so no `.env` of the developer's
    is read."""

    def __init__(
        self,
        environ: Mapping[str, str],
        workdir: Path,
        *,
        name: str = "serve",
        command: Sequence[str] = ("serve",),
    ) -> None:
        self.command = tuple(command)
        self.environ = dict(environ)
        self.workdir = workdir
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None
        self.logs: list[Path] = []
        self.pids: list[int] = []

    async def start(self) -> None:
        """Start (or start again, on the same port) and wait until /healthz answers."""
        log = self.workdir / f"{self.name}-{len(self.logs) + 1}.log"
        self.logs.append(log)
        with log.open("wb") as sink:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                *self.command,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                env=self.environ,
                cwd=self.workdir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT,
            )
        self.pids.append(self.process.pid)
        deadline = time.monotonic() + READY_TIMEOUT
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    raise AssertionError(
                        f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} did not answer /healthz in time:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL, at once (synchronous, so a caller can kill at an exact point)."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        assert self.process is not None
        return await self.process.wait()

    async def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a graceful stop); SIGKILL if it takes longer than `timeout`."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.kill()
            await self.process.wait()

    def log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs if log.exists())

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


async def civicdesk(environ: Mapping[str, str], workdir: Path, *args: str) -> tuple[int, str, str]:
    """Run `civicdesk ARGS` (as `python -m bot`); (exit status, stdout, stderr). Asynchronous,
    so a receiver in this event loop keeps answering meanwhile."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=dict(environ),
        cwd=workdir,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# --- the receiving end of the webhook channel ----------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One POST of a reply, as the receiver saw it."""

    key: str  # Idempotency-Key: the outbox id
    reply_id: int  # the payload's "id" (the same outbox id)
    reply_to: str | None  # the platform id of the message answered
    conversation: str
    status: int  # what the receiver answered
    arrived: float  # time.monotonic()
    answered: float


# (status, headers, body) the receiver answers a delivery with; None: 200 {"ok": true}
Answer = tuple[int, Mapping[str, str], str] | None
Behaviour = Callable[[], Answer]


@dataclass
class Receiver:
    behaviour: Behaviour = lambda: None
    delay: tuple[float, float] = (0.0, 0.0)  # seconds, uniform: a slow receiver
    secret: str = SECRET
    deliveries: list[Delivery] = field(default_factory=list)
    bad_signatures: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    _server: TestServer | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/replies", self._handle)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()
        self.url = str(self._server.make_url("/replies"))
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        body = await request.read()
        timestamp = request.headers.get("X-Civicdesk-Timestamp", "")
        if request.headers.get("X-Civicdesk-Signature") != signature(self.secret, timestamp, body):
            self.bad_signatures += 1
            return web.Response(status=401)
        payload = json.loads(body)
        answer = self.behaviour()
        low, high = self.delay
        if high > 0:
            await asyncio.sleep(random.uniform(low, high))
        status, headers, text = answer if answer is not None else (200, {}, '{"ok": true}')
        self.deliveries.append(
            Delivery(
                key=request.headers.get("Idempotency-Key", ""),
                reply_id=payload["id"],
                reply_to=payload.get("reply_to"),
                conversation=payload["conversation"],
                status=status,
                arrived=arrived,
                answered=time.monotonic(),
            )
        )
        self.changed.set()
        return web.Response(status=status, headers=dict(headers), text=text)

    # What arrived, seen from the receiver -----------------------------------------------------

    def accepted(self) -> list[Delivery]:
        """Deliveries the receiver answered 2xx."""
        return [d for d in self.deliveries if 200 <= d.status < 300]

    def answered_messages(self) -> set[str]:
        """Platform ids of the messages whose reply the receiver accepted."""
        return {d.reply_to for d in self.accepted() if d.reply_to is not None}

    def duplicates(self) -> Counter[str]:
        """Idempotency-Key -> accepted deliveries beyond the first (a receiver drops these)."""
        counts = Counter(d.key for d in self.accepted())
        return Counter({key: n - 1 for key, n in counts.items() if n > 1})

    async def wait_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.5))


# --- the sending platform ------------------------------------------------------------------------

QUESTIONS = (
    "诉讼费怎么交",  # answered
    "How do I pay the court fee?",  # answered
    "court fee",  # a clarifying question
    "我的案子什么时候开庭",  # escalated: ticket and acknowledgement
    "法院几点开门",  # escalated: below the threshold
    "谢谢",  # small talk
)


def burst(count: int, prefix: str) -> list[tuple[str, bytes]]:
    """`count` events with distinct ids, each in its own conversation."""
    events = []
    for number in range(count):
        event_id = f"{prefix}-{number:05d}"
        text = QUESTIONS[number % len(QUESTIONS)]
        events.append((event_id, event(event_id, text, conversation=f"conv-{event_id}")))
    return events


@dataclass
class Platform:
    """Sends events and retries each until it is acknowledged with a 200.

    A request that failed on the network (refused, reset, no answer) may or may not have been
    stored: the platform cannot tell, so it sends the same event again, as platforms do."""

    concurrency: int = 20
    retry_pause: float = 0.1
    give_up_after: float = 60.0
    accepted: dict[str, int] = field(default_factory=dict)  # event id -> POSTs until the 200
    failed_posts: Counter[str] = field(default_factory=Counter)  # event id -> network failures
    refused: dict[str, int] = field(default_factory=dict)  # event id -> a status other than 200
    on_accepted: Callable[[int], None] = lambda count: None  # called with len(accepted)

    async def send(self, targets: Sequence[str], events: Sequence[tuple[str, bytes]]) -> None:
        """Send every event, event i to targets[i % len(targets)] (a load balancer)."""
        queue: asyncio.Queue[tuple[int, str, bytes]] = asyncio.Queue()
        for number, (event_id, body) in enumerate(events):
            queue.put_nowait((number, event_id, body))
        timeout = aiohttp.ClientTimeout(total=15)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            senders = [
                self._sender(session, queue, targets) for _ in range(max(1, self.concurrency))
            ]
            await asyncio.gather(*senders)

    async def _sender(
        self,
        session: aiohttp.ClientSession,
        queue: asyncio.Queue[tuple[int, str, bytes]],
        targets: Sequence[str],
    ) -> None:
        while not queue.empty():
            number, event_id, body = queue.get_nowait()
            url = f"{targets[number % len(targets)]}/webhooks/webhook"
            await self._deliver(session, url, event_id, body)

    async def _deliver(
        self, session: aiohttp.ClientSession, url: str, event_id: str, body: bytes
    ) -> None:
        deadline = time.monotonic() + self.give_up_after
        posts = 0
        while time.monotonic() < deadline:
            posts += 1
            try:
                async with session.post(url, data=body, headers=signed_post(body)) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                self.failed_posts[event_id] += 1
                await asyncio.sleep(self.retry_pause)
                continue
            if status == 200:
                self.accepted[event_id] = posts
                self.on_accepted(len(self.accepted))
            else:
                self.refused[event_id] = status
            return
        raise AssertionError(f"{event_id} was never acknowledged in {self.give_up_after:g} s")


# --- the database, read directly -----------------------------------------------------------------


def sqlite_rows(database: Path, query: str, *params: Any) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(database, timeout=30)
    try:
        return list(connection.execute(query, params))
    finally:
        connection.close()


async def settle(
    count_busy: Callable[[], Awaitable[int]], timeout: float, what: str = "the queues"
) -> None:
    """Wait until `count_busy()` (unfinished inbox and outbox rows) is 0."""
    deadline = time.monotonic() + timeout
    while (busy := await count_busy()) > 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"{busy} rows of {what} still unfinished after {timeout:g} s")
        await asyncio.sleep(0.2)


BUSY_QUERY = (
    "SELECT (SELECT count(*) FROM inbox WHERE status IN ('new', 'claimed'))"
    " + (SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending'))"
)
# Per inbox row: its status and how many outbox rows it has (the reply rows).
REPLIES_PER_MESSAGE = (
    "SELECT i.platform_id, i.status, count(o.id) FROM inbox i"
    " LEFT JOIN outbox o ON o.inbox_id = i.id GROUP BY i.id, i.platform_id, i.status"
)

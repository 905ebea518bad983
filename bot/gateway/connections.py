"""Limits on the connections a stranger may hold open: how many at once, and how long a request's
head may take to arrive.

aiohttp reads a request's head for as long as the client cares to send it, and accepts every
connection the kernel hands over: 1,100 connections sending a byte now and then took every file
descriptor of a process (`ulimit -n 1024`), so health probes timed out and each refused accept
logged a traceback. Here, at `max_connections`, a new connection takes the place of the oldest
one still waiting for its request head (a slow client loses its place, a platform or a health
probe gets in); with none waiting it is closed as soon as it is accepted. A connection whose
request head is not complete `head_timeout` seconds after its first byte (or after it opened)
is closed (a request's body has its own time limit, in the webhook handler).

`GuardedSite` is aiohttp's TCPSite with each connection's protocol wrapped in `_Guarded`, which
hands every event to aiohttp's own protocol and only watches.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("civicdesk.web")

HEAD_TIMEOUT = 10.0  # seconds from a request's first byte to the end of its head
KEEPALIVE_TIMEOUT = 75.0  # an idle kept-alive connection is closed after this (aiohttp: 3630)
RESERVED_DESCRIPTORS = 256  # for the database, the log, outbound calls, and sockets being closed
REFUSAL_LOG_EVERY = 10.0  # seconds between two log lines about refused connections


def default_max_connections() -> int:
    """Open connections allowed: the process's file descriptors less those kept for the rest."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(16, min(10_000, soft - RESERVED_DESCRIPTORS))


class ConnectionGuard:
    """Counts the open connections of one server and makes the wrapped protocols."""

    def __init__(
        self,
        *,
        max_connections: int | None = None,
        head_timeout: float = HEAD_TIMEOUT,
        clock: Callable[[], float] = lambda: asyncio.get_running_loop().time(),
    ) -> None:
        self.max_connections = max_connections or default_max_connections()
        self.head_timeout = head_timeout
        self.open = 0
        self.refused = 0  # connections closed at once: over the cap, none to give way
        self.evicted = 0  # slow connections closed to make room for a new one
        self.waiting: dict[_Guarded, None] = {}  # waiting for a request head, oldest first
        self.timed_out = 0  # connections closed: their request head came too slowly
        self._clock = clock
        self._logged_at: float | None = None
        self._unlogged = 0

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: _Guarded(self, factory())

    def refuse(self) -> None:
        self.refused += 1
        self._unlogged += 1
        now = self._clock()
        if self._logged_at is None or now - self._logged_at >= REFUSAL_LOG_EVERY:
            log.warning(
                "%d connections refused: %d open, at most %d (the next line in %g s at the "
                "earliest)",
                self._unlogged,
                self.open,
                self.max_connections,
                REFUSAL_LOG_EVERY,
            )
            self._logged_at, self._unlogged = now, 0


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, watched: refused over the cap, closed when a
    request head is slower than the guard's `head_timeout`."""

    def __init__(self, guard: ConnectionGuard, inner: Any) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._counted = False
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        if guard.open >= guard.max_connections:
            if guard.waiting:  # the oldest slow one gives way
                guard.evicted += 1
                next(iter(guard.waiting))._too_slow(timed_out=False)
            else:
                guard.refuse()
                # Nothing reaches aiohttp: no handler, no log line per connection.
                transport.abort()  # type: ignore[attr-defined]
                return
        guard.open += 1
        self._counted = True
        self._transport = transport  # type: ignore[assignment]
        self._inner.connection_made(transport)
        # The first request's head is due too: a connection that sends nothing is no cheaper.
        self._start_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        if not self._counted:
            return
        self._counted = False
        self._guard.open -= 1
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        inner = self._inner
        between = getattr(inner, "_current_request", None) is None and not getattr(
            inner, "_messages", None
        )
        before = getattr(inner, "_request_count", 0)
        inner.data_received(data)
        if getattr(inner, "_request_count", 0) != before:
            self._stop_timer()  # a head is complete: the handler takes over
        elif between and self._timer is None:
            self._start_timer()

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _start_timer(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(
            self._guard.head_timeout, self._too_slow
        )
        self._guard.waiting[self] = None

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._guard.waiting.pop(self, None)

    def _too_slow(self, *, timed_out: bool = True) -> None:
        self._stop_timer()
        if timed_out:
            self._guard.timed_out += 1
        if self._transport is not None:
            self._transport.abort()


class GuardedSite(web.TCPSite):
    """aiohttp's TCPSite, its connections counted and watched by `guard`."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard
    ) -> None:
        super().__init__(runner, host, port)
        self._guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.wrap(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )

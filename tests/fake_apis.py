"""What the adapter tests' fake platform APIs share: a server on a free loopback port, and
waiting (without sleeping) until a served app has made the calls a test expects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(routes: Iterable[tuple[str, str, Handler]]) -> AsyncIterator[str]:
    """A server of `(method, path, handler)` routes on 127.0.0.1, port 0; yields its base URL
    (no trailing "/"), the value a test puts in CIVICDESK_<NAME>_API_BASE."""
    app = web.Application()
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def until(
    arrived: asyncio.Event, done: Callable[[], bool], what: str, timeout: float = 10.0
) -> None:
    """Wait until `done()`, looking again each time `arrived` is set (a fake sets it on every
    call it records); AssertionError naming `what` after `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not done():
                arrived.clear()
                await arrived.wait()
    except TimeoutError:
        raise AssertionError(f"{what} did not arrive within {timeout:g} s") from None

"""One process polls each channel, however many run (PostgreSQL).

Every process with workers runs the pollers of the channels without push (Weibo mentions,
Mastodon notifications, Matrix /sync, IMAP). With several processes on one PostgreSQL each would
ask the platform the same question: the inbox's dedup key keeps the answers from counting twice,
but the platform's rate limit counts every call. So a channel is polled only by the process that
holds its advisory lock, taken with `pg_try_advisory_lock` on a connection of its own. When that
process stops or loses its connection, PostgreSQL releases the lock and the next process to try
takes it over, continuing from the cursor saved in the database.

SQLite needs none of this: its processes share one machine, and only `civicdesk work` (or a
`civicdesk serve` with workers) polls.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

from bot.storage.pg_wake import listen_dsn

log = logging.getLogger(__name__)

LOCK_NAMESPACE = "civicdesk-poll:"
PROBE_EVERY = 30.0  # seconds between checks that the lock holder's connection is alive


def lock_key(channel: str) -> int:
    """A stable signed 64-bit advisory lock key for a channel's polling."""
    digest = hashlib.blake2b((LOCK_NAMESPACE + channel).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresPollLocks:
    """`leads(channel)`: whether this process is the one polling `channel` now."""

    def __init__(self, url: str) -> None:
        self._dsn = listen_dsn(url)
        self._connection: Any = None
        self._held: set[str] = set()
        self._lock = asyncio.Lock()
        self._probed_at = time.monotonic()

    async def leads(self, channel: str) -> bool:
        async with self._lock:
            try:
                connection = await self._connect()
                if channel in self._held:
                    await self._probe(connection)
                    return True
                key = lock_key(channel)
                taken = bool(await connection.fetchval("SELECT pg_try_advisory_lock($1)", key))
            except (OSError, TimeoutError) as exc:
                self._lost(f"{type(exc).__name__}: {exc}")
                return False
            except Exception as exc:  # asyncpg's own errors: the connection is in doubt
                self._lost(f"{type(exc).__name__}: {exc}")
                return False
            if taken:
                self._held.add(channel)
                log.info("channel=%s: this process polls it (it holds the poll lock)", channel)
            return taken

    async def _probe(self, connection: Any) -> None:
        """A dropped connection has lost its locks though nothing said so: ask the server now
        and then (a failure raises, and the caller lets the lock go)."""
        now = time.monotonic()
        if now - self._probed_at >= PROBE_EVERY:
            await connection.fetchval("SELECT 1", timeout=5)
            self._probed_at = now

    async def close(self) -> None:
        """Release every lock (the connection ends: another process takes over at once)."""
        async with self._lock:
            connection, self._connection = self._connection, None
            self._held.clear()
            if connection is not None and not connection.is_closed():
                await connection.close(timeout=2)

    async def _connect(self) -> Any:
        if self._connection is not None and not self._connection.is_closed():
            return self._connection
        import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415 (PostgreSQL only)

        self._held.clear()  # a new connection holds no lock yet
        self._connection = await asyncpg.connect(self._dsn, timeout=10)
        return self._connection

    def _lost(self, why: str) -> None:
        if self._held:
            log.warning("poll locks lost (%s): polling stops here until one is taken again", why)
        self._held.clear()
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()

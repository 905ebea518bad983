"""Wake the workers of this process when another one commits work to the same PostgreSQL.

Migration 0005 makes PostgreSQL send a notification on `civicdesk_inbox` / `civicdesk_outbox`
when new inbox or outbox rows (or outbox rows back to pending) are committed, by any process.
This holds one connection of its own that LISTENs on both and calls the workers' wake-ups, so a
`civicdesk work` beside a `civicdesk serve --no-workers` (the Procfile), or one of several
servers, answers at once instead of at its next poll. The poll stays as the safety net: when the
connection drops, it is made again after a pause, and nothing is lost meanwhile, only later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from bot.runtime.background import BackgroundTask

log = logging.getLogger(__name__)

INBOX_CHANNEL = "civicdesk_inbox"
OUTBOX_CHANNEL = "civicdesk_outbox"
RECONNECT_AFTER = 5.0  # seconds before the connection is made again after it failed or dropped


def listen_dsn(url: str) -> str:
    """The asyncpg connection string of a SQLAlchemy `postgresql+asyncpg://` URL. A DSN spells
    the TLS mode `sslmode` (as libpq does) where asyncpg.connect()'s argument, which SQLAlchemy
    fills from the URL, is `ssl`."""
    parsed = make_url(url).set(drivername="postgresql")
    if "ssl" in parsed.query and "sslmode" not in parsed.query:
        query = dict(parsed.query)
        query["sslmode"] = query.pop("ssl")
        parsed = parsed.set(query=query)
    return parsed.render_as_string(hide_password=False)


class PostgresWake(BackgroundTask):
    """Calls `on_inbox()` / `on_outbox()` when work was committed to the database at `url`."""

    name = "postgres-wake"

    def __init__(
        self,
        url: str,
        on_inbox: Callable[[], None],
        on_outbox: Callable[[], None],
        *,
        reconnect_after: float = RECONNECT_AFTER,
    ) -> None:
        super().__init__()
        self._dsn = listen_dsn(url)
        self._callbacks = {INBOX_CHANNEL: on_inbox, OUTBOX_CHANNEL: on_outbox}
        self._reconnect_after = reconnect_after
        self.listening = asyncio.Event()  # set while the LISTEN is in place (tests wait on it)

    async def _run(self) -> None:
        while True:
            await self._listen_once()
            await asyncio.sleep(self._reconnect_after)

    async def _listen_once(self) -> None:
        """One connection, LISTENing until it drops (or cannot be made)."""
        import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415 (PostgreSQL only)

        connection: Any = None
        lost = asyncio.Event()
        try:
            connection = await asyncpg.connect(self._dsn, timeout=10)
            connection.add_termination_listener(lambda _connection: lost.set())
            for channel in self._callbacks:
                await connection.add_listener(channel, self._notified)
            self.listening.set()
            log.info("listening for work committed by other processes (LISTEN/NOTIFY)")
            await lost.wait()
            log.warning("the LISTEN connection was lost; polling until it is made again")
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            log.warning("cannot LISTEN for new work (%s); polling meanwhile", exc)
        finally:
            self.listening.clear()
            if connection is not None and not connection.is_closed():
                with contextlib.suppress(Exception):
                    await asyncio.shield(connection.close(timeout=2))

    def _notified(self, _connection: Any, _pid: int, channel: str, _payload: str) -> None:
        callback = self._callbacks.get(channel)
        if callback is not None:
            callback()

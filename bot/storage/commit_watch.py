"""Notice rows committed by another process to the same SQLite file, within milliseconds.

When the web server and the workers run as separate processes (`civicdesk serve --no-workers`
and `civicdesk work`), the workers' in-process wake-up never fires: without this they would find
new messages only at their next poll (a second later). SQLite has no LISTEN/NOTIFY, but
`PRAGMA data_version` changes whenever another connection commits, and reading it costs a few
microseconds. On a change, one indexed read of the newest inbox and outbox ids tells whether new
work arrived (this process's own commits, claims and settlements, also change the version, and
must not make the workers claim in vain).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from bot.runtime.background import BackgroundTask

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.002  # seconds between looks: 500 cheap reads per second, well under 1 % CPU


class SqliteCommitWatch(BackgroundTask):
    """Calls `on_inbox()` / `on_outbox()` when another process added inbox / outbox rows."""

    name = "sqlite-commit-watch"

    def __init__(
        self,
        path: Path,
        on_inbox: Callable[[], None],
        on_outbox: Callable[[], None],
        *,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        super().__init__()
        self._path = path
        self._on_inbox = on_inbox
        self._on_outbox = on_outbox
        self._interval = interval

    async def _run(self) -> None:
        # Reads in WAL mode never wait for the writer, so these calls stay in the event loop:
        # a thread hop would cost more than the read itself.
        connection = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=0.05)
        try:
            version = _data_version(connection)
            newest = _newest_ids(connection)
            while True:
                await asyncio.sleep(self._interval)
                try:
                    current = _data_version(connection)
                    if current == version:
                        continue
                    version = current
                    latest = _newest_ids(connection)
                except sqlite3.Error as exc:  # busy or being replaced: look again next time
                    log.debug("commit watch: %s", exc)
                    continue
                if latest[0] > newest[0]:
                    self._on_inbox()
                if latest[1] > newest[1]:
                    self._on_outbox()
                newest = latest
        finally:
            connection.close()


def _data_version(connection: sqlite3.Connection) -> int:
    (version,) = connection.execute("PRAGMA data_version").fetchone()
    return int(version)


def _newest_ids(connection: sqlite3.Connection) -> tuple[int, int]:
    row = connection.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM inbox), (SELECT coalesce(max(id), 0) FROM outbox)"
    ).fetchone()
    return int(row[0]), int(row[1])

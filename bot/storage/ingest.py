"""Group commit of inbound messages: durable before acknowledged, yet one commit for many requests.

Every webhook request awaits `accept()` until its rows are committed, so the platform gets its
200 only for what a crash cannot lose. A commit per request would cap ingest near a tenth of bare
aiohttp (measured here), so one background task takes everything that queued up while the previous
commit ran, inserts it in one transaction and resolves every waiting request at once. Under light
load a batch is one request and costs one commit, as before; under heavy load batches grow by
themselves, with no timer to tune.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from bot.platform.messages import InboundMessage, cut_text
from bot.storage.engine import DataRefused, StoreUnavailable, insert_ignoring_duplicates
from bot.storage.models import INBOX, INBOX_NEW
from bot.storage.runner import Runner, SqliteRunner

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 500  # rows per transaction: bounds the statement and the time a lock is held
# Requests waiting for a commit; beyond it `accept` waits, which slows the senders (back-pressure).
DEFAULT_QUEUE_SIZE = 10_000
_KEY_LENGTH = 255  # inbox.platform_id
MAX_REPLY_CONTEXT = 4000  # adapters keep tokens and ids there, never message bodies


@dataclass
class _Waiting:
    rows: list[dict[str, Any]]
    done: asyncio.Future[list[bool]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommitter:
    def __init__(
        self,
        runner: Runner,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        self._runner = runner
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Waiting | None] = asyncio.Queue(maxsize=queue_size)
        self._callbacks: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.commits = 0  # transactions committed (for metrics and tests)

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback()` after every commit that stored at least one new row."""
        self._callbacks.append(callback)

    async def accept(self, messages: Sequence[InboundMessage]) -> list[bool]:
        """Store `messages`; for each, True if it is new, False if (channel, platform id) was
        stored before. Returns once committed; raises StoreUnavailable if the commit failed."""
        if self._closed:
            raise StoreUnavailable("the store is closing: no new messages are accepted")
        if not messages:
            return []
        waiting = _Waiting([_row(m) for m in messages])
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="civicdesk-group-commit")
        try:
            self._queue.put_nowait(waiting)
        except asyncio.QueueFull:  # back-pressure: wait for the committer to catch up
            await self._queue.put(waiting)
        return await waiting.done

    async def close(self) -> None:
        """Commit what is queued, then stop. Later `accept` calls raise StoreUnavailable."""
        self._closed = True
        if self._task is None:
            return
        await self._queue.put(None)
        await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch, size, stop = [first], len(first.rows), False
            # Everything that queued up during the last commit shares this one.
            while size < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stop = True
                    break
                batch.append(item)
                size += len(item.rows)
            try:
                await self._commit(batch)
            except Exception as exc:  # a bug here must fail the waiting requests, not hang them
                log.exception("group commit of %d requests failed unexpectedly", len(batch))
                for waiting in batch:
                    _settle(waiting.done, error=exc)
            if stop:
                return

    async def _commit(self, batch: list[_Waiting]) -> None:
        rows = [row for waiting in batch for row in waiting.rows]
        try:
            stored = await self._write(rows)
        except DataRefused as exc:
            # One message the database cannot take (a lone surrogate, say) must not fail the
            # others: each request is stored on its own, and only the bad one is refused.
            log.warning(
                "group commit of %d messages in %d requests refused (%s): storing them one "
                "request at a time",
                len(rows),
                len(batch),
                exc,
            )
            await self._commit_each(batch)
            return
        except StoreUnavailable as exc:
            log.error(
                "group commit of %d messages in %d requests failed: %s", len(rows), len(batch), exc
            )
            for waiting in batch:
                _settle(waiting.done, error=exc)
            return
        self.commits += 1
        self._settle_stored(batch, stored)
        log.debug(
            "group commit: %d rows (%d new) from %d requests", len(rows), len(stored), len(batch)
        )
        if stored:
            self._wake()

    async def _write(self, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        """Insert `rows` in one transaction; the (channel, platform id) of those that were new."""
        if isinstance(self._runner, SqliteRunner):
            work = functools.partial(_insert_sqlite, rows)
            inline = self._runner.try_write_inline(work)
            return inline if inline is not None else await self._runner.write_raw(work)
        return await self._runner.write(functools.partial(_insert, self._runner.dialect, rows))

    async def _commit_each(self, batch: list[_Waiting]) -> None:
        """The fallback after a refused batch: a transaction per request, and within a refused
        request of several messages a transaction per message (the good ones are kept, the
        request is refused so that the platform hears of the bad one)."""
        stored: set[tuple[str, str]] = set()
        for waiting in batch:
            try:
                stored |= await self._write(waiting.rows)
                self.commits += 1
            except DataRefused as exc:
                if len(waiting.rows) > 1:
                    stored |= await self._write_each(waiting.rows)
                log.warning("%d messages refused by the database: %s", len(waiting.rows), exc)
                _settle(waiting.done, error=exc)
                continue
            except StoreUnavailable as exc:
                log.error("%d messages not stored: %s", len(waiting.rows), exc)
                _settle(waiting.done, error=exc)
                continue
            self._settle_stored([waiting], stored)
        if stored:
            self._wake()

    async def _write_each(self, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        stored: set[tuple[str, str]] = set()
        for row in rows:
            with contextlib.suppress(StoreUnavailable):
                stored |= await self._write([row])
                self.commits += 1
        return stored

    def _settle_stored(self, batch: list[_Waiting], stored: set[tuple[str, str]]) -> None:
        claimed: set[tuple[str, str]] = set()  # the same event twice in one batch: first one wins
        for waiting in batch:
            flags = []
            for row in waiting.rows:
                key = (row["channel"], row["platform_id"])
                flags.append(key in stored and key not in claimed)
                claimed.add(key)
            _settle(waiting.done, result=flags)

    def _wake(self) -> None:
        for callback in self._callbacks:
            try:
                callback()
            except Exception:  # a failing listener must not fail the requests already stored
                log.exception("wake-up callback %r failed after a commit", callback)


def _insert(
    dialect: str, rows: list[dict[str, Any]], connection: Connection
) -> set[tuple[str, str]]:
    """Insert what is new; the (channel, platform id) of each row that was."""
    statement = (
        insert_ignoring_duplicates(dialect, INBOX)
        .on_conflict_do_nothing(index_elements=["channel", "platform_id"])
        .returning(INBOX.c.channel, INBOX.c.platform_id)
    )
    return {(row.channel, row.platform_id) for row in connection.execute(statement, rows)}


_SQLITE_COLUMNS = (
    "channel", "platform_id", "conversation", "sender", "sender_name", "mention", "text",
    "public", "lang_hint", "reply_to", "reply_context", "received_at", "status", "attempts",
    "media",
)  # fmt: skip
_SQLITE_INSERT = (
    "INSERT INTO inbox (channel, platform_id, conversation, sender, sender_name, mention, text, "
    "public, lang_hint, reply_to, reply_context, received_at, status, attempts, media) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (channel, platform_id) DO NOTHING"
)
_SQLITE_LAST_ID = "SELECT coalesce(max(id), 0) FROM inbox"
_SQLITE_ADDED_SINCE = "SELECT channel, platform_id FROM inbox WHERE id > ?"


def _insert_sqlite(
    rows: list[dict[str, Any]], connection: sqlite3.Connection
) -> set[tuple[str, str]]:
    """`_insert` in plain sqlite3, values stored as SQLAlchemy stores them on SQLite (naive
    UTC timestamps with microseconds, booleans as 0/1): tests/test_ingest.py reads them back
    through the models. One `executemany` for the batch; only when some row was there before
    (a redelivery) are the new ones looked up, by id, which grows within the write lock."""
    last_id = connection.execute(_SQLITE_LAST_ID).fetchone()[0]
    before = connection.total_changes
    connection.executemany(_SQLITE_INSERT, [_sqlite_values(row) for row in rows])
    if connection.total_changes - before == len(rows):
        return {(row["channel"], row["platform_id"]) for row in rows}
    return {(channel, key) for channel, key in connection.execute(_SQLITE_ADDED_SINCE, (last_id,))}


def _sqlite_values(row: dict[str, Any]) -> list[Any]:
    values = [row[column] for column in _SQLITE_COLUMNS]
    values[7] = 1 if values[7] else 0
    values[11] = _sqlite_time(values[11])
    return values


def _sqlite_time(value: datetime) -> str:
    value = value.astimezone(UTC) if value.tzinfo is not None else value
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _settle(
    future: asyncio.Future[list[bool]],
    *,
    result: list[bool] | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # the request went away (client disconnected); its rows stand
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result or [])


def _fit(value: str | None, length: int) -> str | None:
    """Fit a platform's value into its column. NUL is removed: PostgreSQL text cannot hold it,
    and one bad value must not fail a batch of other people's messages."""
    if value is None:
        return None
    value = value.replace("\x00", "")
    return value[:length]


def _key(platform_id: str) -> str:
    """The dedup key: an over-long id is hashed rather than cut, so two ids never merge."""
    cleaned = platform_id.replace("\x00", "")
    if len(cleaned) <= _KEY_LENGTH:
        return cleaned
    return "sha256:" + hashlib.sha256(cleaned.encode("utf-8")).hexdigest()


def _row(message: InboundMessage) -> dict[str, Any]:
    return {
        "channel": _fit(message.channel, 64),
        "platform_id": _key(message.platform_id),
        "conversation": _fit(message.conversation, 255),
        "sender": _fit(message.sender, 255),
        "sender_name": _fit(message.sender_name, 255),
        "mention": _fit(message.mention, 255),
        "text": cut_text(message.text.replace("\x00", "")),
        "public": message.public,
        "lang_hint": _fit(message.lang_hint, 16),
        "reply_to": _fit(message.reply_to, 255),
        "reply_context": _fit(message.reply_context, MAX_REPLY_CONTEXT),
        "received_at": message.received_at,
        "status": INBOX_NEW,
        "attempts": 0,
        "media": _fit(message.media, 16),
    }

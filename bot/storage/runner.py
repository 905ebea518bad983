"""Where the store's SQL runs: each transaction is one plain function of a SQLAlchemy Connection,
handed to a runner.

- SQLite: the sync driver (sqlite3) in threads of our own. One writer thread runs every write
  transaction of this process in turn, so writers queue in order rather than race for SQLite's
  single write lock; a few reader threads serve reads (WAL lets them run beside the writer).
  A whole transaction costs one hop to a thread: through aiosqlite every statement, BEGIN and
  COMMIT is a hop, and measured here a small transaction cost ~2 ms of CPU that way against
  ~0.4 ms this way.
- PostgreSQL: asyncpg through SQLAlchemy's async engine, the function run with `run_sync`.

Database errors become StoreUnavailable; exceptions of the function itself (ReferenceTaken,
EscalationNotFound, ...) pass through unchanged, after the transaction was rolled back.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.engine import (
    DataRefused,
    StoreUnavailable,
    described,
    is_data_error,
    sqlite_pragmas,
)

T = TypeVar("T")
SQLITE_READERS = 2
# After a write failed for want of room (disk full, read-only, I/O error), /readyz says "not
# ready" for this long: a balancer then sends traffic elsewhere. A write that succeeds meanwhile
# does not end it: on a nearly full disk small writes pass (SQLite reuses free pages) while a
# message's insert fails.
WRITE_FAILURE_HOLD = 10.0
_STORAGE_FAILURES = ("is full", "readonly", "read-only", "disk i/o", "no space", "cannot rollback")
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EIO, errno.EDQUOT})


def refusal(exc: BaseException, kind: str) -> StoreUnavailable:
    """The StoreUnavailable for a database error: DataRefused when the values were the problem
    (its message names the error's kind only: drivers quote the values)."""
    if is_data_error(exc):
        return DataRefused(f"the database refused a value ({described(exc)})")
    return StoreUnavailable(f"database {kind} failed: {exc}")


def _out_of_room(exc: BaseException) -> bool:
    current: BaseException | None = exc
    for _ in range(5):  # the error and what it wraps
        if current is None:
            return False
        if isinstance(current, OSError) and current.errno in _STORAGE_ERRNOS:
            return True
        if any(word in str(current).lower() for word in _STORAGE_FAILURES):
            return True
        current = current.__cause__ or current.__context__
    return False


class WriteHealth:
    """Whether writes fail for want of room: the last such failure, for WRITE_FAILURE_HOLD."""

    def __init__(self) -> None:
        self.failure: str | None = None
        self.failed_at = 0.0

    def failed(self, exc: BaseException) -> None:
        """Note `exc` if it says the storage has no room; other errors (a database that does
        not answer) show in /readyz by themselves."""
        if _out_of_room(exc):
            self.failure, self.failed_at = str(exc).splitlines()[0][:200], time.monotonic()

    def succeeded(self) -> None:
        """A write went through: nothing to forget (see WRITE_FAILURE_HOLD)."""

    def problem(self) -> str | None:
        """Why writes fail now, or None."""
        if self.failure is not None and time.monotonic() - self.failed_at < WRITE_FAILURE_HOLD:
            return self.failure
        return None


class Runner(Protocol):
    dialect: str  # "sqlite" or "postgresql"
    write_engine: Engine  # where write transactions commit (for listeners: metrics, tests)
    health: WriteHealth  # whether writes fail for want of room (/readyz)

    async def write(self, work: Callable[[Connection], T]) -> T: ...
    async def read(self, work: Callable[[Connection], T]) -> T: ...
    async def close(self) -> None: ...


def make_runner(url: str, engine: AsyncEngine) -> Runner:
    if engine.dialect.name == "sqlite":
        return SqliteRunner(url)
    return AsyncRunner(engine)


class AsyncRunner:
    def __init__(self, engine: AsyncEngine) -> None:
        self.dialect = engine.dialect.name
        self.write_engine = engine.sync_engine
        self._engine = engine
        self.health = WriteHealth()

    async def write(self, work: Callable[[Connection], T]) -> T:
        try:
            async with self._engine.begin() as connection:
                result = await connection.run_sync(work)
        except (SQLAlchemyError, OSError) as exc:
            self.health.failed(exc)
            raise refusal(exc, "write") from exc
        self.health.succeeded()
        return result

    async def read(self, work: Callable[[Connection], T]) -> T:
        try:
            async with self._engine.connect() as connection:
                return await connection.run_sync(work)
        except (SQLAlchemyError, OSError) as exc:
            raise refusal(exc, "read") from exc

    async def close(self) -> None:
        return None  # the engine belongs to the store, which disposes of it


class SqliteRunner:
    def __init__(self, url: str) -> None:
        self.dialect = "sqlite"
        sync_url = make_url(url).set(drivername="sqlite+pysqlite")
        # A connection is used by one thread at a time (the pool sees to it), not always the
        # thread that opened it: the check would refuse that.
        connect_args = {"check_same_thread": False}
        # Errors show the SQL but never its parameters: those are citizens' texts.
        self.write_engine = create_sync_engine(
            sync_url, connect_args=connect_args, pool_size=1, max_overflow=0, hide_parameters=True
        )
        self._read_engine = create_sync_engine(
            sync_url,
            connect_args=connect_args,
            pool_size=SQLITE_READERS,
            max_overflow=0,
            hide_parameters=True,
        )
        self.health = WriteHealth()
        for engine, begin in ((self.write_engine, "BEGIN IMMEDIATE"), (self._read_engine, None)):
            event.listen(engine, "connect", sqlite_pragmas)
            if begin is not None:
                event.listen(engine, "begin", functools.partial(_emit, begin))
        # Reads run without BEGIN: each SELECT sees one consistent snapshot on its own.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="civicdesk-sqlite-writer")
        self._readers = ThreadPoolExecutor(SQLITE_READERS, thread_name_prefix="civicdesk-sqlite")
        self._closed = False
        self._database = sync_url.database or ""
        self._raw: sqlite3.Connection | None = None  # used only in the writer thread
        self._inline: sqlite3.Connection | None = None  # used only in the event loop
        self.raw_commits = 0  # transactions committed by write_raw (tests count commits)

    async def write(self, work: Callable[[Connection], T]) -> T:
        return await self._run(self._writer, self.write_engine, work, "write")

    async def write_raw(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in a write transaction on a plain sqlite3 connection, in the writer thread
        (so in turn with every other write of this process). For the hottest path only, the
        group commit of inbound messages: SQLAlchemy's execution machinery cost several times
        what SQLite itself spends on a small transaction."""

        def transaction() -> T:
            connection = self._raw_connection()
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = work(connection)
                connection.execute("COMMIT")
            except BaseException:
                _rollback(connection)
                raise
            self.raw_commits += 1
            return result

        if self._closed:
            raise StoreUnavailable("the store is closed")
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._writer, transaction)
        except (sqlite3.Error, ValueError, OSError) as exc:
            self.health.failed(exc)
            raise refusal(exc, "write") from exc
        self.health.succeeded()
        return result

    def try_write_inline(self, work: Callable[[sqlite3.Connection], T]) -> T | None:
        """`write_raw` right here in the calling thread (the event loop), or None at once when
        another connection holds the write lock (this process's writer thread, another
        process): the caller then takes `write_raw`, which waits its turn.

        A small commit in WAL mode without fsync costs tens of microseconds: less than the
        hop to the writer thread and back, which made most of the cost of storing a message."""
        if self._closed:
            raise StoreUnavailable("the store is closed")
        connection = self._inline
        if connection is None:
            connection = sqlite3.connect(self._database, check_same_thread=False)
            sqlite_pragmas(connection, None)
            connection.execute("PRAGMA busy_timeout=0")  # never wait in the event loop
            self._inline = connection
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return None  # busy: let the writer thread wait for the lock
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"database write failed: {exc}") from exc
        try:
            result = work(connection)
            connection.execute("COMMIT")
        except BaseException as exc:
            _rollback(connection)
            if isinstance(exc, (sqlite3.Error, ValueError, OSError)):
                self.health.failed(exc)
                raise refusal(exc, "write") from exc
            raise
        self.raw_commits += 1
        self.health.succeeded()
        return result

    def _raw_connection(self) -> sqlite3.Connection:
        if self._raw is None:
            connection = sqlite3.connect(self._database, check_same_thread=False)
            sqlite_pragmas(connection, None)
            self._raw = connection
        return self._raw

    async def read(self, work: Callable[[Connection], T]) -> T:
        return await self._run(self._readers, self._read_engine, work, "read")

    async def _run(
        self, pool: ThreadPoolExecutor, engine: Engine, work: Callable[[Connection], T], kind: str
    ) -> T:
        def transaction() -> T:
            with engine.begin() as connection:
                return work(connection)

        if self._closed:
            raise StoreUnavailable("the store is closed")
        try:
            result = await asyncio.get_running_loop().run_in_executor(pool, transaction)
        except (SQLAlchemyError, OSError) as exc:
            if kind == "write":
                self.health.failed(exc)
            raise refusal(exc, kind) from exc
        if kind == "write":
            self.health.succeeded()
        return result

    async def close(self) -> None:
        self._closed = True

        def shut() -> None:
            self._writer.shutdown(wait=True)
            for connection in (self._raw, self._inline):
                if connection is not None:
                    connection.close()
            self._readers.shutdown(wait=True)
            self.write_engine.dispose()
            self._read_engine.dispose()

        await asyncio.to_thread(shut)


def _rollback(connection: sqlite3.Connection) -> None:
    """Roll back what is left of a failed transaction. SQLite may have rolled it back itself
    (a COMMIT that found the disk full): ROLLBACK then says "cannot rollback - no transaction
    is active", which must not hide the error that matters."""
    if connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")


def _emit(statement: str, connection: Connection) -> None:
    connection.exec_driver_sql(statement)

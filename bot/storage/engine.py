"""The async engine and the schema: `create_engine(url)` and `upgrade(engine)` (Alembic).

SQLite (`sqlite+aiosqlite:///path`, the default) is tuned here once per connection; PostgreSQL
(`postgresql+asyncpg://...`) needs nothing special. Nothing else in civicdesk creates engines.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Table, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.config.database_url import require_driver

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000  # another process holding the write lock: wait, do not fail


class StoreUnavailable(Exception):
    """The database could not be reached or refused the work; nothing was stored.

    The web layer answers 503 so that the platform retries later.
    """


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`, with SQLite set up for a service rather than a script.
    MissingDriver (a ConfigError) when PostgreSQL's driver, an optional extra, is absent."""
    require_driver(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        # Connections dropped by a restarted server are noticed before use, not by a request.
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver would start transactions itself, late (at the first INSERT or UPDATE, so a read
    # before it runs outside the transaction) and never for DDL. SQLAlchemy's documented recipe:
    # the driver does nothing, and a "begin" listener emits BEGIN (here, and in bot.storage.runner).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers (dashboards, /metrics, the CLI) run while a writer commits. With WAL,
        # synchronous=NORMAL still makes every commit durable against a crash of the process
        # (kill -9, an exception, an OOM kill): the WAL is written before COMMIT returns and the
        # OS keeps it. Only a power loss or OS crash can lose the last commits, which is the
        # trade SQLite documents for WAL+NORMAL; FULL would fsync on every group commit.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def alembic_config() -> Config:
    """Alembic's configuration without an alembic.ini: the scripts ship inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` (all migrations by default). Safe to run again."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade_on, revision)
    log.info("database schema upgraded to %s (%s)", revision, engine.dialect.name)


def _upgrade_on(connection: Connection, revision: str) -> None:
    config = alembic_config()
    # env.py uses this connection instead of opening its own (see bot/migrations/env.py).
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def has_schema(engine: AsyncEngine) -> bool:
    """Whether the tables exist (an empty SQLite file has none)."""
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: inspect(sync).has_table("inbox"))


def insert_ignoring_duplicates(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT with ON CONFLICT (SQLAlchemy spells it per dialect); the callers add
    the conflict clause."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise StoreUnavailable(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")


async def upgrade_database(url: str) -> None:
    """Create or migrate the tables of the database at `url` (`civicdesk db upgrade`).
    Raises StoreUnavailable, saying why, when the database cannot be reached or migrated."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreUnavailable(str(exc)) from exc
    finally:
        await engine.dispose()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database URL; None for other databases (and in-memory SQLite)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)

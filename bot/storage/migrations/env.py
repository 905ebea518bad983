"""Alembic's environment for civicdesk.

`bot.storage.engine.upgrade` runs the migrations on a connection of the service's own async
engine, handed
over in `config.attributes["connection"]` (the async-engine recipe of Alembic's cookbook, through
`run_sync`). Run by hand (`alembic -x url=...`), it opens its own async engine.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, text
from sqlmodel import SQLModel

import bot.storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from bot.storage.engine import create_engine

# Two processes starting on one empty PostgreSQL database would both create the tables; the
# second waits on this lock and then finds the schema current. Any constant works, if fixed.
_PG_MIGRATION_LOCK = 0x63697669  # "civi"

target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them: later migrations get that for free.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": _PG_MIGRATION_LOCK})
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("alembic: pass the database with -x url=sqlite+aiosqlite:///civicdesk.db")
    asyncio.run(_run_with_own_engine(url))


if context.is_offline_mode():
    raise SystemExit("civicdesk migrations run online only: use `civicdesk db upgrade`")
main()

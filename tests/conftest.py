"""Shared fixtures. Each section belongs to one part of the suite; add yours in a new section."""

from __future__ import annotations

# === storage: databases (SQLite files, and PostgreSQL when one is reachable) ======================
# `database_url` gives each test an empty database: a fresh SQLite file in tmp_path, and, as a
# second parameter, the tables of a PostgreSQL database made for this test session (emptied before
# every test). Without a reachable PostgreSQL the postgresql cases skip and say why.
# CIVICDESK_TEST_POSTGRES overrides where the server is (default postgresql://postgres@127.0.0.1).
import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from synapse_support import Synapse, running_synapse

from bot.storage.engine import create_engine, upgrade
from bot.storage.store import Store
from tests.kb_support import copy_base

# The suite's expectations of answers were written for the lexical matcher: with the semantic extra
# installed, processes the tests start keep to it unless CIVICDESK_SEMANTIC is set explicitly, and
# in-process settings (built from a test's own mapping, CIVICDESK_SEMANTIC=auto) find no model.
# tests/test_semantic.py exercises the hybrid matcher itself, and skips without the model.
os.environ.setdefault("CIVICDESK_SEMANTIC", "off")


@pytest.fixture(autouse=True)
def _lexical_unless_semantic_test(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if request.module.__name__.rsplit(".", 1)[-1] != "test_semantic":
        import bot.runtime.embedding as embedding  # noqa: PLC0415

        monkeypatch.setattr(embedding, "model_installed", lambda: False)


_PG_SERVER = os.environ.get("CIVICDESK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
_PG_TABLES = (
    "conversation_state, outbox, escalation_event, escalation, inbox, poll_cursor, operator"
)


async def _pg_admin(statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415  (PostgreSQL cases only)

    connection = await asyncpg.connect(f"{_PG_SERVER}/postgres", timeout=3)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _pg_migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this session, migrated, dropped at the end."""
    name = f"civicdesk_test_{secrets.token_hex(4)}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, ImportError) as exc:
        pytest.skip(f"PostgreSQL is not reachable at {_PG_SERVER}: {exc}")
    except Exception as exc:  # asyncpg's own errors: auth, permissions
        pytest.skip(f"cannot create a test database on {_PG_SERVER}: {exc}")
    url = _PG_SERVER.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"
    try:
        asyncio.run(_pg_migrate(url))
        yield url
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_empty(url: str) -> None:
    import asyncpg  # noqa: PLC0415

    connection = await asyncpg.connect(url.replace("+asyncpg", "", 1), timeout=3)
    try:
        await connection.execute(f"TRUNCATE {_PG_TABLES} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or the session's PostgreSQL database emptied.

    Synchronous on purpose: it may run asyncio.run(), which must not happen inside a test's loop.
    """
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'civicdesk.db'}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(_pg_empty(url))
    return url


@pytest.fixture
def postgres_database_url(postgres_url: str) -> str:
    """The session's PostgreSQL database emptied (for tests about PostgreSQL itself)."""
    asyncio.run(_pg_empty(postgres_url))
    return postgres_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A new SQLite file (for tests about SQLite itself)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'civicdesk.db'}"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()


# === end of storage fixtures ======================================================================


# === processes: a PostgreSQL database of one test, for `civicdesk serve` child processes =========
# Empty (no tables: the test runs `civicdesk db upgrade` itself, as a deployer does), created for
# the test and dropped after it, with every connection the processes left behind.


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """postgresql+asyncpg://... of a new, empty database; skips when PostgreSQL is unreachable."""
    name = f"civicdesk_proc_{secrets.token_hex(4)}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, ImportError) as exc:
        pytest.skip(f"PostgreSQL is not reachable at {_PG_SERVER} (pg_isready -h 127.0.0.1): {exc}")
    except Exception as exc:  # asyncpg's own errors: auth, permissions
        pytest.skip(f"cannot create a test database on {_PG_SERVER}: {exc}")
    try:
        yield _PG_SERVER.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# === end of process fixtures ======================================================================


# --- Matrix: a real Synapse per test module (test_matrix_synapse.py, test_handoff_matrix.py) ---


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    started = time.monotonic()
    with running_synapse(tmp_path_factory.mktemp("synapse")) as server:
        print(f"Synapse up in {time.monotonic() - started:.1f} s at {server.url}")
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# --- Knowledge files (tests/test_knowledge.py, tests/test_kb_check.py) ---------------------------


@pytest.fixture
def kb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A valid knowledge folder at ./knowledge that a test breaks one mistake at a time."""
    return copy_base(tmp_path, monkeypatch)

"""DATABASE_URL as operators and hosting platforms write it, turned into the async driver's URL.

civicdesk runs on SQLAlchemy's asyncio engines, so it needs `sqlite+aiosqlite://` or
`postgresql+asyncpg://`. Hosting platforms hand out `postgres://user:pass@host/db` (Heroku,
Render, Fly) or `postgresql://...`, and people write `sqlite:///civicdesk.db` from habit: those
are mapped to the async driver rather than refused. Anything else (MySQL, a synchronous driver
such as psycopg2, a path without a scheme) is refused with the accepted forms named.
"""

from __future__ import annotations

import importlib.util
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.config.errors import ConfigError

ACCEPTED_FORMS = (
    "sqlite:///civicdesk.db (a file, created on first start), "
    "sqlite+aiosqlite:///civicdesk.db, "
    "postgresql://user:password@host:5432/dbname, postgres://... "
    "or postgresql+asyncpg://..."
)

SQLITE_ASYNC = "sqlite+aiosqlite"
POSTGRES_ASYNC = "postgresql+asyncpg"

# Scheme as written → the scheme civicdesk uses.
_SCHEMES = {
    "sqlite": SQLITE_ASYNC,
    SQLITE_ASYNC: SQLITE_ASYNC,
    "postgres": POSTGRES_ASYNC,
    "postgresql": POSTGRES_ASYNC,
    POSTGRES_ASYNC: POSTGRES_ASYNC,
}


class DatabaseUrlError(ValueError):
    """DATABASE_URL cannot be used; the message names the accepted forms (never the password)."""


class MissingDriver(ConfigError):
    """The URL is fine but its driver is an optional extra that is not installed."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"DATABASE_URL names PostgreSQL, whose driver {module} is not installed: "
            f"pip install 'civicdesk[{extra}]'"
        )
        self.module = module
        self.extra = extra


def database_url(value: str) -> str:
    """The async driver's URL for `value`; DatabaseUrlError when it is not a usable form."""
    value = value.strip()
    scheme, separator, rest = value.partition("://")
    if not separator:
        raise DatabaseUrlError(f"it has no scheme: use {ACCEPTED_FORMS}")
    driver = _SCHEMES.get(scheme.lower())
    if driver is None:
        raise DatabaseUrlError(
            f"the scheme {scheme!r} is not supported (civicdesk runs on SQLite or PostgreSQL "
            f"with async drivers): use {ACCEPTED_FORMS}"
        )
    if driver == SQLITE_ASYNC:
        # sqlite:///relative.db, sqlite:////absolute.db; sqlite:// alone is an in-memory
        # database, gone at every restart and not shared between processes.
        if not rest.startswith("/") or rest == "/":
            raise DatabaseUrlError(
                f"a SQLite URL names a file after three slashes: use {ACCEPTED_FORMS}"
            )
        return f"{driver}://{rest}"
    parts = urlsplit(f"{driver}://{rest}")
    if not parts.hostname and not parts.path.strip("/"):
        raise DatabaseUrlError(
            f"a PostgreSQL URL names at least a host or a database: use {ACCEPTED_FORMS}"
        )
    return urlunsplit(parts._replace(query=_asyncpg_query(parts.query)))


def _asyncpg_query(query: str) -> str:
    """Managed databases hand out `?sslmode=require` (libpq's name); SQLAlchemy passes query
    parameters to asyncpg.connect() as they are, and asyncpg calls it `ssl` (same values)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    names = {name for name, _ in pairs}
    if "sslmode" not in names or "ssl" in names:
        return query
    return urlencode([("ssl" if name == "sslmode" else name, value) for name, value in pairs])


def require_driver(url: str) -> None:
    """MissingDriver when `url` needs an optional driver that is not installed."""
    if url.startswith(POSTGRES_ASYNC) and importlib.util.find_spec("asyncpg") is None:
        raise MissingDriver("asyncpg", "postgres")

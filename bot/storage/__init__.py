"""Everything that is kept: the engine (SQLite or PostgreSQL), the table models and migrations,
the group commit of inbound messages (`ingest`), and the Store with typed methods for the inbox,
outbox, tickets, reports, operators and retention. The only package that speaks SQL.
Two ways into SQLite, each for a reason: the async engine (aiosqlite, SQLAlchemy Core) for
everything the service does, and Alembic's migrations on that same engine; the group commit of
`ingest` and `commit_watch` reach the same file through the engine's raw connection (the hot path
needs executemany without ORM overhead, and PRAGMA data_version). May import: tickets, answering,
platform, runtime.
"""

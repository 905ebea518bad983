"""PostgreSQL: wake other processes' workers when work is committed (LISTEN/NOTIFY).

A new inbox or outbox row, or an outbox row put back to pending (a retry, a released claim),
sends a notification on `civicdesk_inbox` / `civicdesk_outbox` when its transaction commits,
whoever wrote it (the web process, another worker, the command line, /admin). Workers listen
(`bot.storage.pg_wake`) and claim at once instead of at their next poll. PostgreSQL folds identical
notifications of one transaction into one. SQLite has no such thing: `bot.storage.commit_watch`
reads
`PRAGMA data_version` there instead, and this migration does nothing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATEMENTS = (
    """
    CREATE OR REPLACE FUNCTION civicdesk_wake() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify(TG_ARGV[0], '');
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER inbox_wake AFTER INSERT ON inbox
    FOR EACH STATEMENT EXECUTE FUNCTION civicdesk_wake('civicdesk_inbox')
    """,
    """
    CREATE TRIGGER outbox_wake AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION civicdesk_wake('civicdesk_outbox')
    """,
    """
    CREATE TRIGGER outbox_pending_wake AFTER UPDATE OF status ON outbox
    FOR EACH ROW WHEN (NEW.status = 'pending' AND OLD.status IS DISTINCT FROM 'pending')
    EXECUTE FUNCTION civicdesk_wake('civicdesk_outbox')
    """,
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS outbox_pending_wake ON outbox")
    op.execute("DROP TRIGGER IF EXISTS outbox_wake ON outbox")
    op.execute("DROP TRIGGER IF EXISTS inbox_wake ON inbox")
    op.execute("DROP FUNCTION IF EXISTS civicdesk_wake()")

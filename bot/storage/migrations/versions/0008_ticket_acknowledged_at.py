"""When the citizen was last told that their follow-up joined their ticket: the bot says so at
most once per few minutes while a person has the ticket (bot.tickets.conversation).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    column = sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True)
    op.add_column("escalation", column)


def downgrade() -> None:
    with op.batch_alter_table("escalation") as batch:
        batch.drop_column("acknowledged_at")

"""Platform adapters: how a reply addresses the asker, the reply context adapters keep with a
message, and pollers' cursors.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("mention", sa.String(255), nullable=True))
        batch.add_column(sa.Column("reply_context", sa.String(), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("reply_context", sa.String(), nullable=True))
    op.create_table(
        "poll_cursor",
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("cursor", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("poll_cursor")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("reply_context")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("reply_context")
        batch.drop_column("mention")

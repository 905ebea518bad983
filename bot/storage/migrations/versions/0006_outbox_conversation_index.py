"""The web chat reads its replies from the outbox, from whichever process serves the page.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_conversation", "outbox", ["channel", "conversation", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_conversation", table_name="outbox")

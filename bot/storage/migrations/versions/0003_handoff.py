"""Human handoff: who claimed a ticket, its promised answer time and reply deadline, the
escalation log, and the lookup of ticket posts by the platform's id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("escalation") as batch:
        batch.add_column(sa.Column("assigned_to", sa.String(128), nullable=True))
        batch.add_column(sa.Column("close_reason", sa.String(), nullable=True))
        batch.add_column(_when("due_at"))
        batch.add_column(_when("reply_deadline"))
        batch.add_column(_when("reminded_at"))
    op.create_table(
        "escalation_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("escalation_id", sa.Integer(), sa.ForeignKey("escalation.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=True),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("detail", sa.String(), nullable=True),
    )
    op.create_index("ix_escalation_event_ticket", "escalation_event", ["escalation_id", "id"])
    op.create_index("ix_outbox_posted", "outbox", ["channel", "platform_message_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_posted", "outbox")
    op.drop_index("ix_escalation_event_ticket", "escalation_event")
    op.drop_table("escalation_event")
    with op.batch_alter_table("escalation") as batch:
        for column in ("reminded_at", "reply_deadline", "due_at", "close_reason", "assigned_to"):
            batch.drop_column(column)

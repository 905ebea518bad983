"""The first schema: inbox, outbox, escalations and conversation state.

Revision ID: 0001
Revises:
Create Date: 2026-01-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("platform_id", sa.String(255), nullable=False),
        sa.Column("conversation", sa.String(255), nullable=False),
        sa.Column("sender", sa.String(255), nullable=False),
        sa.Column("sender_name", sa.String(255), nullable=True),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("lang_hint", sa.String(16), nullable=True),
        sa.Column("reply_to", sa.String(255), nullable=True),
        _when("received_at", nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        _when("lease_until", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("entry_id", sa.String(128), nullable=True),
        _when("processed_at", nullable=True),
        sa.UniqueConstraint("channel", "platform_id", name="uq_inbox_channel_platform_id"),
    )
    op.create_index("ix_inbox_claimable", "inbox", ["status", "lease_until"])

    op.create_table(
        "escalation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("reference", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("inbox_id", sa.Integer(), sa.ForeignKey("inbox.id"), nullable=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("conversation", sa.String(255), nullable=False),
        sa.Column("sender", sa.String(255), nullable=False),
        sa.Column("sender_name", sa.String(255), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("question", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=True),
        sa.Column("answer", sa.String(), nullable=True),
        sa.Column("answered_by", sa.String(128), nullable=True),
        _when("created_at", nullable=False),
        _when("answered_at", nullable=True),
        _when("closed_at", nullable=True),
    )
    op.create_index("ix_escalation_reference", "escalation", ["reference"], unique=True)
    op.create_index("ix_escalation_status", "escalation", ["status"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("inbox_id", sa.Integer(), sa.ForeignKey("inbox.id"), nullable=True),
        sa.Column("escalation_id", sa.Integer(), sa.ForeignKey("escalation.id"), nullable=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("conversation", sa.String(255), nullable=False),
        sa.Column("recipient", sa.String(255), nullable=True),
        sa.Column("reply_to", sa.String(255), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("next_attempt_at", nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        _when("lease_until", nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("platform_message_id", sa.String(255), nullable=True),
        _when("created_at", nullable=False),
        _when("sent_at", nullable=True),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_inbox_id", "outbox", ["inbox_id"])

    op.create_table(
        "conversation_state",
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("conversation", sa.String(255), primary_key=True),
        sa.Column("pending_options", sa.JSON(), nullable=True),
        sa.Column("pending_lang", sa.String(8), nullable=True),
        _when("expires_at", nullable=True),
    )
    op.create_index("ix_conversation_state_expires", "conversation_state", ["expires_at"])


def downgrade() -> None:
    op.drop_table("conversation_state")
    op.drop_table("outbox")
    op.drop_table("escalation")
    op.drop_table("inbox")

"""Announcements: written once, posted on each channel through the outbox (the post's outbox
row is its idempotency key), with the platform's id and link of every post.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "announcement",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("bodies", sa.JSON(), nullable=True),
        sa.Column("link", sa.String(2048), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=True),
        sa.Column("image_type", sa.String(64), nullable=True),
        sa.Column("publish_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=True),
    )
    op.create_table(
        "announcement_post",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "announcement_id", sa.Integer(), sa.ForeignKey("announcement.id"), nullable=False
        ),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("outbox_id", sa.Integer(), sa.ForeignKey("outbox.id"), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("text_count", sa.Integer(), nullable=False),
        sa.Column("text_limit", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.String(255), nullable=True),
        sa.Column("url", sa.String(2048), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("announcement_id", "channel", name="uq_announcement_post_channel"),
        sa.UniqueConstraint("outbox_id", name="uq_announcement_post_outbox_id"),
    )
    op.create_index(
        "ix_announcement_post_announcement_id", "announcement_post", ["announcement_id"]
    )
    op.create_index(
        "ix_announcement_post_platform", "announcement_post", ["channel", "platform_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_announcement_post_platform", "announcement_post")
    op.drop_index("ix_announcement_post_announcement_id", "announcement_post")
    op.drop_table("announcement_post")
    op.drop_table("announcement")

"""The institution an operator account belongs to (NULL: a coordinator, who sees every
institution).

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("operator", sa.Column("institution", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operator") as batch:
        batch.drop_column("institution")

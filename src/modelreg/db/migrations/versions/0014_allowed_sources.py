"""Allowed sources: S3 buckets and prefixes an import or the MLflow door may copy from.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 19:55:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Expand only: a new table, which code before this revision ignores.
    op.create_table(
        "allowed_sources",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("uri", sa.String(length=1100), nullable=False),
        sa.Column("added_by", sa.String(length=128), nullable=False),
        sa.Column(
            "added_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allowed_sources")),
        sa.UniqueConstraint("uri", name=op.f("uq_allowed_sources_uri")),
    )


def downgrade() -> None:
    op.drop_table("allowed_sources")

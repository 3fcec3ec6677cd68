"""Blob possessions: who uploaded which bytes, so a digest alone claims no blob.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 04:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A new table only (expand): the code before this revision never reads it. Blobs stored
    # before it have no rows; their uploaders prove possession again by sending the bytes
    # once (dedup stores nothing twice), unless they may read a version that holds them.
    op.create_table(
        "blob_possessions",
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint("length(sha256) = 64", name=op.f("ck_blob_possessions_sha256_hex")),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_blob_possessions_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("principal_id", "sha256", name=op.f("pk_blob_possessions")),
    )


def downgrade() -> None:
    op.drop_table("blob_possessions")

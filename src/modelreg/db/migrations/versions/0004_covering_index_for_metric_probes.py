"""A covering index for metric probes: (version_id, key, value) on version_metrics.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 16:31:14.112851
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("version_metrics", schema=None) as batch_op:
        batch_op.create_index(
            "ix_version_metrics_version_id_key_value", ["version_id", "key", "value"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("version_metrics", schema=None) as batch_op:
        batch_op.drop_index("ix_version_metrics_version_id_key_value")

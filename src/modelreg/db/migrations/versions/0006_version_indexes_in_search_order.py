"""Search order: indexes on versions by (created_at, id), and the version's time on its metrics.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 19:47:12.858885
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

METRIC_INDEX = "ix_version_metrics_key_version_created_at_version_id_value"


def upgrade() -> None:
    # Plain CREATE/DROP INDEX on both databases: SQLite needs no copy of model_versions.
    op.create_index("ix_model_versions_created_at_id", "model_versions", ["created_at", "id"])
    op.create_index(
        "ix_model_versions_model_id_created_at_id",
        "model_versions",
        ["model_id", "created_at", "id"],
    )
    # (created_at, id) answers everything (created_at) did.
    op.drop_index("ix_model_versions_created_at", table_name="model_versions")

    # Added empty, filled from the versions, then required.
    op.add_column(
        "version_metrics",
        sa.Column("version_created_at", sa.DateTime(timezone=True), nullable=True),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE version_metrics SET version_created_at = model_versions.created_at "
            "FROM model_versions WHERE model_versions.id = version_metrics.version_id"
        )
        op.alter_column("version_metrics", "version_created_at", nullable=False)
    else:
        op.execute(
            "UPDATE version_metrics SET version_created_at = (SELECT model_versions.created_at "
            "FROM model_versions WHERE model_versions.id = version_metrics.version_id)"
        )
        # SQLite makes a column NOT NULL only by copying the table (metrics, not versions).
        with op.batch_alter_table("version_metrics") as batch_op:
            batch_op.alter_column(
                "version_created_at", existing_type=sa.DateTime(timezone=True), nullable=False
            )
    op.create_index(
        METRIC_INDEX,
        "version_metrics",
        ["key", "version_created_at", "version_id", "value"],
    )


def downgrade() -> None:
    op.drop_index(METRIC_INDEX, table_name="version_metrics")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column("version_metrics", "version_created_at")
    else:
        with op.batch_alter_table("version_metrics") as batch_op:
            batch_op.drop_column("version_created_at")
    op.create_index("ix_model_versions_created_at", "model_versions", ["created_at"])
    op.drop_index("ix_model_versions_model_id_created_at_id", table_name="model_versions")
    op.drop_index("ix_model_versions_created_at_id", table_name="model_versions")

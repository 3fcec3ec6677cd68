"""The MLflow door: experiments, runs, logged models and their artifact tree; version source.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 17:00:03.822342
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlflow_artifacts",
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("path", name=op.f("pk_mlflow_artifacts")),
    )
    with op.batch_alter_table("mlflow_artifacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mlflow_artifacts_sha256"), ["sha256"], unique=False)

    op.create_table(
        "mlflow_experiments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("lifecycle_stage", sa.String(length=16), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlflow_experiments")),
        sa.UniqueConstraint("name", name=op.f("uq_mlflow_experiments_name")),
    )
    op.create_table(
        "mlflow_logged_models",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("source_run_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("model_type", sa.String(length=128), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["mlflow_experiments.id"],
            name=op.f("fk_mlflow_logged_models_experiment_id_mlflow_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlflow_logged_models")),
    )
    with op.batch_alter_table("mlflow_logged_models", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mlflow_logged_models_source_run_id", ["source_run_id"], unique=False
        )

    op.create_table(
        "mlflow_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lifecycle_stage", sa.String(length=16), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["mlflow_experiments.id"],
            name=op.f("fk_mlflow_runs_experiment_id_mlflow_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlflow_runs")),
    )
    with op.batch_alter_table("mlflow_runs", schema=None) as batch_op:
        batch_op.create_index("ix_mlflow_runs_experiment_id", ["experiment_id"], unique=False)

    # Plain ALTER TABLE, not a batch copy: SQLite's copy-and-rename would drop the old table,
    # and with foreign keys on that cascades to every version's files, tags and metrics.
    op.add_column("model_versions", sa.Column("source_uri", sa.String(length=2048), nullable=True))
    op.add_column(
        "model_versions", sa.Column("imported_from", sa.String(length=2048), nullable=True)
    )


def downgrade() -> None:
    # SQLite (3.35+) drops unindexed columns in place; see upgrade() for why not a batch copy.
    op.drop_column("model_versions", "imported_from")
    op.drop_column("model_versions", "source_uri")

    with op.batch_alter_table("mlflow_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_mlflow_runs_experiment_id")

    op.drop_table("mlflow_runs")
    with op.batch_alter_table("mlflow_logged_models", schema=None) as batch_op:
        batch_op.drop_index("ix_mlflow_logged_models_source_run_id")

    op.drop_table("mlflow_logged_models")
    op.drop_table("mlflow_experiments")
    with op.batch_alter_table("mlflow_artifacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mlflow_artifacts_sha256"))

    op.drop_table("mlflow_artifacts")

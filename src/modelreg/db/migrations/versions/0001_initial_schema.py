"""Initial schema: models, versions and their manifests, aliases, history, audit log, tombstones.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 12:15:17.025303
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("model_key", sa.String(length=128), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("length(hash) = 64", name=op.f("ck_audit_events_hash_hex")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_model_key_seq", ["model_key", "seq"], unique=False)

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    # The chain starts from an all-zero hash; appends lock this one row.
    op.bulk_insert(
        sa.table(
            "audit_head",
            sa.column("id", sa.Integer()),
            sa.column("last_seq", sa.BigInteger()),
            sa.column("last_hash", sa.String()),
        ),
        [{"id": 1, "last_seq": 0, "last_hash": "0" * 64}],
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("normalized_name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("normalized_name", name=op.f("uq_models_normalized_name")),
    )
    op.create_table(
        "tombstones",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("normalized_name", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("deleted_by", sa.String(length=128), nullable=False),
        sa.Column(
            "deleted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tombstones")),
    )
    with op.batch_alter_table("tombstones", schema=None) as batch_op:
        batch_op.create_index("ix_tombstones_normalized_name", ["normalized_name"], unique=False)

    op.create_table(
        "history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "stage",
                "alias",
                name="history_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column(
            "at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_history_model_id_models"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history")),
    )
    with op.batch_alter_table("history", schema=None) as batch_op:
        batch_op.create_index("ix_history_model_id_at", ["model_id", "at"], unique=False)

    op.create_table(
        "model_tags",
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_model_tags_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "key", name=op.f("pk_model_tags")),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("semver", sa.String(length=128), nullable=True),
        sa.Column("semver_key", sa.String(length=160), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "ready",
                "failed",
                name="version_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "stage",
            sa.Enum(
                "none",
                "staging",
                "production",
                "archived",
                name="stage",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("framework", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.String(length=256), nullable=True),
        sa.Column("git_repo", sa.String(length=1024), nullable=True),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.Column("git_dirty", sa.Boolean(), nullable=True),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("signature", sa.JSON(), nullable=True),
        sa.Column("scan", sa.JSON(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=256), nullable=True),
        sa.Column("total_size", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("number >= 1", name=op.f("ck_model_versions_number_positive")),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_model_versions_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint(
            "model_id", "idempotency_key", name=op.f("uq_model_versions_model_id_idempotency_key")
        ),
        sa.UniqueConstraint("model_id", "number", name=op.f("uq_model_versions_model_id_number")),
        sa.UniqueConstraint("model_id", "semver", name=op.f("uq_model_versions_model_id_semver")),
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index("ix_model_versions_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_model_versions_model_id_stage", ["model_id", "stage"], unique=False
        )

    op.create_table(
        "aliases",
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_aliases_model_id_models"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_aliases_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "name", name=op.f("pk_aliases")),
    )
    with op.batch_alter_table("aliases", schema=None) as batch_op:
        batch_op.create_index("ix_aliases_version_id", ["version_id"], unique=False)

    op.create_table(
        "version_datasets",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("ref", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_version_datasets_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "position", name=op.f("pk_version_datasets")),
    )
    op.create_table(
        "version_files",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.CheckConstraint("length(sha256) = 64", name=op.f("ck_version_files_sha256_hex")),
        sa.CheckConstraint("size >= 0", name=op.f("ck_version_files_size_nonnegative")),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_version_files_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "path", name=op.f("pk_version_files")),
    )
    with op.batch_alter_table("version_files", schema=None) as batch_op:
        batch_op.create_index("ix_version_files_sha256", ["sha256"], unique=False)

    op.create_table(
        "version_metrics",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_version_metrics_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "key", name=op.f("pk_version_metrics")),
    )
    with op.batch_alter_table("version_metrics", schema=None) as batch_op:
        batch_op.create_index("ix_version_metrics_key_value", ["key", "value"], unique=False)

    op.create_table(
        "version_params",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_version_params_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "key", name=op.f("pk_version_params")),
    )
    with op.batch_alter_table("version_params", schema=None) as batch_op:
        batch_op.create_index("ix_version_params_key", ["key"], unique=False)

    op.create_table(
        "version_parents",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("parent_name", sa.String(length=128), nullable=False),
        sa.Column("parent_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["model_versions.id"],
            name=op.f("fk_version_parents_parent_id_model_versions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_version_parents_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "position", name=op.f("pk_version_parents")),
    )
    with op.batch_alter_table("version_parents", schema=None) as batch_op:
        batch_op.create_index("ix_version_parents_parent_id", ["parent_id"], unique=False)

    op.create_table(
        "version_tags",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_version_tags_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "key", name=op.f("pk_version_tags")),
    )
    with op.batch_alter_table("version_tags", schema=None) as batch_op:
        batch_op.create_index("ix_version_tags_key", ["key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("version_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_version_tags_key")

    op.drop_table("version_tags")
    with op.batch_alter_table("version_parents", schema=None) as batch_op:
        batch_op.drop_index("ix_version_parents_parent_id")

    op.drop_table("version_parents")
    with op.batch_alter_table("version_params", schema=None) as batch_op:
        batch_op.drop_index("ix_version_params_key")

    op.drop_table("version_params")
    with op.batch_alter_table("version_metrics", schema=None) as batch_op:
        batch_op.drop_index("ix_version_metrics_key_value")

    op.drop_table("version_metrics")
    with op.batch_alter_table("version_files", schema=None) as batch_op:
        batch_op.drop_index("ix_version_files_sha256")

    op.drop_table("version_files")
    op.drop_table("version_datasets")
    with op.batch_alter_table("aliases", schema=None) as batch_op:
        batch_op.drop_index("ix_aliases_version_id")

    op.drop_table("aliases")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_model_versions_model_id_stage")
        batch_op.drop_index("ix_model_versions_created_at")

    op.drop_table("model_versions")
    op.drop_table("model_tags")
    with op.batch_alter_table("history", schema=None) as batch_op:
        batch_op.drop_index("ix_history_model_id_at")

    op.drop_table("history")
    with op.batch_alter_table("tombstones", schema=None) as batch_op:
        batch_op.drop_index("ix_tombstones_normalized_name")

    op.drop_table("tombstones")
    op.drop_table("models")
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_model_key_seq")

    op.drop_table("audit_events")

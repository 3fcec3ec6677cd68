"""Load, serve and safety: version flavors, deployments, blob scans, signatures, trusted keys.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 16:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _now() -> sa.TextClause:
    return sa.text("(CURRENT_TIMESTAMP)")


def upgrade() -> None:
    # Expand only: a nullable column and new tables, which code before this revision ignores.
    op.add_column("model_versions", sa.Column("flavor", sa.JSON(), nullable=True))
    op.create_table(
        "blob_scans",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("scanner", sa.String(length=128), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blob_scans")),
    )
    op.create_table(
        "trusted_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("added_by", sa.String(length=128), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=128), nullable=False),
        sa.Column("revoke_reason", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_keys")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_trusted_keys_fingerprint")),
        sa.UniqueConstraint("name", name=op.f("uq_trusted_keys_name")),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("ref", sa.String(length=300), nullable=False),
        sa.Column("live_version", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=512), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reported_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_deployments_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
    )
    op.create_index(
        "ix_deployments_model_id_heartbeat_at", "deployments", ["model_id", "heartbeat_at"]
    )
    op.create_table(
        "version_signatures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=128), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("bundle", sa.Text(), nullable=False),
        sa.Column("signed_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_version_signatures_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version_signatures")),
    )
    op.create_index(
        op.f("ix_version_signatures_key_fingerprint"), "version_signatures", ["key_fingerprint"]
    )
    op.create_index(op.f("ix_version_signatures_version_id"), "version_signatures", ["version_id"])


def downgrade() -> None:
    op.drop_table("version_signatures")
    op.drop_table("deployments")
    op.drop_table("trusted_keys")
    op.drop_table("blob_scans")
    # Not batch mode: rebuilding model_versions in SQLite would cascade-delete its child rows
    # (files, metrics…). SQLite ≥ 3.35 drops a plain column in place.
    op.execute("ALTER TABLE model_versions DROP COLUMN flavor")

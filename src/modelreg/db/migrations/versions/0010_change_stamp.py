"""The change stamp: a counter every committed registry write moves (``db.stamp``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 07:30:00.000000

Servers kept their cached answers under the audit log's last sequence number, which moved only
when a change remembered to append an event. The counter is now moved by the engine on the
commit of any transaction that wrote a registry table. It starts where the audit log is, so
a stamp is never lower than one a running server saw before the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_stamp",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_change_stamp_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_stamp")),
    )
    op.execute("INSERT INTO change_stamp (id, value) SELECT 1, last_seq FROM audit_head")


def downgrade() -> None:
    op.drop_table("change_stamp")

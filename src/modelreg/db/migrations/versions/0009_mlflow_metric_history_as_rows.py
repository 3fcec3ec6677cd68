"""MLflow metric history as rows: one row per logged point instead of a JSON column per run.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 07:40:00.000000

Before this revision every ``log_batch`` read and rewrote a run's whole history
(``mlflow_runs.history``: key -> [[value, timestamp, step], …]); now a batch appends its
points to ``mlflow_metric_history``. The upgrade moves every point into a row, key by key in
the order it was logged (row ids keep that order, which ``metrics/get-history`` returns), and
the downgrade puts them back. MLflow's JSON spells NaN and the infinities as strings; the rows
keep NaN as NULL and the infinities as floats.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_RUNS = sa.table("mlflow_runs", sa.column("id", sa.String()), sa.column("history", sa.JSON()))
_POINTS = sa.table(
    "mlflow_metric_history",
    sa.column("id", sa.BigInteger()),
    sa.column("run_id", sa.String()),
    sa.column("key", sa.String()),
    sa.column("step", sa.BigInteger()),
    sa.column("timestamp", sa.BigInteger()),
    sa.column("value", sa.Float()),
)
_CHUNK = 5000


def _to_row(value: Any) -> float | None:
    # The JSON holds floats, or "NaN", "Infinity" and "-Infinity" as MLflow spells them.
    number = float(value)
    return None if math.isnan(number) else number


def _to_json(value: float | None) -> float | str:
    if value is None or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _points(bind: sa.Connection) -> Iterator[dict[str, Any]]:
    rows = bind.execute(
        sa.select(_RUNS.c.id, _RUNS.c.history).order_by(_RUNS.c.id).execution_options(yield_per=100)
    )
    for run_id, history in rows:
        for key, points in sorted((history or {}).items()):
            for value, timestamp, step in points:
                yield {
                    "run_id": run_id,
                    "key": key,
                    "step": int(step),
                    "timestamp": int(timestamp),
                    "value": _to_row(value),
                }


def upgrade() -> None:
    op.create_table(
        "mlflow_metric_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["mlflow_runs.id"],
            name=op.f("fk_mlflow_metric_history_run_id_mlflow_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlflow_metric_history")),
    )
    bind = op.get_bind()
    chunk: list[dict[str, Any]] = []
    for point in _points(bind):
        chunk.append(point)
        if len(chunk) == _CHUNK:
            bind.execute(_POINTS.insert(), chunk)
            chunk = []
    if chunk:
        bind.execute(_POINTS.insert(), chunk)
    # After the copy: one index build instead of one update per inserted row.
    op.create_index(
        "ix_mlflow_metric_history_run_id_key_id",
        "mlflow_metric_history",
        ["run_id", "key", "id"],
        unique=False,
    )
    # Plain ALTER TABLE, not a batch copy: SQLite's copy-and-rename would drop mlflow_runs,
    # and with foreign keys on that cascades to the rows just written.
    op.drop_column("mlflow_runs", "history")


def downgrade() -> None:
    bind = op.get_bind()
    history: dict[str, dict[str, list[list[Any]]]] = {}
    rows = bind.execute(
        sa.select(
            _POINTS.c.run_id, _POINTS.c.key, _POINTS.c.value, _POINTS.c.timestamp, _POINTS.c.step
        )
        .order_by(_POINTS.c.run_id, _POINTS.c.key, _POINTS.c.id)
        .execution_options(yield_per=_CHUNK)
    )
    for run_id, key, value, timestamp, step in rows:
        history.setdefault(run_id, {}).setdefault(key, []).append(
            [_to_json(value), timestamp, step]
        )
    op.drop_index("ix_mlflow_metric_history_run_id_key_id", table_name="mlflow_metric_history")
    op.drop_table("mlflow_metric_history")
    op.add_column("mlflow_runs", sa.Column("history", sa.JSON(), nullable=True))
    bind.execute(_RUNS.update().values(history={}))
    if history:
        bind.execute(
            _RUNS.update()
            .where(_RUNS.c.id == sa.bindparam("run"))
            .values(history=sa.bindparam("h", type_=sa.JSON())),
            [{"run": run_id, "h": points} for run_id, points in history.items()],
        )
    # Nothing refers to mlflow_runs any more, so SQLite's batch copy here drops nothing else.
    with op.batch_alter_table("mlflow_runs", schema=None) as batch_op:
        batch_op.alter_column("history", existing_type=sa.JSON(), nullable=False)

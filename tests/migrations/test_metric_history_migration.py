"""Revision 0009 moves MLflow metric history from JSON into rows and back, losing nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from modelreg.db import schema
from modelreg.db.session import make_engine, transaction
from modelreg.services import tracking
from modelreg.services.actor import Actor

ROOT = Actor("root")
_EXPERIMENTS = sa.table(
    "mlflow_experiments",
    *(sa.column(c) for c in ("id", "name", "lifecycle_stage", "created_by")),
    sa.column("tags", sa.JSON()),
    sa.column("created_ms", sa.BigInteger()),
    sa.column("updated_ms", sa.BigInteger()),
)
_RUNS = sa.table(
    "mlflow_runs",
    *(sa.column(c) for c in ("id", "experiment_id", "name", "user_id", "status")),
    *(sa.column(c) for c in ("lifecycle_stage", "start_ms", "created_by")),
    *(sa.column(c, sa.JSON()) for c in ("params", "tags", "metrics", "history", "outputs")),
    sa.column("inputs", sa.JSON()),
)


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _histories() -> dict[str, dict[str, list[list[Any]]]]:
    """Three runs' histories as the 0008 code wrote them: [value, timestamp, step] per point."""
    odd = [0.1, -2.5, 1e300, -1e-300, 5e-324, 0.0, "NaN", "Infinity", "-Infinity", 7.0]
    big = {
        # Out of step order, repeated steps and timestamps: only logging order tells them apart.
        f"k{n}": [
            [(i * 7919 % 1000) / 13, 1_700_000_000_000 + i // 3, (i * 31) % 50] for i in range(3000)
        ]
        for n in range(4)
    }
    return {
        uuid.uuid4().hex: big,  # 12,000 points: more than one chunk of the copy
        uuid.uuid4().hex: {
            "val loss": [
                [v, 1000 + i, i] for i, v in enumerate(odd)
            ],  # MLflow keys may hold spaces
            "acc": [[0.5, 5, 3], [0.25, 4, 3], [0.75, 4, 3]],
        },
        uuid.uuid4().hex: {},  # a run that logged nothing
    }


def _write_0008(engine: sa.Engine, histories: dict[str, dict[str, list[list[Any]]]]) -> None:
    with engine.begin() as conn:
        conn.execute(
            _EXPERIMENTS.insert(),
            [
                {
                    "id": 0,
                    "name": "Default",
                    "lifecycle_stage": "active",
                    "created_by": "",
                    "tags": {},
                    "created_ms": 1,
                    "updated_ms": 1,
                }
            ],
        )
        conn.execute(
            _RUNS.insert(),
            [
                {
                    "id": run_id,
                    "experiment_id": 0,
                    "name": f"run-{run_id[:8]}",
                    "user_id": "root",
                    "status": "FINISHED",
                    "lifecycle_stage": "active",
                    "start_ms": 1,
                    "created_by": "root",
                    "params": {},
                    "tags": {},
                    "metrics": {k: points[-1] for k, points in history.items()},
                    "history": history,
                    "outputs": [],
                    "inputs": {},
                }
                for run_id, history in histories.items()
            ],
        )


def _history_of(engine: sa.Engine, run_id: str, key: str) -> list[dict[str, Any]]:
    with transaction(engine, write=False) as session:
        return tracking.run_logging.metric_history(session, run_id, key, actor=ROOT)


def test_every_point_survives_the_upgrade_and_the_downgrade(engine):
    schema.ensure_schema(engine)
    schema.downgrade(engine, "0008")
    histories = _histories()
    _write_0008(engine, histories)

    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.SCHEMA_REVISION
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM mlflow_metric_history")).scalar()
    assert count == sum(len(p) for h in histories.values() for p in h.values())
    for run_id, history in histories.items():
        for key, points in history.items():
            # What get-history answers is what the JSON held: value (NaN and the infinities as
            # MLflow spells them), timestamp and step, in logging order.
            got = _history_of(engine, run_id, key)
            assert [[p["value"], p["timestamp"], p["step"]] for p in got] == points, key
    # The latest values were not touched: runs/get and runs/search read them as before.
    with transaction(engine, write=False) as session:
        run = tracking.runs.get_run(session, next(iter(histories)), actor=ROOT)
        assert run.metrics == {k: p[-1] for k, p in next(iter(histories.values())).items()}

    schema.downgrade(engine, "0008")
    with engine.connect() as conn:
        back = dict(conn.execute(sa.select(_RUNS.c.id, _RUNS.c.history)).all())
    assert back == histories
    schema.upgrade(engine)


def test_points_logged_after_the_upgrade_go_back_into_the_json(engine):
    schema.ensure_schema(engine)
    with transaction(engine, write=True) as session:
        run_id = tracking.runs.create_run(session, actor=ROOT, experiment="0").id
        points = [
            tracking.run_logging.metric_point({"key": "x", "value": v, "step": s, "timestamp": 9})
            for s, v in enumerate(("NaN", "Infinity", "-Infinity", 0.5, 3))
        ]
        tracking.run_logging.log_batch(session, run_id, actor=ROOT, metrics=points)
    schema.downgrade(engine, "0008")
    with engine.connect() as conn:
        history = conn.execute(sa.select(_RUNS.c.history).where(_RUNS.c.id == run_id)).scalar_one()
    expected = [["NaN", 9, 0], ["Infinity", 9, 1], ["-Infinity", 9, 2], [0.5, 9, 3], [3.0, 9, 4]]
    assert history == {"x": expected}
    schema.upgrade(engine)
    assert [[p["value"], p["timestamp"], p["step"]] for p in _history_of(engine, run_id, "x")] == (
        expected
    )

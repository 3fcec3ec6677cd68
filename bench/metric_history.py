"""What one MLflow ``log_batch`` of 1,000 metrics costs in a run that already has 10,000 points.

PYTHONPATH=src .venv/bin/python bench/metric_history.py [--pg] [--repeat 7] [--points 10000]

Each round makes a fresh run, fills it with ``--points`` points (10 keys, in batches of 1,000),
then times one more batch of 1,000 points (100 per key) through ``log_batch``, commit
included, and one ``metrics/get-history`` read of a key (1,100 points at the default). Prints
the median and the spread of the rounds. SQLite by default; ``--pg`` starts a throwaway
PostgreSQL (the tests' ``tests/pg.py``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from modelreg.db.schema import ensure_schema
from modelreg.db.session import make_engine, transaction
from modelreg.services import tracking
from modelreg.services.actor import Actor

ROOT = Path(__file__).resolve().parent.parent
# Before the split (schema 0008) these were all functions of one module; the fallback lets the
# same script time an older tree (PYTHONPATH=old/src) for a before/after comparison.
RUNS: Any = getattr(tracking, "runs", tracking)
LOGGING: Any = getattr(tracking, "run_logging", tracking)
ACTOR = Actor("bench")
KEYS = 10


def _batch(first_step: int, steps: int) -> list[Any]:
    return [
        LOGGING.metric_point(
            {"key": f"m{k}", "value": step / 7, "step": step, "timestamp": 1_000 + step}
        )
        for step in range(first_step, first_step + steps)
        for k in range(KEYS)
    ]


def _round(engine: object, steps: int) -> tuple[float, float]:
    with transaction(engine, write=True) as session:  # type: ignore[arg-type]
        run_id = RUNS.create_run(session, actor=ACTOR, experiment="0").id
    for start in range(0, steps, 100):
        with transaction(engine, write=True) as session:  # type: ignore[arg-type]
            LOGGING.log_batch(session, run_id, actor=ACTOR, metrics=_batch(start, 100))
    batch = _batch(steps, 100)
    began = time.perf_counter()
    with transaction(engine, write=True) as session:  # type: ignore[arg-type]
        LOGGING.log_batch(session, run_id, actor=ACTOR, metrics=batch)
    logged = time.perf_counter() - began
    began = time.perf_counter()
    with transaction(engine, write=False) as session:  # type: ignore[arg-type]
        points = LOGGING.metric_history(session, run_id, "m3", actor=ACTOR)
    read = time.perf_counter() - began
    assert len(points) == steps + 100, len(points)
    return logged, read


def _report(label: str, engine: object, repeat: int, points: int) -> None:
    rounds = [_round(engine, points // KEYS) for _ in range(repeat)]
    label = f"{label}, {points:,} points before,"
    for what, values in (
        ("log_batch", [r[0] for r in rounds]),
        ("get-history", [r[1] for r in rounds]),
    ):
        ms = sorted(v * 1000 for v in values)
        print(
            f"{label} {what}: median {statistics.median(ms):.1f} ms "
            f"(min {ms[0]:.1f}, max {ms[-1]:.1f}, {repeat} rounds)"
        )


def main() -> None:
    """Time the batch on SQLite, or on a throwaway PostgreSQL with ``--pg``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--points", type=int, default=10_000, help="points the run has before")
    args = parser.parse_args()
    if not args.pg:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'registry.db'}")
            ensure_schema(engine)
            _report("sqlite", engine, args.repeat, args.points)
            engine.dispose()
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from pg import PostgresServer  # the tests' throwaway server

    server = PostgresServer()
    server.start()
    try:
        engine = make_engine(server.create_database("bench_metrics"))
        ensure_schema(engine)
        _report("postgresql", engine, args.repeat, args.points)
        engine.dispose()
    finally:
        server.stop()


if __name__ == "__main__":
    main()

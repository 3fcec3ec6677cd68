"""Logging into a run (metrics, params, tags in one batch) and reading a metric's history.

Every logged point is a row of ``mlflow_metric_history``: a batch appends its points, whatever
the run already holds. The run keeps each key's latest value beside them (``runs/get`` and
runs/search read it), and a logged model named by a point gets the point in its own list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from modelreg.db.tables.tracking import MlflowMetricPoint, MlflowRun
from modelreg.errors import InvalidInput
from modelreg.names import parse_nonnegative, validate_mlflow_key
from modelreg.services.actor import Actor
from modelreg.services.tracking._access import (
    MAX_BATCH,
    MODEL_ID,
    check_params,
    check_tags,
    now_ms,
)
from modelreg.services.tracking.logged_models import get_logged_model
from modelreg.services.tracking.runs import get_run, writable_run

# The most points one key of one run may hold (get-history answers them all at once).
MAX_POINTS = 100_000
POINTS: Table = MlflowMetricPoint.__table__  # type: ignore[assignment]


@dataclass(slots=True)
class MetricPoint:
    """One logged metric value."""

    key: str
    value: float
    timestamp: int
    step: int
    model_id: str | None = None


def metric_point(data: dict[str, Any]) -> MetricPoint:
    """A metric from its MLflow JSON form (values may be NaN/Infinity strings)."""
    key = validate_mlflow_key(data.get("key"), kind="metric key")
    raw = data.get("value")
    try:
        if raw is None or isinstance(raw, bool):
            raise TypeError(raw)
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"metric {key!r} needs a numeric value", detail={"key": key}) from None
    return MetricPoint(
        key=key,
        value=value,
        timestamp=parse_nonnegative(data.get("timestamp"), kind="timestamp") or now_ms(),
        step=int(parse_nonnegative(data.get("step"), kind="step") or 0),
        model_id=_model_ref(data.get("model_id")),
    )


def _model_ref(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not MODEL_ID.fullmatch(value):
        raise InvalidInput(f"invalid model_id {str(value)[:80]!r}", detail={})
    return value


def _finite(value: float | None) -> float | str:
    # JSON has no NaN or Infinity; MLflow sends and expects them as strings. A NULL row is NaN.
    if value is None or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _merged_params(run: MlflowRun, params: dict[str, Any]) -> dict[str, str]:
    """The run's params with ``params`` added; a param, once logged, keeps its value."""
    merged = dict(run.params or {})
    for key, value in check_params(params).items():
        if key in merged and merged[key] != value:
            raise InvalidInput(
                f"param {key!r} was already logged as {merged[key]!r}; params are immutable",
                detail={"key": key},
            )
        merged[key] = value
    return merged


def _check_room(session: Session, run_id: str, points: Sequence[MetricPoint]) -> None:
    """Refuse the batch if a key would hold more than ``MAX_POINTS`` points."""
    adding: dict[str, int] = {}
    for point in points:
        adding[point.key] = adding.get(point.key, 0) + 1
    if not adding:
        return
    held = session.execute(
        select(MlflowMetricPoint.key, func.count())
        .where(MlflowMetricPoint.run_id == run_id, MlflowMetricPoint.key.in_(adding))
        .group_by(MlflowMetricPoint.key)
    )
    counts = dict(adding)
    for key, count in held:
        counts[key] += count
    for key, count in counts.items():
        if count > MAX_POINTS:
            raise InvalidInput(f"metric {key!r} has too many points", detail={})


def _latest(latest: dict[str, list[Any]], points: Sequence[MetricPoint]) -> dict[str, list[Any]]:
    """Each key's latest ``[value, timestamp, step]`` once ``points`` are logged."""
    latest = dict(latest)
    for point in points:
        current = latest.get(point.key)
        # MLflow's "latest" is the highest (step, timestamp), not the last one sent.
        if current is None or (point.step, point.timestamp) >= (current[2], current[1]):
            latest[point.key] = [_finite(point.value), point.timestamp, point.step]
    return latest


def _log_to_models(
    session: Session, run: MlflowRun, points: Sequence[MetricPoint], actor: Actor
) -> None:
    """Add the points that name a logged model to that model's metrics."""
    by_model: dict[str, list[MetricPoint]] = {}
    for point in points:
        if point.model_id:
            by_model.setdefault(point.model_id, []).append(point)
    for model_id, mine in by_model.items():
        logged = get_logged_model(session, model_id, actor=actor, write=True, lock=True)
        logged.metrics = [
            *logged.metrics,
            *(
                {
                    "key": p.key,
                    "value": _finite(p.value),
                    "timestamp": p.timestamp,
                    "step": p.step,
                    "run_id": run.id,
                    "model_id": model_id,
                }
                for p in mine
            ),
        ]
        logged.updated_ms = now_ms()


def log_batch(
    session: Session,
    run_id: Any,
    *,
    actor: Actor,
    metrics: Sequence[MetricPoint] = (),
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
) -> MlflowRun:
    """Log metrics, params and tags to a run in one transaction.

    A param, once logged, keeps its value (MLflow's rule): logging it again with the same value
    is fine, a different value is refused, and nothing of the batch is applied. The points
    are appended to the run's history; what the run held before is neither read nor written.
    """
    if len(metrics) + len(params or {}) + len(tags or {}) > MAX_BATCH * 2:
        raise InvalidInput(f"a batch holds at most {MAX_BATCH * 2} entries", detail={})
    run = writable_run(session, run_id, actor)
    new_params = _merged_params(run, params or {})
    _check_room(session, run.id, metrics)
    # JSON columns are replaced, not mutated, so the ORM sees the change.
    run.params = new_params
    run.metrics = _latest(run.metrics or {}, metrics)
    if metrics:
        # Rows in the batch's order: their ids are the logging order get-history returns.
        # A Core executemany on the table: the ORM's bulk path spends more Python per row.
        session.execute(
            insert(POINTS),
            [
                {
                    "run_id": run.id,
                    "key": p.key,
                    "step": p.step,
                    "timestamp": p.timestamp,
                    "value": None if math.isnan(p.value) else p.value,
                }
                for p in metrics
            ],
        )
    if tags:
        run.tags = {**run.tags, **check_tags(tags)}
        if "mlflow.runName" in tags:
            run.name = run.tags["mlflow.runName"][:250]
    _log_to_models(session, run, metrics, actor)
    return run


def metric_history(
    session: Session, run_id: Any, key: Any, *, actor: Actor
) -> list[dict[str, Any]]:
    """Every logged point of one metric, in logging order."""
    run = get_run(session, run_id, actor=actor)
    key = validate_mlflow_key(key, kind="metric key")
    rows = session.execute(
        select(MlflowMetricPoint.value, MlflowMetricPoint.timestamp, MlflowMetricPoint.step)
        .where(MlflowMetricPoint.run_id == run.id, MlflowMetricPoint.key == key)
        .order_by(MlflowMetricPoint.id)
    )
    return [{"key": key, "value": _finite(v), "timestamp": t, "step": s} for v, t, s in rows]

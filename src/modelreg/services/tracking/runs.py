"""MLflow runs: creating, finding, searching and changing them (their metrics: ``metrics``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.tables.tracking import MlflowExperiment, MlflowRun
from modelreg.errors import InvalidInput, NotFound
from modelreg.names import parse_nonnegative, validate_mlflow_key, validate_text
from modelreg.services import mlflow_filter
from modelreg.services.actor import Actor, Permission
from modelreg.services.tracking._access import (
    RUN_ID,
    check_access,
    check_tags,
    now_ms,
    require_writer,
)
from modelreg.services.tracking.experiments import (
    DEFAULT_EXPERIMENT_ID,
    Use,
    experiment_id,
    get_experiment,
)

RUN_STATUSES = {"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"}


def run_artifact_uri(run: MlflowRun) -> str:
    """Where the client puts a run's artifacts (a path in modelreg's tree, not a location)."""
    return f"mlflow-artifacts:/{run.experiment_id}/{run.id}/artifacts"


def get_run(
    session: Session, run_id: Any, *, actor: Actor, write: bool = False, lock: bool = False
) -> MlflowRun:
    """The run ``run_id`` if ``actor`` may read it (or, with ``write``, change it)."""
    text = run_id if isinstance(run_id, str) else ""
    run = session.get(MlflowRun, text, with_for_update=lock) if RUN_ID.fullmatch(text) else None
    if run is None:
        raise NotFound(f"run {str(run_id)[:64]!r} not found", detail={"run_id": text})
    check_access(actor, run.created_by, write=write, what=f"run {run.id}")
    return run


def create_run(
    session: Session,
    *,
    actor: Actor,
    experiment: Any,
    run_name: Any = None,
    start_time: Any = None,
    user_id: Any = None,
    tags: dict[str, str] | None = None,
) -> MlflowRun:
    """A new run in ``experiment``."""
    require_writer(actor)
    exp = get_experiment(
        session, experiment if experiment not in (None, "") else 0, actor=actor, use=Use.LOG
    )
    clean_tags = check_tags(tags or {})
    name = validate_text(
        run_name or clean_tags.get("mlflow.runName") or "", kind="run name", limit=250
    )
    run_id = uuid.uuid4().hex
    if not name:
        name = f"run-{run_id[:8]}"
    clean_tags["mlflow.runName"] = name
    run = MlflowRun(
        id=run_id,
        experiment_id=exp.id,
        name=name,
        user_id=validate_text(user_id or actor.name, kind="user_id", limit=256),
        status="RUNNING",
        start_ms=parse_nonnegative(start_time, kind="start_time") or now_ms(),
        params={},
        tags=clean_tags,
        metrics={},
        outputs=[],
        inputs={},
        created_by=actor.name,
    )
    session.add(run)
    session.flush()
    return run


VIEW_TYPES = {
    "ACTIVE_ONLY": ("active",),
    "DELETED_ONLY": ("deleted",),
    "ALL": ("active", "deleted"),
    "1": ("active",),
    "2": ("deleted",),
    "3": ("active", "deleted"),
}
MAX_RUN_RESULTS = 50_000  # MLflow's SEARCH_MAX_RESULTS_THRESHOLD


def search_runs(
    session: Session,
    *,
    actor: Actor,
    experiment_ids: Sequence[Any],
    filter: str | None = None,
    run_view_type: Any = None,
    max_results: int = 1000,
    order_by: Sequence[Any] = (),
    offset: int = 0,
) -> tuple[list[MlflowRun], bool]:
    """Runs of the experiments matching MLflow's run ``filter``, and whether there are more.

    They come in ``order_by`` order, then newest first.

    A run is seen by whoever may read it (``get_run``): a registry-wide viewer sees every run,
    anyone else only its own, and only in experiments it may see (``may_see``). Experiments it
    may not see add nothing, exactly like experiments that do not exist.
    """
    stages = VIEW_TYPES.get(str(run_view_type or "ACTIVE_ONLY").upper())
    if stages is None:
        raise InvalidInput(
            f"invalid run_view_type {str(run_view_type)[:40]!r}: ACTIVE_ONLY, DELETED_ONLY or ALL",
            detail={},
        )
    ids = {experiment_id(e) for e in experiment_ids}
    condition = mlflow_filter.runs_condition(filter)
    order = mlflow_filter.runs_order(list(order_by))
    limit = max(1, min(max_results, MAX_RUN_RESULTS))
    query = select(MlflowRun).where(
        MlflowRun.experiment_id.in_(ids), MlflowRun.lifecycle_stage.in_(stages)
    )
    if not actor.can(Permission.READ):
        visible = select(MlflowExperiment.id).where(
            (MlflowExperiment.id == DEFAULT_EXPERIMENT_ID)
            | (MlflowExperiment.created_by == actor.name)
        )
        query = query.where(
            MlflowRun.created_by == actor.name, MlflowRun.experiment_id.in_(visible)
        )
    if condition is not None:
        query = query.where(condition)
    query = query.order_by(*order, MlflowRun.start_ms.desc(), MlflowRun.id)
    rows = list(session.scalars(query.offset(offset).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def writable_run(session: Session, run_id: Any, actor: Actor) -> MlflowRun:
    """The active run ``run_id``, locked, if ``actor`` may change it."""
    run = get_run(session, run_id, actor=actor, write=True, lock=True)
    if run.lifecycle_stage != "active":
        raise InvalidInput(f"run {run.id} is deleted", detail={"run_id": run.id})
    return run


def update_run(
    session: Session,
    run_id: Any,
    *,
    actor: Actor,
    status: Any = None,
    end_time: Any = None,
    run_name: Any = None,
) -> MlflowRun:
    """Change a run's status, end time or name."""
    run = writable_run(session, run_id, actor)
    if status not in (None, ""):
        if not isinstance(status, str) or status not in RUN_STATUSES:
            raise InvalidInput(f"invalid run status {status!r}", detail={"status": status})
        run.status = status
    end = parse_nonnegative(end_time, kind="end_time")
    if end is not None:
        run.end_ms = end
    if run_name not in (None, ""):
        run.name = validate_text(run_name, kind="run name", limit=250)
        run.tags = {**run.tags, "mlflow.runName": run.name}
    return run


def set_run_lifecycle(session: Session, run_id: Any, *, actor: Actor, deleted: bool) -> None:
    """Delete (softly, as MLflow does) or restore a run."""
    run = get_run(session, run_id, actor=actor, write=True, lock=True)
    run.lifecycle_stage = "deleted" if deleted else "active"


def delete_run_tag(session: Session, run_id: Any, key: Any, *, actor: Actor) -> None:
    """Remove one tag from a run."""
    run = writable_run(session, run_id, actor)
    key = validate_mlflow_key(key, kind="tag key")
    if key not in run.tags:
        raise NotFound(f"run {run.id} has no tag {key!r}", detail={"key": key})
    run.tags = {k: v for k, v in run.tags.items() if k != key}


def log_inputs(session: Session, run_id: Any, inputs: dict[str, Any], *, actor: Actor) -> None:
    """Keep a run's dataset/model inputs as given (informational, shown by ``runs/get``)."""
    run = writable_run(session, run_id, actor)
    merged = dict(run.inputs or {})
    for key in ("dataset_inputs", "model_inputs"):
        items = inputs.get(key)
        if isinstance(items, list):
            merged[key] = [*merged.get(key, []), *items][:1000]
    run.inputs = merged

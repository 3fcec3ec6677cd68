"""The MLflow door's tracking state: experiments, runs, logged models and their artifact tree.

MLflow clients log a model into a run (or an MLflow 3 "logged model") before registering it, so a
drop-in server must keep that state. modelreg keeps just enough of it: what the client reads
back, and what a registration turns into a version. The bytes are ordinary content-addressed
blobs; ``mlflow_artifacts`` maps the client's relative paths to them (the client names a path in
MLflow's tree, never a storage location: SECURITY.md rule 1).

Tracking writes are scratch state, not registry changes, so they are not in the audit log; the
registration that turns them into a version is, with every file digest, metric and param.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, defer

from modelreg.db.tables import (
    MlflowArtifact,
    MlflowExperiment,
    MlflowLoggedModel,
    MlflowRun,
)
from modelreg.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidPath,
    NotFound,
    PermissionDenied,
)
from modelreg.names import parse_ref, validate_manifest_path, validate_model_name
from modelreg.services import artifacts, mlflow_filter
from modelreg.services.actor import Actor, Permission
from modelreg.services.models import get_model
from modelreg.services.versions import FileSpec, resolve

DEFAULT_EXPERIMENT_ID = 0
DEFAULT_EXPERIMENT_NAME = "Default"
# The registry's own versions, read-only, under this first path segment of the artifact tree.
VERSION_VIEW = "_registry"
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_BATCH = 1000
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_EXPERIMENT_ID = re.compile(r"^[0-9]{1,9}$")
RUN_STATUSES = {"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"}
MODEL_STATUSES = {"LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"}


def now_ms() -> int:
    """The current time in epoch milliseconds, MLflow's timestamp unit."""
    return int(time.time() * 1000)


def _text(value: Any, what: str, limit: int, *, empty: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise InvalidInput(f"{what} must be text of at most {limit} characters", detail={})
    if not empty and not value.strip():
        raise InvalidInput(f"{what} must not be empty", detail={})
    return value


def _key(value: Any, what: str) -> str:
    key = _text(value, what, MAX_KEY, empty=False)
    if any(ch in key for ch in "\n\r\t"):
        raise InvalidInput(f"{what} {key!r} has a control character", detail={"key": key})
    return key


def _ms(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise TypeError(value)
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"{what} must be an integer", detail={}) from None
    if not 0 <= number < 2**62:
        raise InvalidInput(f"{what} is out of range", detail={})
    return number


def _require_writer(actor: Actor) -> None:
    # Logging is the first step of registering: the same contributor right that uploads blobs.
    artifacts.require_upload(actor)


def _check_access(actor: Actor, owner: str, *, write: bool, what: str) -> None:
    """Runs and logged models belong to whoever created them.

    A registry-wide viewer reads, and a registry-wide contributor writes, every team's tracking
    data; a principal whose roles are per model reaches only what it created itself (one
    team's runs are not another's to read, extend or register).
    """
    if write:
        _require_writer(actor)
    wide = actor.can(Permission.VERSION_REGISTER if write else Permission.READ)
    if wide or owner == actor.name:
        return
    raise PermissionDenied(
        f"{what} belongs to {owner or 'another user'}; {actor.name} may "
        f"{'change' if write else 'read'} only its own runs and logged models",
        detail={"owner": owner},
    )


# -- experiments ------------------------------------------------------------------------------


def ensure_default(session: Session) -> MlflowExperiment:
    """MLflow's "Default" experiment (id 0), made on first use."""
    experiment = session.get(MlflowExperiment, DEFAULT_EXPERIMENT_ID)
    if experiment is None:
        # MLflow clients assume experiment "0" exists; it is made on first use.
        stamp = now_ms()
        experiment = MlflowExperiment(
            id=DEFAULT_EXPERIMENT_ID,
            name=DEFAULT_EXPERIMENT_NAME,
            created_ms=stamp,
            updated_ms=stamp,
            tags={},
        )
        session.add(experiment)
        session.flush()
    return experiment


def experiment_id(value: Any) -> int:
    """An experiment id as MLflow sends it (a string of digits)."""
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not _EXPERIMENT_ID.fullmatch(text):
        raise InvalidInput(f"invalid experiment id {value!r}", detail={"experiment_id": value})
    return int(text)


class Use(StrEnum):
    """What a caller does with an experiment; ``_check_experiment`` decides who may."""

    READ = "read"
    LOG = "log"  # create a run or logged model in it
    CHANGE = "change"  # tag it (and rename or delete it, should those RPCs come)


def may_see(actor: Actor, experiment: MlflowExperiment) -> bool:
    """Experiments belong to their creator, as runs do (``_check_access``).

    Everyone sees the shared Default experiment (id 0); a registry-wide viewer sees every
    experiment; anyone else sees only the experiments it created.
    """
    return (
        experiment.id == DEFAULT_EXPERIMENT_ID
        or actor.can(Permission.READ)
        or (bool(experiment.created_by) and experiment.created_by == actor.name)
    )


def _check_experiment(actor: Actor, experiment: MlflowExperiment, use: Use) -> None:
    """Refuse ``use`` of ``experiment`` unless ``actor`` may.

    Logging into an experiment is what a run's writer may do: its creator or a registry-wide
    contributor, and anyone who may log at all in the shared Default experiment. Changing an
    experiment is for its creator or an admin; the Default belongs to nobody, so only an admin
    changes it. (Visibility, ``may_see``, is checked before: unseen is absent.)
    """
    owner = bool(experiment.created_by) and experiment.created_by == actor.name
    if use is Use.LOG:
        _require_writer(actor)
        if (
            experiment.id == DEFAULT_EXPERIMENT_ID
            or owner
            or actor.can(Permission.VERSION_REGISTER)
        ):
            return
    elif use is Use.CHANGE:
        if actor.can(Permission.ADMIN) or (owner and experiment.id != DEFAULT_EXPERIMENT_ID):
            return
    else:
        return
    raise PermissionDenied(
        f"experiment {experiment.id} belongs to "
        f"{experiment.created_by or 'everyone'}; {actor.name} may not "
        f"{'log into' if use is Use.LOG else 'change'} it",
        detail={"experiment_id": str(experiment.id), "owner": experiment.created_by},
    )


def get_experiment(
    session: Session, value: Any, *, actor: Actor, use: Use = Use.READ
) -> MlflowExperiment:
    """The experiment with id ``value``, for ``use`` by ``actor``.

    Raises ``NotFound`` when there is none or ``actor`` may not see it (the same answer),
    ``PermissionDenied`` when it may see but not ``use`` it.
    """
    number = experiment_id(value)
    if number == DEFAULT_EXPERIMENT_ID:
        experiment: MlflowExperiment | None = ensure_default(session)
    else:
        experiment = session.get(MlflowExperiment, number)
    if experiment is None or not may_see(actor, experiment):
        raise NotFound(f"no experiment with id {number}", detail={"experiment_id": str(number)})
    _check_experiment(actor, experiment, use)
    return experiment


def get_experiment_by_name(session: Session, name: Any, *, actor: Actor) -> MlflowExperiment:
    """The experiment called ``name``, if ``actor`` may see it (``NotFound`` otherwise)."""
    name = _text(name, "experiment name", 500, empty=False)
    if name == DEFAULT_EXPERIMENT_NAME:
        return ensure_default(session)
    experiment = session.scalars(
        select(MlflowExperiment).where(MlflowExperiment.name == name)
    ).one_or_none()
    if experiment is None or not may_see(actor, experiment):
        raise NotFound(f"no experiment named {name!r}", detail={"name": name})
    return experiment


def create_experiment(
    session: Session, name: Any, *, actor: Actor, tags: dict[str, str] | None = None
) -> MlflowExperiment:
    """A new experiment; ``AlreadyExists`` when the name is taken."""
    _require_writer(actor)
    name = _text(name, "experiment name", 500, empty=False)
    ensure_default(session)
    taken = session.scalar(select(MlflowExperiment.id).where(MlflowExperiment.name == name))
    if taken is not None:
        # MLflow's wording: clients match on it as well as on RESOURCE_ALREADY_EXISTS.
        raise AlreadyExists(f"Experiment(name={name}) already exists.", detail={"name": name})
    stamp = now_ms()
    experiment = MlflowExperiment(
        name=name,
        tags=check_tags(tags or {}),
        created_by=actor.name,
        created_ms=stamp,
        updated_ms=stamp,
    )
    session.add(experiment)
    session.flush()
    return experiment


def search_experiments(
    session: Session, *, actor: Actor, max_results: int = 1000
) -> list[MlflowExperiment]:
    """Active experiments ``actor`` may see (``may_see``), newest first."""
    ensure_default(session)
    query = select(MlflowExperiment).where(MlflowExperiment.lifecycle_stage == "active")
    if not actor.can(Permission.READ):
        query = query.where(
            (MlflowExperiment.id == DEFAULT_EXPERIMENT_ID)
            | (MlflowExperiment.created_by == actor.name)
        )
    return list(
        session.scalars(
            query.order_by(MlflowExperiment.id.desc()).limit(max(1, min(max_results, 50_000)))
        )
    )


def set_experiment_tag(
    session: Session, value: Any, key: Any, tag_value: Any, *, actor: Actor
) -> None:
    """Set one tag on an experiment (its creator or an admin; the Default: an admin)."""
    experiment = get_experiment(session, value, actor=actor, use=Use.CHANGE)
    tags = dict(experiment.tags or {})
    tags[_key(key, "tag key")] = _text(tag_value, "tag value", MAX_TAG_VALUE)
    experiment.tags = tags
    experiment.updated_ms = now_ms()


def check_tags(tags: dict[str, Any]) -> dict[str, str]:
    """Validated ``key -> value`` tags."""
    return {
        _key(k, "tag key"): _text(v, f"tag {k!r}", MAX_TAG_VALUE) for k, v in dict(tags).items()
    }


# -- runs --------------------------------------------------------------------------------------


def run_artifact_uri(run: MlflowRun) -> str:
    """Where the client puts a run's artifacts (a path in modelreg's tree, not a location)."""
    return f"mlflow-artifacts:/{run.experiment_id}/{run.id}/artifacts"


def get_run(
    session: Session, run_id: Any, *, actor: Actor, write: bool = False, lock: bool = False
) -> MlflowRun:
    """The run ``run_id`` if ``actor`` may read it (or, with ``write``, change it)."""
    text = run_id if isinstance(run_id, str) else ""
    run = session.get(MlflowRun, text, with_for_update=lock) if _RUN_ID.fullmatch(text) else None
    if run is None:
        raise NotFound(f"run {str(run_id)[:64]!r} not found", detail={"run_id": text})
    _check_access(actor, run.created_by, write=write, what=f"run {run.id}")
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
    _require_writer(actor)
    exp = get_experiment(
        session, experiment if experiment not in (None, "") else 0, actor=actor, use=Use.LOG
    )
    clean_tags = check_tags(tags or {})
    name = _text(run_name or clean_tags.get("mlflow.runName") or "", "run name", 250)
    run_id = uuid.uuid4().hex
    if not name:
        name = f"run-{run_id[:8]}"
    clean_tags["mlflow.runName"] = name
    run = MlflowRun(
        id=run_id,
        experiment_id=exp.id,
        name=name,
        user_id=_text(user_id or actor.name, "user_id", 256),
        status="RUNNING",
        start_ms=_ms(start_time, "start_time") or now_ms(),
        params={},
        tags=clean_tags,
        metrics={},
        history={},
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
    # The metric history can be large and runs/search does not return it.
    query = (
        select(MlflowRun)
        .options(defer(MlflowRun.history))
        .where(MlflowRun.experiment_id.in_(ids), MlflowRun.lifecycle_stage.in_(stages))
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


def _writable_run(session: Session, run_id: Any, actor: Actor) -> MlflowRun:
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
    run = _writable_run(session, run_id, actor)
    if status not in (None, ""):
        if not isinstance(status, str) or status not in RUN_STATUSES:
            raise InvalidInput(f"invalid run status {status!r}", detail={"status": status})
        run.status = status
    end = _ms(end_time, "end_time")
    if end is not None:
        run.end_ms = end
    if run_name not in (None, ""):
        run.name = _text(run_name, "run name", 250)
        run.tags = {**run.tags, "mlflow.runName": run.name}
    return run


def set_run_lifecycle(session: Session, run_id: Any, *, actor: Actor, deleted: bool) -> None:
    """Delete (softly, as MLflow does) or restore a run."""
    run = get_run(session, run_id, actor=actor, write=True, lock=True)
    run.lifecycle_stage = "deleted" if deleted else "active"


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
    key = _key(data.get("key"), "metric key")
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
        timestamp=_ms(data.get("timestamp"), "timestamp") or now_ms(),
        step=int(_ms(data.get("step"), "step") or 0),
        model_id=_model_ref(data.get("model_id")),
    )


def _model_ref(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _MODEL_ID.fullmatch(value):
        raise InvalidInput(f"invalid model_id {str(value)[:80]!r}", detail={})
    return value


def _finite(value: float) -> float | str:
    # JSON has no NaN or Infinity; MLflow sends and expects them as strings.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


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
    is fine, a different value is refused, and nothing of the batch is applied.
    """
    if len(metrics) + len(params or {}) + len(tags or {}) > MAX_BATCH * 2:
        raise InvalidInput(f"a batch holds at most {MAX_BATCH * 2} entries", detail={})
    run = _writable_run(session, run_id, actor)
    new_params = dict(run.params or {})
    for raw_key, raw_value in (params or {}).items():
        key = _key(raw_key, "param key")
        value = _text(str(raw_value), f"param {key!r}", MAX_PARAM_VALUE)
        if key in new_params and new_params[key] != value:
            raise InvalidInput(
                f"param {key!r} was already logged as {new_params[key]!r}; params are immutable",
                detail={"key": key},
            )
        new_params[key] = value
    latest = dict(run.metrics or {})
    history = {k: list(v) for k, v in (run.history or {}).items()}
    touched_models: dict[str, list[MetricPoint]] = {}
    for point in metrics:
        entry = [_finite(point.value), point.timestamp, point.step]
        history.setdefault(point.key, []).append(entry)
        if len(history[point.key]) > 100_000:
            raise InvalidInput(f"metric {point.key!r} has too many points", detail={})
        current = latest.get(point.key)
        # MLflow's "latest" is the highest (step, timestamp), not the last one sent.
        if current is None or (point.step, point.timestamp) >= (current[2], current[1]):
            latest[point.key] = entry
        if point.model_id:
            touched_models.setdefault(point.model_id, []).append(point)
    # JSON columns are replaced, not mutated, so the ORM sees the change.
    run.params = new_params
    run.metrics = latest
    run.history = history
    if tags:
        run.tags = {**run.tags, **check_tags(tags)}
        if "mlflow.runName" in tags:
            run.name = run.tags["mlflow.runName"][:250]
    for model_id, points in touched_models.items():
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
                for p in points
            ),
        ]
        logged.updated_ms = now_ms()
    return run


def delete_run_tag(session: Session, run_id: Any, key: Any, *, actor: Actor) -> None:
    """Remove one tag from a run."""
    run = _writable_run(session, run_id, actor)
    key = _key(key, "tag key")
    if key not in run.tags:
        raise NotFound(f"run {run.id} has no tag {key!r}", detail={"key": key})
    run.tags = {k: v for k, v in run.tags.items() if k != key}


def log_outputs(session: Session, run_id: Any, models: Iterable[Any], *, actor: Actor) -> None:
    """Record logged models as outputs of a run."""
    run = _writable_run(session, run_id, actor)
    outputs = list(run.outputs or [])
    for item in models:
        if not isinstance(item, dict):
            raise InvalidInput("each output is {model_id, step}", detail={})
        model = get_logged_model(session, item.get("model_id"), actor=actor)
        entry = {"model_id": model.id, "step": int(_ms(item.get("step"), "step") or 0)}
        if entry not in outputs:
            outputs.append(entry)
    run.outputs = outputs


def log_inputs(session: Session, run_id: Any, inputs: dict[str, Any], *, actor: Actor) -> None:
    """Keep a run's dataset/model inputs as given (informational, shown by ``runs/get``)."""
    run = _writable_run(session, run_id, actor)
    merged = dict(run.inputs or {})
    for key in ("dataset_inputs", "model_inputs"):
        items = inputs.get(key)
        if isinstance(items, list):
            merged[key] = [*merged.get(key, []), *items][:1000]
    run.inputs = merged


def metric_history(
    session: Session, run_id: Any, key: Any, *, actor: Actor
) -> list[dict[str, Any]]:
    """Every logged point of one metric, in logging order."""
    run = get_run(session, run_id, actor=actor)
    key = _key(key, "metric key")
    return [
        {"key": key, "value": v, "timestamp": t, "step": s}
        for v, t, s in (run.history or {}).get(key, [])
    ]


# -- logged models ------------------------------------------------------------------------------


def logged_model_artifact_uri(model: MlflowLoggedModel) -> str:
    """Where the client puts a logged model's files."""
    return f"mlflow-artifacts:/{model.experiment_id}/models/{model.id}/artifacts"


def get_logged_model(
    session: Session, model_id: Any, *, actor: Actor, write: bool = False, lock: bool = False
) -> MlflowLoggedModel:
    """The logged model ``model_id`` (``m-…``) if ``actor`` may read (or ``write``) it."""
    text = model_id if isinstance(model_id, str) else ""
    model = (
        session.get(MlflowLoggedModel, text, with_for_update=lock)
        if _MODEL_ID.fullmatch(text)
        else None
    )
    if model is None:
        raise NotFound(f"logged model {str(model_id)[:64]!r} not found", detail={"model_id": text})
    _check_access(actor, model.created_by, write=write, what=f"logged model {model.id}")
    return model


def create_logged_model(
    session: Session,
    *,
    actor: Actor,
    experiment: Any,
    name: Any = None,
    source_run_id: Any = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: Any = None,
) -> MlflowLoggedModel:
    """A new logged model (``LOGGED_MODEL_PENDING`` until finalized)."""
    _require_writer(actor)
    exp = get_experiment(
        session, experiment if experiment not in (None, "") else 0, actor=actor, use=Use.LOG
    )
    run_id = None
    if source_run_id not in (None, ""):
        # Attaching a model to a run is writing to that run (else one team could plant a
        # model that another team's runs:/RUN/NAME would then register).
        run_id = get_run(session, source_run_id, actor=actor, write=True).id
    model_id = "m-" + uuid.uuid4().hex
    stamp = now_ms()
    model = MlflowLoggedModel(
        id=model_id,
        experiment_id=exp.id,
        name=_text(name or f"model-{model_id[2:10]}", "model name", 500),
        source_run_id=run_id,
        status="LOGGED_MODEL_PENDING",
        model_type=_text(model_type or "", "model_type", 128),
        params={
            _key(k, "param key"): _text(str(v), "param", MAX_PARAM_VALUE)
            for k, v in (params or {}).items()
        },
        tags=check_tags(tags or {}),
        metrics=[],
        created_by=actor.name,
        created_ms=stamp,
        updated_ms=stamp,
    )
    session.add(model)
    session.flush()
    return model


def finalize_logged_model(
    session: Session, model_id: Any, status: Any, *, actor: Actor
) -> MlflowLoggedModel:
    """Mark a logged model ready (or failed)."""
    model = get_logged_model(session, model_id, actor=actor, write=True, lock=True)
    if not isinstance(status, str) or status not in MODEL_STATUSES:
        raise InvalidInput(f"invalid logged model status {status!r}", detail={"status": status})
    model.status = status
    model.updated_ms = now_ms()
    return model


def set_logged_model_tags(
    session: Session, model_id: Any, tags: dict[str, Any], *, actor: Actor
) -> MlflowLoggedModel:
    """Set tags on a logged model."""
    model = get_logged_model(session, model_id, actor=actor, write=True, lock=True)
    model.tags = {**model.tags, **check_tags(tags)}
    model.updated_ms = now_ms()
    return model


def delete_logged_model_tag(session: Session, model_id: Any, key: Any, *, actor: Actor) -> None:
    """Remove one tag from a logged model."""
    model = get_logged_model(session, model_id, actor=actor, write=True, lock=True)
    key = _key(key, "tag key")
    model.tags = {k: v for k, v in model.tags.items() if k != key}


_MODEL_FILTER = re.compile(
    r"""^\s*(?:attributes?\.)?(name|source_run_id|model_type|status)\s*=\s*(['"])(.*)\2\s*$"""
)


def search_logged_models(
    session: Session,
    *,
    experiment_ids: Sequence[Any],
    filter: str | None = None,
    max_results: int = 100,
    offset: int = 0,
    actor: Actor,
) -> tuple[list[MlflowLoggedModel], bool]:
    """Logged models of the experiments, newest first.

    ``filter`` is ``field = 'value'`` clauses joined by ``AND`` on name, source_run_id,
    model_type and status: what MLflow's client sends.
    """
    query = select(MlflowLoggedModel)
    if not actor.can(Permission.READ):
        # Per-model principals see the logged models they made (see ``_check_access``).
        query = query.where(MlflowLoggedModel.created_by == actor.name)
    ids = [experiment_id(e) for e in experiment_ids]
    if ids:
        query = query.where(MlflowLoggedModel.experiment_id.in_(ids))
    for clause in re.split(r"\s+AND\s+", filter or "", flags=re.IGNORECASE):
        if not clause.strip():
            continue
        match = _MODEL_FILTER.fullmatch(clause)
        if match is None:
            raise InvalidInput(
                f"unsupported logged-model filter {clause.strip()!r}: modelreg supports "
                "name, source_run_id, model_type and status with =",
                detail={"filter": filter},
            )
        column = getattr(MlflowLoggedModel, match[1])
        query = query.where(column == match[3])
    limit = max(1, min(max_results, 1000))
    rows = list(
        session.scalars(
            query.order_by(MlflowLoggedModel.created_ms.desc(), MlflowLoggedModel.id)
            .offset(offset)
            .limit(limit + 1)
        )
    )
    return rows[:limit], len(rows) > limit


# -- the artifact tree ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionView:
    """A path inside a registered version's files, served read-only from its manifest."""

    name: str
    number: int
    rest: str


def version_view_path(name: str, number: int) -> str:
    """The tree path under which version ``number`` of ``name`` is served (read-only).

    A namespaced name's ``/`` becomes ``:``, which names never contain, so the path splits
    back unambiguously.
    """
    return f"{VERSION_VIEW}/{name.replace('/', ':')}/{number}"


def _clean_tree_path(path: Any, *, allow_empty: bool = True, new: bool = False) -> str:
    if path is None:
        path = ""
    if not isinstance(path, str) or len(path) > 1024:
        raise InvalidPath("an artifact path is text of at most 1024 characters", detail={})
    text = path.strip("/")
    if not text:
        if allow_empty:
            return ""
        raise InvalidPath("an artifact path must not be empty", detail={})
    # The same allowlist as a version's manifest: relative, normalised, no `..`, no `\`,
    # no control characters (SECURITY.md rule 2). A path written anew also gets the
    # portability rules (no device names, look-alikes, trailing dots); one that names what
    # may already be stored only the safety rules.
    return validate_manifest_path(text, existing=not new)


def parse_view(path: str) -> VersionView | None:
    """The version a ``_registry/…`` path names, or ``None`` for other paths."""
    parts = path.split("/")
    if parts[0] != VERSION_VIEW:
        return None
    if len(parts) < 3 or not re.fullmatch(r"[0-9]{1,9}", parts[2]):
        raise InvalidPath(
            f"{path!r}: registry paths are {VERSION_VIEW}/NAME/VERSION/…", detail={"path": path}
        )
    name = validate_model_name(parts[1].replace(":", "/"))
    return VersionView(name, int(parts[2]), "/".join(parts[3:]))


def _owner(
    session: Session, path: str, *, actor: Actor, write: bool
) -> MlflowRun | MlflowLoggedModel | None:
    """The run or logged model whose folder holds ``path`` (``None`` above them), access checked.

    ``EXPERIMENT/RUN_ID/…`` is a run's, ``EXPERIMENT/models/MODEL_ID/…`` a logged model's; the
    experiment in the path must be the owner's.
    """
    parts = path.split("/")
    owner: MlflowRun | MlflowLoggedModel
    if len(parts) >= 3 and parts[1] == "models":
        owner = get_logged_model(session, parts[2], actor=actor, write=write, lock=write)
    elif len(parts) >= 2 and parts[1] != "models":
        owner = get_run(session, parts[1], actor=actor, write=write, lock=write)
    else:
        return None
    if str(owner.experiment_id) != parts[0]:
        raise NotFound(f"no artifact folder {path!r}", detail={"path": path})
    return owner


def _check_owner(session: Session, path: str, actor: Actor) -> None:
    """Writes go only into an existing run's or logged model's ``artifacts/`` folder.

    The owner's row stays locked until the write commits, so two writers of one folder take
    turns (the file-versus-folder check below is then never raced).
    """
    parts = path.split("/")
    owner = _owner(session, path, actor=actor, write=True)
    depth = 4 if isinstance(owner, MlflowLoggedModel) else 3
    if owner is None or len(parts) <= depth or parts[depth - 1] != "artifacts":
        raise InvalidPath(
            f"{path!r} is not inside a run's or logged model's artifacts folder "
            "(EXPERIMENT/RUN_ID/artifacts/… or EXPERIMENT/models/MODEL_ID/artifacts/…)",
            detail={"path": path},
        )


def _check_tree_read(session: Session, path: str, actor: Actor) -> None:
    if actor.can(Permission.READ):
        return
    if _owner(session, path, actor=actor, write=False) is None:
        # Above the runs: every team's folders at once, which is registry-wide reading.
        actor.require(Permission.READ)


def check_writable(session: Session, path: Any, *, actor: Actor, new: bool = True) -> str:
    """The clean path a PUT may write (``new``) or a DELETE remove, or an error.

    Checked before any byte is stored.
    """
    _require_writer(actor)
    clean = _clean_tree_path(path, allow_empty=False, new=new)
    if clean.split("/")[0] == VERSION_VIEW:
        raise PermissionDenied(
            "registered versions are immutable; their files cannot be written",
            detail={"path": clean},
        )
    _check_owner(session, clean, actor)
    return clean


def put_artifact(
    session: Session, path: str, digest: str, size: int, *, actor: Actor
) -> MlflowArtifact:
    """Point ``path`` at a stored blob (replacing what it named before, as MLflow allows)."""
    clean = check_writable(session, path, actor=actor)
    row = session.get(MlflowArtifact, clean)
    if row is None:
        # A path that is already a folder (or under a file) would make the tree ambiguous.
        clash = session.scalar(
            select(MlflowArtifact.path)
            .where(func.substr(MlflowArtifact.path, 1, len(clean) + 1) == clean + "/")
            .limit(1)
        )
        parents = ["/".join(clean.split("/")[:i]) for i in range(1, clean.count("/") + 1)]
        clash = clash or session.scalar(
            select(MlflowArtifact.path).where(MlflowArtifact.path.in_(parents)).limit(1)
        )
        if clash is not None:
            raise InvalidPath(
                f"{clean!r} clashes with the file or folder {clash!r}", detail={"path": clean}
            )
        row = MlflowArtifact(path=clean, sha256=digest, size=size, created_by=actor.name)
        session.add(row)
    else:
        row.sha256, row.size, row.created_by = digest, size, actor.name
    # The caller sent these bytes: it may name them in a manifest on /api/v1 too.
    artifacts.record_possession(session, actor, digest)
    session.flush()
    return row


def _tree_files(session: Session, prefix: str) -> list[tuple[str, int, str]]:
    """``(path relative to prefix, size, sha256)`` of every tree file under ``prefix``."""
    query = select(MlflowArtifact.path, MlflowArtifact.size, MlflowArtifact.sha256)
    if prefix:
        # substr, not LIKE or a range: exact under any collation, and `%`/`_` are literal.
        query = query.where(func.substr(MlflowArtifact.path, 1, len(prefix) + 1) == prefix + "/")
    cut = len(prefix) + 1 if prefix else 0
    return [(p[cut:], s, d) for p, s, d in session.execute(query.order_by(MlflowArtifact.path))]


def _version_files(session: Session, view: VersionView, actor: Actor) -> list[tuple[str, int, str]]:
    get_model(session, view.name, actor=actor)  # raises unless actor may read it
    version = resolve(session, parse_ref(f"{view.name}:{view.number}", allow_model=False))
    return [(f.path, f.size, f.sha256) for f in version.files]


def _files_under(session: Session, path: str, actor: Actor) -> list[tuple[str, int, str]]:
    view = parse_view(path) if path else None
    if view is None:
        _check_tree_read(session, path, actor)
        return _tree_files(session, path)
    files = _version_files(session, view, actor)
    if not view.rest:
        return files
    cut = len(view.rest) + 1
    return [(p[cut:], s, d) for p, s, d in files if p.startswith(view.rest + "/")]


def list_artifacts(session: Session, path: Any, *, actor: Actor) -> list[dict[str, Any]]:
    """One folder level, as MLflow lists it: ``[{path (base name), is_dir, file_size}]``."""
    clean = _clean_tree_path(path)
    if not clean:
        # The root lists every experiment: that is registry-wide reading.
        actor.require(Permission.READ)
    entries: dict[str, dict[str, Any]] = {}
    for rel, size, _digest in _files_under(session, clean, actor):
        head, sep, _tail = rel.partition("/")
        if sep:
            entries.setdefault(head, {"path": head, "is_dir": True})
        else:
            entries[head] = {"path": head, "is_dir": False, "file_size": size}
    return [entries[k] for k in sorted(entries)]


def open_artifact(session: Session, path: Any, *, actor: Actor) -> tuple[str, int, str]:
    """``(digest, size, file name)`` of one file of the tree or of a registered version."""
    clean = _clean_tree_path(path, allow_empty=False)
    view = parse_view(clean)
    if view is not None:
        for rel, size, digest in _version_files(session, view, actor):
            if rel == view.rest:
                return digest, size, rel.rsplit("/", 1)[-1]
    else:
        _check_tree_read(session, clean, actor)
        row = session.get(MlflowArtifact, clean)
        if row is not None:
            return row.sha256, row.size, clean.rsplit("/", 1)[-1]
    raise NotFound(f"no artifact at {clean!r}", detail={"path": clean})


def delete_artifacts(session: Session, path: Any, *, actor: Actor) -> int:
    """Remove a file, or a folder's files, from the tree (never a registered version's)."""
    clean = check_writable(session, path, actor=actor, new=False)
    result = session.execute(
        delete(MlflowArtifact).where(
            (MlflowArtifact.path == clean)
            | (func.substr(MlflowArtifact.path, 1, len(clean) + 1) == clean + "/")
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def referenced_digests(session: Session) -> set[str]:
    """Every blob the tree names: garbage collection must keep them."""
    return set(session.scalars(select(MlflowArtifact.sha256).distinct()))


# -- registering from an MLflow source ---------------------------------------------------------


@dataclass(slots=True)
class Source:
    """What a ``source`` URI resolves to: the files and the lineage a version gets."""

    files: list[FileSpec]
    run: MlflowRun | None = None
    logged_model: MlflowLoggedModel | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


def _bad_source(source: Any, why: str) -> InvalidInput:
    return InvalidInput(
        f"source {source!r} is not allowed: {why}. modelreg registers only artifacts this "
        "server holds: runs:/RUN_ID/PATH, models:/MODEL_ID (a logged model), "
        "models:/NAME/VERSION or mlflow-artifacts:/PATH",
        detail={"source": source},
    )


def _numeric(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _from_tree(session: Session, prefix: str) -> list[FileSpec]:
    files = [FileSpec(rel, digest, size) for rel, size, digest in _tree_files(session, prefix)]
    if not files and prefix:
        # A source may name one file (MLflow registers runs:/RUN/model.pkl as that file).
        row = session.get(MlflowArtifact, prefix)
        if row is not None:
            files = [FileSpec(prefix.rsplit("/", 1)[-1], row.sha256, row.size)]
    return files


def _logged_source(session: Session, model: MlflowLoggedModel) -> Source:
    prefix = f"{model.experiment_id}/models/{model.id}/artifacts"
    run = session.get(MlflowRun, model.source_run_id) if model.source_run_id else None
    return Source(_from_tree(session, prefix), run=run, logged_model=model)


def resolve_source(session: Session, source: Any, *, actor: Actor, model_id: Any = None) -> Source:
    """The files (and run) an MLflow ``source`` names, if it names something this server holds.

    SECURITY.md rule 1: a client never makes the server read a location of its choosing, so
    ``file://``, ``s3://``, ``http(s)://`` and every other scheme are refused, and the
    accepted ones are looked up in modelreg's own tables.
    """
    if not isinstance(source, str) or not source or len(source) > 2048:
        raise _bad_source(source, "it is empty or too long")
    if any(ch in source for ch in "\\\x00?#;%") or any(ord(ch) < 32 for ch in source):
        raise _bad_source(source, "it contains a character paths may not hold")
    scheme, sep, rest = source.partition(":")
    if not sep:
        raise _bad_source(source, "it has no scheme")
    scheme = scheme.lower()
    if scheme == "models":
        body = rest.lstrip("/")
        if _MODEL_ID.fullmatch(body):
            return _logged_source(session, get_logged_model(session, body, actor=actor))
        if model_id not in (None, "") and body != model_id:
            raise _bad_source(source, "it does not name the given model_id")
        # A registry URI (copy_model_version sends models:/NAME/VERSION).
        ref = parse_ref(body, allow_model=False)
        get_model(session, ref.name, actor=actor)  # unreadable reads as absent
        version = resolve(session, ref)
        files = [FileSpec(f.path, f.sha256, f.size) for f in version.files]
        return Source(
            files,
            metrics={m.key: m.value for m in version.metrics},
            params={p.key: p.value for p in version.params},
        )
    if scheme == "runs":
        body = rest.lstrip("/")
        run_id, _, sub = body.partition("/")
        run = get_run(session, run_id, actor=actor)
        sub = _clean_tree_path(sub)
        prefix = f"{run.experiment_id}/{run.id}/artifacts" + (f"/{sub}" if sub else "")
        files = _from_tree(session, prefix)
        if not files and sub:
            # MLflow 3 logs models outside the run's folder: runs:/ID/NAME means the run's
            # logged model NAME.
            logged = session.scalars(
                select(MlflowLoggedModel)
                .where(MlflowLoggedModel.source_run_id == run.id, MlflowLoggedModel.name == sub)
                .order_by(MlflowLoggedModel.created_ms.desc())
                .limit(1)
            ).first()
            if logged is not None:
                get_logged_model(session, logged.id, actor=actor)  # the same access check
                return _logged_source(session, logged)
        return Source(files, run=run)
    if scheme == "mlflow-artifacts":
        body = rest
        if body.startswith("//"):
            # mlflow-artifacts://HOST/… names another server.
            raise _bad_source(source, "it names a host; only this server's paths are allowed")
        clean = _clean_tree_path(body, allow_empty=False)
        view = parse_view(clean)
        if view is not None:
            return Source([FileSpec(p, d, s) for p, s, d in _files_under(session, clean, actor)])
        # Only one run's or one logged model's artifacts (or a folder inside them): never an
        # experiment's worth of every team's files bundled into one version.
        owner = _owner(session, clean, actor=actor, write=False)
        parts = clean.split("/")
        depth = 4 if isinstance(owner, MlflowLoggedModel) else 3
        if owner is None or len(parts) < depth or parts[depth - 1] != "artifacts":
            raise _bad_source(source, "it is not inside a run's or logged model's artifacts")
        if isinstance(owner, MlflowLoggedModel):
            if len(parts) == depth:
                return _logged_source(session, owner)
            return Source(_from_tree(session, clean))
        return Source(_from_tree(session, clean), run=owner)
    raise _bad_source(source, f"the {scheme}: scheme points outside this registry")


def registration_lineage(source: Source) -> tuple[dict[str, float], dict[str, str]]:
    """The metrics and params a version registered from ``source`` carries.

    The run's latest metric values and params, then the logged model's own (which win).
    """
    metrics = dict(source.metrics)
    params = dict(source.params)
    if source.run is not None:
        params.update(source.run.params or {})
        for key, (value, _t, _s) in (source.run.metrics or {}).items():
            number = _numeric(value)
            if number is not None:
                metrics[key] = number
    if source.logged_model is not None:
        params.update(source.logged_model.params or {})
        for item in source.logged_model.metrics or []:
            number = _numeric(item.get("value"))
            if number is not None:
                metrics[str(item.get("key"))] = number
    return metrics, params

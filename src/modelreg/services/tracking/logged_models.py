"""MLflow 3 logged models (``m-…``): named artifact trees, usually logged from a run."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.tables.tracking import MlflowLoggedModel
from modelreg.errors import InvalidInput, NotFound
from modelreg.names import parse_nonnegative, validate_mlflow_key, validate_text
from modelreg.services.actor import Actor, Permission
from modelreg.services.tracking._access import (
    MODEL_ID,
    check_access,
    check_params,
    check_tags,
    now_ms,
    require_writer,
)
from modelreg.services.tracking.experiments import Use, experiment_id, get_experiment
from modelreg.services.tracking.runs import get_run, writable_run

MODEL_STATUSES = {"LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"}


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
        if MODEL_ID.fullmatch(text)
        else None
    )
    if model is None:
        raise NotFound(f"logged model {str(model_id)[:64]!r} not found", detail={"model_id": text})
    check_access(actor, model.created_by, write=write, what=f"logged model {model.id}")
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
    require_writer(actor)
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
        name=validate_text(name or f"model-{model_id[2:10]}", kind="model name", limit=500),
        source_run_id=run_id,
        status="LOGGED_MODEL_PENDING",
        model_type=validate_text(model_type or "", kind="model_type", limit=128),
        params=check_params(params or {}),
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
    key = validate_mlflow_key(key, kind="tag key")
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


def log_outputs(session: Session, run_id: Any, models: Iterable[Any], *, actor: Actor) -> None:
    """Record logged models as outputs of a run."""
    run = writable_run(session, run_id, actor)
    outputs = list(run.outputs or [])
    for item in models:
        if not isinstance(item, dict):
            raise InvalidInput("each output is {model_id, step}", detail={})
        model = get_logged_model(session, item.get("model_id"), actor=actor)
        entry = {
            "model_id": model.id,
            "step": int(parse_nonnegative(item.get("step"), kind="step") or 0),
        }
        if entry not in outputs:
            outputs.append(entry)
    run.outputs = outputs

"""The minimal MLflow tracking RPCs a client needs to log and register a model.

Experiments, runs (params, metrics, tags, inputs, outputs) and MLflow 3 logged models, under
``/api/2.0/mlflow/``; plus ``/api/3.0/mlflow/server-info``.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

from fastapi import APIRouter
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from modelreg.api.deps import Registry
from modelreg.api.mlflow._common import (
    add_route,
    as_list,
    key_values,
    max_results,
    objects,
    page_offset,
    page_token,
    pairs,
    required,
    text,
)
from modelreg.db.tables.tracking import MlflowExperiment, MlflowLoggedModel, MlflowRun
from modelreg.errors import InvalidInput
from modelreg.services import tracking
from modelreg.services.actor import Actor

router = APIRouter(prefix="/api/2.0/mlflow", tags=["mlflow"])
info_router = APIRouter(prefix="/api/3.0/mlflow", tags=["mlflow"])


def experiment_json(experiment: MlflowExperiment) -> dict[str, Any]:
    """An experiment as MLflow's ``Experiment``."""
    return {
        "experiment_id": str(experiment.id),
        "name": experiment.name,
        "artifact_location": f"mlflow-artifacts:/{experiment.id}",
        "lifecycle_stage": experiment.lifecycle_stage,
        "creation_time": experiment.created_ms,
        "last_update_time": experiment.updated_ms,
        "tags": pairs(experiment.tags or {}),
    }


def run_json(run: MlflowRun) -> dict[str, Any]:
    """A run as MLflow's ``Run``: info, data (latest metrics, params, tags), inputs, outputs."""
    info: dict[str, Any] = {
        "run_uuid": run.id,
        "run_id": run.id,
        "experiment_id": str(run.experiment_id),
        "run_name": run.name,
        "user_id": run.user_id,
        "status": run.status,
        "start_time": run.start_ms,
        "artifact_uri": tracking.runs.run_artifact_uri(run),
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.end_ms is not None:
        info["end_time"] = run.end_ms
    metrics = [
        {"key": k, "value": v, "timestamp": t, "step": s}
        for k, (v, t, s) in sorted((run.metrics or {}).items())
    ]
    answer: dict[str, Any] = {
        "info": info,
        "data": {"metrics": metrics, "params": pairs(run.params), "tags": pairs(run.tags)},
        "inputs": dict(run.inputs or {}),
    }
    if run.outputs:
        answer["outputs"] = {"model_outputs": list(run.outputs)}
    return answer


def logged_model_json(model: MlflowLoggedModel) -> dict[str, Any]:
    """A logged model as MLflow 3's ``LoggedModel``."""
    info: dict[str, Any] = {
        "model_id": model.id,
        "experiment_id": str(model.experiment_id),
        "name": model.name,
        "creation_timestamp_ms": model.created_ms,
        "last_updated_timestamp_ms": model.updated_ms,
        "artifact_uri": tracking.logged_models.logged_model_artifact_uri(model),
        "status": model.status,
        "model_type": model.model_type,
        "tags": pairs(model.tags or {}),
    }
    if model.source_run_id:
        info["source_run_id"] = model.source_run_id
    return {
        "info": info,
        "data": {"params": pairs(model.params or {}), "metrics": list(model.metrics or [])},
    }


# Engines whose registry has MLflow's Default experiment: it is never deleted, so once seen,
# reads of experiments need no write lock (which SQLite grants one process at a time).
_HAS_DEFAULT: weakref.WeakSet[Engine] = weakref.WeakSet()


def _experiments(registry: Registry) -> contextlib.AbstractContextManager[Session]:
    """A read transaction, after making sure the Default experiment exists."""
    if registry.engine not in _HAS_DEFAULT:
        with registry.write() as session:
            tracking.experiments.ensure_default(session)
        _HAS_DEFAULT.add(registry.engine)
    return registry.read()


def _run_id(p: dict[str, Any]) -> Any:
    return p.get("run_id") or required(p, "run_uuid")


# -- experiments ------------------------------------------------------------------------------


def create_experiment(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``experiments/create`` (the artifact location is always modelreg's own)."""
    if p.get("artifact_location"):
        # SECURITY.md rule 1: the client never chooses where bytes are stored.
        raise InvalidInput(
            "modelreg chooses where artifacts live; create the experiment without "
            "artifact_location",
            detail={"artifact_location": p.get("artifact_location")},
        )
    with registry.write() as session:
        experiment = tracking.experiments.create_experiment(
            session, required(p, "name"), actor=actor, tags=key_values(p.get("tags"), "tag")
        )
        return {"experiment_id": str(experiment.id)}


def get_experiment(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``experiments/get``."""
    with _experiments(registry) as session:
        return {
            "experiment": experiment_json(
                tracking.experiments.get_experiment(
                    session, required(p, "experiment_id"), actor=actor
                )
            )
        }


def get_experiment_by_name(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``experiments/get-by-name``."""
    with _experiments(registry) as session:
        experiment = tracking.experiments.get_experiment_by_name(
            session, required(p, "experiment_name"), actor=actor
        )
        return {"experiment": experiment_json(experiment)}


def search_experiments(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``experiments/search``: active experiments (filters are not supported)."""
    if text(p, "filter"):
        raise InvalidInput("modelreg does not filter experiments", detail={})
    with _experiments(registry) as session:
        found = tracking.experiments.search_experiments(
            session, actor=actor, max_results=max_results(p, 1000, 50_000)
        )
        return {"experiments": [experiment_json(e) for e in found]}


def set_experiment_tag(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``experiments/set-experiment-tag``."""
    with registry.write() as session:
        tracking.experiments.set_experiment_tag(
            session, required(p, "experiment_id"), p.get("key"), p.get("value"), actor=actor
        )
    return {}


# -- runs -------------------------------------------------------------------------------------


def create_run(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``runs/create``."""
    with registry.write() as session:
        run = tracking.runs.create_run(
            session,
            actor=actor,
            experiment=p.get("experiment_id"),
            run_name=p.get("run_name"),
            start_time=p.get("start_time"),
            user_id=p.get("user_id"),
            tags=key_values(p.get("tags"), "tag"),
        )
        return {"run": run_json(run)}


def get_run(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``runs/get``."""
    with registry.read() as session:
        return {"run": run_json(tracking.runs.get_run(session, _run_id(p), actor=actor))}


def search_runs(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``runs/search``: MLflow's run filter, order and paging over the runs the caller may read."""
    offset = page_offset(p.get("page_token"))
    with registry.read() as session:
        found, more = tracking.runs.search_runs(
            session,
            actor=actor,
            experiment_ids=as_list(p.get("experiment_ids")),
            filter=text(p, "filter") or None,
            run_view_type=p.get("run_view_type"),
            max_results=max_results(p, 1000, tracking.runs.MAX_RUN_RESULTS),
            order_by=as_list(p.get("order_by")),
            offset=offset,
        )
        answer: dict[str, Any] = {"runs": [run_json(r) for r in found]}
    if more:
        answer["next_page_token"] = page_token(offset + len(found))
    return answer


def update_run(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``runs/update``: status, end time, name."""
    with registry.write() as session:
        run = tracking.runs.update_run(
            session,
            _run_id(p),
            actor=actor,
            status=p.get("status"),
            end_time=p.get("end_time"),
            run_name=p.get("run_name"),
        )
        return {"run_info": run_json(run)["info"]}


def delete_run(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``runs/delete`` (soft, as in MLflow)."""
    with registry.write() as session:
        tracking.runs.set_run_lifecycle(session, required(p, "run_id"), actor=actor, deleted=True)
    return {}


def restore_run(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``runs/restore``."""
    with registry.write() as session:
        tracking.runs.set_run_lifecycle(session, required(p, "run_id"), actor=actor, deleted=False)
    return {}


def log_batch(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``runs/log-batch``: metrics, params and tags, all or nothing."""
    metrics = [tracking.run_logging.metric_point(m) for m in objects(p.get("metrics"), "metric")]
    with registry.write() as session:
        tracking.run_logging.log_batch(
            session,
            _run_id(p),
            actor=actor,
            metrics=metrics,
            params=key_values(p.get("params"), "param"),
            tags=key_values(p.get("tags"), "tag"),
        )
    return {}


def log_metric(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``runs/log-metric``."""
    point = tracking.run_logging.metric_point(p)
    with registry.write() as session:
        tracking.run_logging.log_batch(session, _run_id(p), actor=actor, metrics=[point])
    return {}


def log_param(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``runs/log-parameter``."""
    with registry.write() as session:
        tracking.run_logging.log_batch(
            session, _run_id(p), actor=actor, params={required(p, "key"): text(p, "value")}
        )
    return {}


def set_tag(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``runs/set-tag``."""
    with registry.write() as session:
        tracking.run_logging.log_batch(
            session, _run_id(p), actor=actor, tags={required(p, "key"): text(p, "value")}
        )
    return {}


def delete_tag(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``runs/delete-tag``."""
    with registry.write() as session:
        tracking.runs.delete_run_tag(session, required(p, "run_id"), p.get("key"), actor=actor)
    return {}


def log_outputs(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``runs/outputs``: the logged models a run produced."""
    with registry.write() as session:
        tracking.logged_models.log_outputs(
            session, required(p, "run_id"), as_list(p.get("models")), actor=actor
        )
    return {}


def log_inputs(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``runs/log-inputs``: datasets and models a run used (kept for ``runs/get``)."""
    with registry.write() as session:
        tracking.runs.log_inputs(
            session,
            required(p, "run_id"),
            {
                "dataset_inputs": as_list(p.get("datasets")),
                "model_inputs": as_list(p.get("models")),
            },
            actor=actor,
        )
    return {}


def metric_history(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``metrics/get-history``."""
    with registry.read() as session:
        points = tracking.run_logging.metric_history(
            session, _run_id(p), required(p, "metric_key"), actor=actor
        )
    return {"metrics": points}


# -- logged models ------------------------------------------------------------------------------


def create_logged_model(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``logged-models`` (POST)."""
    with registry.write() as session:
        model = tracking.logged_models.create_logged_model(
            session,
            actor=actor,
            experiment=required(p, "experiment_id"),
            name=p.get("name"),
            source_run_id=p.get("source_run_id"),
            params=key_values(p.get("params"), "param"),
            tags=key_values(p.get("tags"), "tag"),
            model_type=p.get("model_type"),
        )
        return {"model": logged_model_json(model)}


def get_logged_model(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``logged-models/{model_id}`` (GET)."""
    with registry.read() as session:
        model = tracking.logged_models.get_logged_model(session, p.get("model_id"), actor=actor)
        return {"model": logged_model_json(model)}


def finalize_logged_model(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``logged-models/{model_id}`` (PATCH): ready or failed."""
    with registry.write() as session:
        model = tracking.logged_models.finalize_logged_model(
            session, p.get("model_id"), required(p, "status"), actor=actor
        )
        return {"model": logged_model_json(model)}


def set_logged_model_tags(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``logged-models/{model_id}/tags`` (PATCH)."""
    with registry.write() as session:
        tracking.logged_models.set_logged_model_tags(
            session, p.get("model_id"), key_values(p.get("tags"), "tag"), actor=actor
        )
    return {}


def delete_logged_model_tag(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``logged-models/{model_id}/tags/{tag_key}`` (DELETE)."""
    with registry.write() as session:
        tracking.logged_models.delete_logged_model_tag(
            session, p.get("model_id"), p.get("tag_key"), actor=actor
        )
    return {}


def search_logged_models(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``logged-models/search``: by experiment, with ``field = 'value'`` filters."""
    offset = page_offset(p.get("page_token"))
    with registry.read() as session:
        found, more = tracking.logged_models.search_logged_models(
            session,
            experiment_ids=as_list(p.get("experiment_ids")),
            filter=text(p, "filter") or None,
            max_results=max_results(p, 100, 1000),
            offset=offset,
            actor=actor,
        )
        answer: dict[str, Any] = {"models": [logged_model_json(m) for m in found]}
    if more:
        answer["next_page_token"] = page_token(offset + len(found))
    return answer


def server_info(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``/api/3.0/mlflow/server-info``: what the client may use (no multipart, no workspaces)."""
    return {
        "store_type": "modelreg",
        "workspaces_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
    }


ROUTES: list[tuple[str, list[str], Any]] = [
    ("/experiments/create", ["POST"], create_experiment),
    ("/experiments/get", ["GET"], get_experiment),
    ("/experiments/get-by-name", ["GET"], get_experiment_by_name),
    ("/experiments/search", ["GET", "POST"], search_experiments),
    ("/experiments/set-experiment-tag", ["POST"], set_experiment_tag),
    ("/runs/create", ["POST"], create_run),
    ("/runs/get", ["GET"], get_run),
    ("/runs/search", ["POST"], search_runs),
    ("/runs/update", ["POST"], update_run),
    ("/runs/delete", ["POST"], delete_run),
    ("/runs/restore", ["POST"], restore_run),
    ("/runs/log-batch", ["POST"], log_batch),
    ("/runs/log-metric", ["POST"], log_metric),
    ("/runs/log-parameter", ["POST"], log_param),
    ("/runs/set-tag", ["POST"], set_tag),
    ("/runs/delete-tag", ["POST"], delete_tag),
    ("/runs/outputs", ["POST"], log_outputs),
    ("/runs/log-inputs", ["POST"], log_inputs),
    ("/metrics/get-history", ["GET"], metric_history),
    ("/logged-models", ["POST"], create_logged_model),
    ("/logged-models/search", ["POST"], search_logged_models),
    ("/logged-models/{model_id}", ["GET"], get_logged_model),
    ("/logged-models/{model_id}", ["PATCH"], finalize_logged_model),
    ("/logged-models/{model_id}/tags", ["PATCH"], set_logged_model_tags),
    ("/logged-models/{model_id}/tags/{tag_key}", ["DELETE"], delete_logged_model_tag),
]
for _path, _methods, _handler in ROUTES:
    add_route(router, _path, _methods, _handler)
add_route(info_router, "/server-info", ["GET"], server_info)

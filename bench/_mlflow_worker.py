"""The MLflow side of ``compare.py``: each workload through MLflow's own Python client.

Runs inside the separate MLflow venv (``bench/.mlflow-venv``; mlflow is not installed in
modelreg's), one fresh process per workload, as
``python bench/_mlflow_worker.py WORKLOAD --url URL --params JSON --out FILE``. It implements
the workloads of ``_modelreg_worker.py`` as closely as MLflow allows; where MLflow has no
equivalent call, ``calls`` in the result says what was measured instead.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
from _common import measure, own_rss, sha256_file, timed_once, timed_readers, worker_main
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

CLIENT = f"mlflow {mlflow.__version__}"

# create_model_version logs a line per call while it waits for READY; keep stderr readable.
logging.getLogger("mlflow").setLevel(logging.WARNING)


def _experiment(client: MlflowClient, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _ensure_model(client: MlflowClient, name: str) -> None:
    # modelreg creates a model on its first registration; MLflow needs it created first, so
    # that call is made here, before any clock starts.
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)


def register(url: str, p: dict[str, Any]) -> dict[str, Any]:
    """Small-artifact registrations, sequential then from concurrent clients; contiguity."""
    setup = MlflowClient(url)
    experiment = _experiment(setup, "register")
    _ensure_model(setup, p["model"])
    artifact = Path(p["artifact"])
    local = threading.local()

    def op(i: int) -> None:
        if not hasattr(local, "client"):
            local.client = MlflowClient(url)
        client: MlflowClient = local.client
        # MLflow has no single "register these files" call: the artifact lives in a run,
        # and the version points at it.
        run = client.create_run(experiment)
        run_id = run.info.run_id
        client.log_metric(run_id, "i", float(i))
        client.log_artifact(run_id, str(artifact))
        client.create_model_version(
            p["model"], f"{run.info.artifact_uri}/{artifact.name}", run_id=run_id
        )

    sequential = measure(op, p["sequential"])
    concurrent = measure(op, p["concurrent"], threads=p["threads"])
    found = setup.search_model_versions(f"name = '{p['model']}'", max_results=10000)
    numbers = sorted(int(v.version) for v in found)
    return {
        "sequential": sequential,
        "concurrent": concurrent,
        "versions": len(numbers),
        "contiguous": numbers == list(range(1, len(numbers) + 1)),
        "calls": "create_run, log_metric, log_artifact, create_model_version",
    }


def resolve(url: str, p: dict[str, Any]) -> dict[str, Any]:
    """``name@alias`` resolution: sequential, then concurrent readers for a fixed time."""
    client = MlflowClient(url)
    client.set_registered_model_alias(p["model"], p["alias"], str(p["version"]))
    found = client.get_model_version_by_alias(p["model"], p["alias"])
    assert int(found.version) == p["version"]

    def reader() -> Callable[[int], object]:
        own = MlflowClient(url)
        return lambda _i: own.get_model_version_by_alias(p["model"], p["alias"])

    return {
        "sequential": measure(reader(), p["count"]),
        "readers": timed_readers(reader, p["seconds"], p["readers"]),
        "calls": "MlflowClient.get_model_version_by_alias(name, alias)",
    }


def seed(url: str, p: dict[str, Any]) -> dict[str, Any]:
    """Load ``count`` versions, each from a run with an ``acc`` metric (not timed).

    Written in-process through MLflow's own SQLAlchemy stores on the server's database, the
    code its server runs, without HTTP (about 13 versions/s over HTTP here would take
    minutes). ``synchronous = OFF`` on these connections only skips fsync for the load.
    """
    del url
    from mlflow.entities import Metric
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore
    from sqlalchemy import event

    tracking = TrackingStore(p["db"], "mlflow-artifacts:/")
    registry = RegistryStore(p["db"])

    def no_fsync(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA synchronous = OFF")

    for engine in {id(s.engine): s.engine for s in (tracking, registry)}.values():
        event.listen(engine, "connect", no_fsync)
        engine.dispose()  # pooled connections opened before the listener reconnect with it
    experiment = tracking.create_experiment(p["experiment"])
    registry.create_registered_model(p["model"])
    count = int(p["count"])
    started = time.perf_counter()
    for i in range(count):
        now = int(time.time() * 1000)
        run = tracking.create_run(experiment, "bench", now, [], None)
        run_id = run.info.run_id
        tracking.log_batch(
            run_id, metrics=[Metric("acc", (i + 0.5) / count, now, 0)], params=[], tags=[]
        )
        registry.create_model_version(
            p["model"], f"{run.info.artifact_uri}/model.bin", run_id=run_id
        )
    return {"versions": count, "seconds": round(time.perf_counter() - started, 2)}


# Moves the threshold by a hair per call: the same hits, but a query no cache has seen.
FRESH_STEP = 1e-12


def search(url: str, p: dict[str, Any]) -> dict[str, Any]:
    """The closest MLflow has to a metric-filtered version search, and a name-only one.

    MLflow's registry search cannot filter on metrics (only name, version_number, run_id,
    source_path and tags), so "versions whose run has acc > t" takes two calls: search the
    runs by metric, then the versions of those runs.
    """
    client = MlflowClient(url)
    experiment = _experiment(client, p["experiment"])
    model, page = p["model"], p["page"]

    def by_metric(i: int, *, step: float = 0.0) -> list[Any]:
        threshold = p["threshold"] + i * step
        runs = client.search_runs([experiment], f"metrics.acc > {threshold}", max_results=page)
        ids = ", ".join(f"'{r.info.run_id}'" for r in runs)
        found = client.search_model_versions(
            f"name = '{model}' AND run_id IN ({ids})", max_results=page
        )
        return list(found)

    def by_name(_i: int) -> object:
        return client.search_model_versions(f"name = '{model}'", max_results=page)

    hits = len(by_metric(0))
    return {
        "metric": measure(by_metric, p["count"]),
        "metric_fresh": measure(lambda i: by_metric(i, step=FRESH_STEP), p["count"]),
        "name_only": measure(by_name, p["count"]),
        "hits": hits,
        "calls": (
            f"search_runs('metrics.acc > {p['threshold']}', max_results={page}), then "
            'search_model_versions("name = … AND run_id IN (…)"): MLflow\'s registry search '
            "cannot filter on metrics"
        ),
    }


def upload(url: str, p: dict[str, Any]) -> dict[str, Any]:
    """Log the big file to a run through the artifact proxy, then register a version of it."""
    mlflow.set_tracking_uri(url)
    client = MlflowClient(url)
    experiment = _experiment(client, "transfer")
    _ensure_model(client, p["model"])
    path = Path(p["path"])
    holder: list[dict[str, Any]] = []

    def op() -> None:
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_artifact(str(path))
        version = client.create_model_version(
            p["model"], f"{run.info.artifact_uri}/{path.name}", run_id=run.info.run_id
        )
        holder.append({"run_id": run.info.run_id, "path": path.name, "version": version.version})

    with own_rss() as rss:
        seconds = timed_once(op)
    return {"seconds": round(seconds, 3), "client_rss": rss.result(), "ref": holder[0]}


def download(url: str, p: dict[str, Any]) -> dict[str, Any]:
    """``download_artifacts`` of the big file through the proxy, then check its SHA-256."""
    client = MlflowClient(url)
    out = Path(p["out"])
    out.mkdir(parents=True, exist_ok=True)
    ref = p["ref"]
    client.get_run(ref["run_id"])  # open the connection before the clock starts
    with own_rss() as rss:
        holder: list[str] = []
        seconds = timed_once(
            lambda: holder.append(client.download_artifacts(ref["run_id"], ref["path"], str(out)))
        )
    verified = sha256_file(Path(holder[0])) == p["sha256"]
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": round(seconds, 3), "client_rss": rss.result(), "verified": verified}


if __name__ == "__main__":
    worker_main(
        {
            "register": register,
            "resolve": resolve,
            "seed": seed,
            "search": search,
            "upload": upload,
            "download": download,
        }
    )

"""The MLflow door's wire protocol, route by route, against a live server in this process.

What MLflow's client sends and reads back (MLFLOW-PROTOCOL.md): query strings on GET, JSON
bodies otherwise, versions as strings, millisecond timestamps, ``{"error_code", "message"}``
errors. The real client runs in tests/mlflow_compat; hostile input in test_mlflow_hostile.py.
SQLite only: the service suites cover both dialects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg

API = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def db_url(sqlite_db_url: str) -> str:
    """SQLite only (see the module docstring)."""
    return sqlite_db_url


@pytest.fixture
def http(live_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def err(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code
    message: str = body["message"]
    return message


def log_model(http: httpx.Client, files: dict[str, bytes]) -> tuple[str, str, str]:
    """A run with a param and a metric that logged a model with ``files``: (exp, run, model)."""
    run = ok(http.post(f"{API}/runs/create", json={"experiment_id": "0", "start_time": 1}))["run"]
    run_id = run["info"]["run_id"]
    ok(http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "C", "value": "1"}))
    ok(
        http.post(
            f"{API}/runs/log-metric",
            json={"run_id": run_id, "key": "acc", "value": 0.9, "timestamp": 5, "step": 0},
        )
    )
    model = ok(
        http.post(
            f"{API}/logged-models",
            json={"experiment_id": "0", "name": "model", "source_run_id": run_id},
        )
    )["model"]
    model_id = model["info"]["model_id"]
    root = model["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    for rel, data in files.items():
        ok(http.put(f"{ART}/{root}/{rel}", content=data))
    ok(http.patch(f"{API}/logged-models/{model_id}", json={"status": "LOGGED_MODEL_READY"}))
    return "0", run_id, model_id


def test_experiments_and_runs(http: httpx.Client) -> None:
    default = ok(http.get(f"{API}/experiments/get", params={"experiment_id": "0"}))["experiment"]
    assert (default["name"], default["artifact_location"]) == ("Default", "mlflow-artifacts:/0")
    made = ok(http.post(f"{API}/experiments/create", json={"name": "churn"}))["experiment_id"]
    by_name = ok(http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "churn"}))
    assert by_name["experiment"]["experiment_id"] == made
    err(
        http.post(f"{API}/experiments/create", json={"name": "churn"}),
        400,
        "RESOURCE_ALREADY_EXISTS",
    )
    # The client never chooses where artifacts live (SECURITY.md rule 1).
    err(
        http.post(f"{API}/experiments/create", json={"name": "x", "artifact_location": "s3://b"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    ok(
        http.post(
            f"{API}/experiments/set-experiment-tag",
            json={"experiment_id": made, "key": "team", "value": "risk"},
        )
    )
    names = [e["name"] for e in ok(http.get(f"{API}/experiments/search"))["experiments"]]
    assert set(names) == {"Default", "churn"}

    run = ok(
        http.post(
            f"{API}/runs/create",
            json={"experiment_id": made, "run_name": "r1", "tags": [{"key": "k", "value": "v"}]},
        )
    )["run"]
    run_id = run["info"]["run_id"]
    assert run["info"]["artifact_uri"] == f"mlflow-artifacts:/{made}/{run_id}/artifacts"
    ok(
        http.post(
            f"{API}/runs/log-batch",
            json={
                "run_id": run_id,
                "metrics": [
                    {"key": "loss", "value": 0.5, "timestamp": 1, "step": 0},
                    {"key": "loss", "value": 0.2, "timestamp": 2, "step": 1},
                ],
                "params": [{"key": "lr", "value": "0.1"}],
                "tags": [{"key": "stage", "value": "train"}],
            },
        )
    )
    ok(http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "gone", "value": "x"}))
    ok(http.post(f"{API}/runs/delete-tag", json={"run_id": run_id, "key": "gone"}))
    ok(http.post(f"{API}/runs/log-inputs", json={"run_id": run_id, "datasets": [{"a": 1}]}))
    ok(
        http.post(
            f"{API}/runs/update", json={"run_id": run_id, "status": "FINISHED", "end_time": 9}
        )
    )
    got = ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    assert got["info"]["status"] == "FINISHED"
    assert got["info"]["end_time"] == 9
    assert got["data"]["metrics"] == [{"key": "loss", "value": 0.2, "timestamp": 2, "step": 1}]
    assert {"key": "lr", "value": "0.1"} in got["data"]["params"]
    assert {t["key"] for t in got["data"]["tags"]} == {"k", "stage", "mlflow.runName"}
    history = ok(
        http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"})
    )
    assert [m["value"] for m in history["metrics"]] == [0.5, 0.2]
    ok(http.post(f"{API}/runs/delete", json={"run_id": run_id}))
    err(
        http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "a", "value": "b"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    ok(http.post(f"{API}/runs/restore", json={"run_id": run_id}))
    err(http.get(f"{API}/runs/get", params={"run_id": "0" * 32}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_logged_models_and_artifacts(http: httpx.Client) -> None:
    _exp, run_id, model_id = log_model(http, {"MLmodel": b"flavors: {}\n", "data/w.bin": b"123"})
    ok(
        http.post(
            f"{API}/runs/outputs", json={"run_id": run_id, "models": [{"model_id": model_id}]}
        )
    )
    got = ok(http.get(f"{API}/logged-models/{model_id}"))["model"]
    assert got["info"]["status"] == "LOGGED_MODEL_READY"
    assert got["info"]["source_run_id"] == run_id
    ok(
        http.patch(
            f"{API}/logged-models/{model_id}/tags", json={"tags": [{"key": "t", "value": "1"}]}
        )
    )
    ok(http.delete(f"{API}/logged-models/{model_id}/tags/t"))
    found = ok(
        http.post(
            f"{API}/logged-models/search",
            json={"experiment_ids": ["0"], "filter": f"source_run_id = '{run_id}'"},
        )
    )["models"]
    assert [m["info"]["model_id"] for m in found] == [model_id]
    root = f"0/models/{model_id}/artifacts"
    listing = ok(http.get(ART, params={"path": root}))["files"]
    assert listing == [
        {"path": "MLmodel", "is_dir": False, "file_size": 12},
        {"path": "data", "is_dir": True},
    ]
    assert http.get(f"{ART}/{root}/data/w.bin").content == b"123"
    assert ok(http.get(ART, params={"path": f"{root}/nothing"})) == {}
    err(http.get(f"{ART}/{root}/nothing"), 404, "RESOURCE_DOES_NOT_EXIST")
    ok(http.delete(f"{ART}/{root}/data"))
    assert [f["path"] for f in ok(http.get(ART, params={"path": root}))["files"]] == ["MLmodel"]
    info = ok(http.get("/api/3.0/mlflow/server-info"))
    assert info["multipart_uploads_enabled"] is False


def register_two(http: httpx.Client) -> tuple[str, str]:
    """``iris`` v1 (from a logged model) and v2 (from its run's path): (run id, model id)."""
    _exp, run_id, model_id = log_model(http, {"MLmodel": b"m", "model.skops": b"weights"})
    created = ok(
        http.post(
            f"{API}/registered-models/create",
            json={"name": "iris", "description": "d", "tags": [{"key": "team", "value": "a"}]},
        )
    )["registered_model"]
    assert (created["name"], created["description"]) == ("iris", "d")
    err(
        http.post(f"{API}/registered-models/create", json={"name": "iris"}),
        400,
        "RESOURCE_ALREADY_EXISTS",
    )
    version = ok(
        http.post(
            f"{API}/model-versions/create",
            json={
                "name": "iris",
                "source": f"models:/{model_id}",
                "run_id": run_id,
                "model_id": model_id,
                "tags": [{"key": "k", "value": "v"}],
                "description": "first",
            },
        )
    )["model_version"]
    assert version["version"] == "1"
    assert version["current_stage"] == "None"
    assert version["source"] == f"models:/{model_id}"
    assert version["run_id"] == run_id
    assert isinstance(version["creation_timestamp"], int)
    # A second version from the run's folder path, MLflow 2 style.
    second = ok(
        http.post(
            f"{API}/model-versions/create",
            json={"name": "iris", "source": f"runs:/{run_id}/model"},
        )
    )["model_version"]
    assert second["version"] == "2"
    return run_id, model_id


def test_versions_aliases_stages_and_files(http: httpx.Client) -> None:
    register_two(http)
    params = {"name": "iris", "version": "1"}
    ok(http.post(f"{API}/model-versions/set-tag", json={**params, "key": "a", "value": "b"}))
    ok(http.request("DELETE", f"{API}/model-versions/delete-tag", json={**params, "key": "a"}))
    updated = ok(http.patch(f"{API}/model-versions/update", json={**params, "description": "x"}))
    assert updated["model_version"]["description"] == "x"
    ok(http.post(f"{API}/registered-models/alias", json={**params, "alias": "champion"}))
    by_alias = ok(
        http.get(f"{API}/registered-models/alias", params={"name": "iris", "alias": "champion"})
    )
    assert by_alias["model_version"]["aliases"] == ["champion"]
    err(
        http.get(f"{API}/registered-models/alias", params={"name": "iris", "alias": "nope"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    for stage in ("Staging", "Production"):
        moved = ok(
            http.post(f"{API}/model-versions/transition-stage", json={**params, "stage": stage})
        )
        assert moved["model_version"]["current_stage"] == stage
    moved = ok(
        http.post(
            f"{API}/model-versions/transition-stage",
            json={
                "name": "iris",
                "version": "2",
                "stage": "Production",
                "archive_existing_versions": True,
            },
        )
    )
    assert moved["model_version"]["current_stage"] == "Production"
    latest = ok(
        http.post(
            f"{API}/registered-models/get-latest-versions",
            json={"name": "iris", "stages": ["Production", "Archived"]},
        )
    )["model_versions"]
    assert [(v["version"], v["current_stage"]) for v in latest] == [
        ("1", "Archived"),
        ("2", "Production"),
    ]
    model = ok(http.get(f"{API}/registered-models/get", params={"name": "iris"}))
    assert model["registered_model"]["aliases"] == [{"alias": "champion", "version": "1"}]
    assert model["registered_model"]["tags"] == [{"key": "team", "value": "a"}]

    # The download URI serves the version's own files, immutable, as MLflow's client reads them.
    uri = ok(http.get(f"{API}/model-versions/get-download-uri", params=params))["artifact_uri"]
    assert uri == "mlflow-artifacts:/_registry/iris/1"
    files = ok(http.get(ART, params={"path": "_registry/iris/1"}))["files"]
    assert [f["path"] for f in files] == ["MLmodel", "model.skops"]
    data = http.get(f"{ART}/_registry/iris/1/model.skops").content
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(b"weights").hexdigest()
    ok(
        http.request(
            "DELETE", f"{API}/registered-models/alias", json={"name": "iris", "alias": "champion"}
        )
    )


def test_search_rename_and_delete(http: httpx.Client) -> None:
    run_id, _model_id = register_two(http)
    params = {"name": "iris", "version": "1"}

    found = ok(http.get(f"{API}/model-versions/search", params={"filter": "name='iris'"}))
    assert [v["version"] for v in found["model_versions"]] == ["2", "1"]
    page = ok(
        http.get(
            f"{API}/model-versions/search",
            params={"filter": "name='iris'", "max_results": 1, "order_by": "version_number ASC"},
        )
    )
    assert [v["version"] for v in page["model_versions"]] == ["1"]
    rest = ok(
        http.get(
            f"{API}/model-versions/search",
            params={
                "filter": "name='iris'",
                "max_results": 1,
                "order_by": "version_number ASC",
                "page_token": page["next_page_token"],
            },
        )
    )
    assert [v["version"] for v in rest["model_versions"]] == ["2"]
    models = ok(
        http.get(
            f"{API}/registered-models/search",
            params={"filter": "tag.`mlflow.prompt.is_prompt` != 'true'", "max_results": 100},
        )
    )
    assert [m["name"] for m in models["registered_models"]] == ["iris"]

    ok(
        http.post(
            f"{API}/registered-models/set-tag", json={"name": "iris", "key": "x", "value": "1"}
        )
    )
    ok(
        http.request(
            "DELETE", f"{API}/registered-models/delete-tag", json={"name": "iris", "key": "x"}
        )
    )
    desc = ok(
        http.patch(f"{API}/registered-models/update", json={"name": "iris", "description": "new"})
    )
    assert desc["registered_model"]["description"] == "new"
    ok(http.request("DELETE", f"{API}/model-versions/delete", json=params))
    renamed = ok(
        http.post(f"{API}/registered-models/rename", json={"name": "iris", "new_name": "iris2"})
    )
    assert renamed["registered_model"]["name"] == "iris2"
    err(
        http.get(f"{API}/registered-models/get", params={"name": "iris"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    with modelreg.Registry(str(http.base_url)) as reg:
        shown = reg.get_version("iris2:2")
        assert shown.lineage["source"] == f"runs:/{run_id}/model"
        assert shown.metrics == {"acc": 0.9}
        assert shown.params == {"C": "1"}
    ok(http.request("DELETE", f"{API}/registered-models/delete", json={"name": "iris2"}))
    err(
        http.get(f"{API}/registered-models/get", params={"name": "iris2"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_errors_use_mlflows_format(http: httpx.Client) -> None:
    err(http.get(f"{API}/no-such-endpoint"), 404, "ENDPOINT_NOT_FOUND")
    err(http.get(f"{API}/model-versions/get", params={"name": "m"}), 400, "INVALID_PARAMETER_VALUE")
    err(
        http.post(
            f"{API}/registered-models/create",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    err(
        http.post(
            f"{API}/registered-models/create", content=b"x", headers={"content-type": "text/plain"}
        ),
        415,
        "BAD_REQUEST",
    )
    err(
        http.post(f"{API}/model-versions/create", json={"name": "m", "source": "s3://b/k"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    err(
        http.post(
            f"{API}/model-versions/transition-stage",
            json={"name": "m", "version": "1", "stage": "Live"},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    # modelreg's own API keeps its own envelope.
    assert http.get("/api/v1/models/nope").json()["error"]["code"] == "model_not_found"


def test_cached_reads_follow_changes_and_grants(home: Path, files: Path, live_server: Any) -> None:
    """The hot reads are cached per change stamp: never stale, never shown to the wrong reader."""
    with modelreg.Registry(home) as local:
        for _ in range(2):
            local.register("beta", files / "model.pkl", capture=False)
        local.register("alpha", files / "model.pkl", capture=False)
        local.set_alias("beta", "champion", 1)
        local.create_user("root", role="admin")
        local.create_user("pv", role="viewer", model="alpha")
        tokens = {name: local.create_token(name)["token"] for name in ("root", "pv")}

    def client(who: str) -> httpx.Client:
        headers = {"authorization": f"Bearer {tokens[who]}"}
        return httpx.Client(base_url=live_server.url, headers=headers, timeout=30)

    alias = {"name": "beta", "alias": "champion"}
    with client("root") as root, client("pv") as pv:
        for _ in range(2):  # the second answer comes from the cache
            got = ok(root.get(f"{API}/registered-models/alias", params=alias))
            assert got["model_version"]["version"] == "1"
            # beta is absent to pv, remembered answer or not (issue 18, finding 10).
            err(
                pv.get(f"{API}/registered-models/alias", params=alias),
                404,
                "RESOURCE_DOES_NOT_EXIST",
            )
            err(
                pv.get(f"{API}/registered-models/get", params={"name": "beta"}),
                404,
                "RESOURCE_DOES_NOT_EXIST",
            )
            ok(root.get(f"{API}/registered-models/get", params={"name": "beta"}))
        ok(root.post(f"{API}/registered-models/alias", json={**alias, "version": "2"}))
        got = ok(root.get(f"{API}/registered-models/alias", params=alias))
        assert got["model_version"]["version"] == "2"
        ok(
            root.post(
                f"{API}/model-versions/set-tag",
                json={"name": "beta", "version": "2", "key": "k", "value": "v"},
            )
        )
        shown = ok(root.get(f"{API}/model-versions/get", params={"name": "beta", "version": "2"}))
        assert shown["model_version"]["tags"] == [{"key": "k", "value": "v"}]
        assert ok(pv.get(f"{API}/registered-models/get", params={"name": "alpha"}))


def test_runs_search_on_the_wire_and_per_caller(home: Path, files: Path, live_server: Any) -> None:
    """Issue 19, item 13: ``runs/search`` answers MLflow's shape (runs, next_page_token), its
    errors in MLflow's format, and each caller only the runs it may read."""
    with modelreg.Registry(home) as local:
        local.register("alpha", files / "model.pkl", capture=False)
        local.create_user("root", role="admin")
        local.create_user("ann", role="contributor", model="alpha")
        tokens = {name: local.create_token(name)["token"] for name in ("root", "ann")}

    def client(who: str) -> httpx.Client:
        headers = {"authorization": f"Bearer {tokens[who]}"}
        return httpx.Client(base_url=live_server.url, headers=headers, timeout=30)

    def search(http: httpx.Client, **body: Any) -> dict[str, Any]:
        return ok(http.post(f"{API}/runs/search", json={"experiment_ids": ["0"], **body}))

    with client("root") as root, client("ann") as ann:
        made = {}
        for who, http in (("root", root), ("ann", ann)):
            run = ok(http.post(f"{API}/runs/create", json={"experiment_id": "0"}))["run"]
            made[who] = run["info"]["run_id"]
            metric = {"run_id": made[who], "key": "acc", "value": 0.5, "timestamp": 1, "step": 0}
            ok(http.post(f"{API}/runs/log-metric", json=metric))
        every = search(root, filter="metrics.acc >= 0.5", order_by=["attributes.start_time"])
        assert {r["info"]["run_id"] for r in every["runs"]} == set(made.values())
        assert every["runs"][0]["data"]["metrics"][0]["key"] == "acc"
        assert "next_page_token" not in every
        first = search(root, max_results=1)
        assert len(first["runs"]) == 1
        rest = search(root, max_results=1, page_token=first["next_page_token"])
        assert {first["runs"][0]["info"]["run_id"], rest["runs"][0]["info"]["run_id"]} == set(
            made.values()
        )
        # ann's roles are per model: she sees her own run only.
        assert [r["info"]["run_id"] for r in search(ann)["runs"]] == [made["ann"]]
        err(
            root.post(f"{API}/runs/search", json={"experiment_ids": ["0"], "filter": "x ="}),
            400,
            "INVALID_PARAMETER_VALUE",
        )
        err(
            root.post(f"{API}/runs/search", json={"experiment_ids": ["0"], "max_results": 50001}),
            400,
            "INVALID_PARAMETER_VALUE",
        )
        err(root.get(f"{API}/runs/search"), 405, "ENDPOINT_NOT_FOUND")

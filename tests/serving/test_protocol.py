"""MLflow's scoring protocol on ``/invocations``: every input shape, and a precise 4xx for each
class of bad input (nothing is predicted, the server keeps serving)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from serving_fakes import write_model
from serving_harness import serving, wait_for

import modelreg
from registry_folders import LiveServer


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[str]:
    """A server answering ``churn:1`` (``x * 2``), shared by the module's tests.

    Every test here only reads (scores, asks ``/version``): one registry and one serve process
    for all of them instead of one each (the module took minutes of CI). The metrics test,
    which counts requests, has its own.
    """
    base = tmp_path_factory.mktemp("protocol")
    folder = base / "registry"
    folder.mkdir()
    shutil.copyfile(sqlite_template, base / "registry.db")
    (folder / "modelreg.toml").write_text(f'db = "sqlite:///{base / "registry.db"}"\n')
    with LiveServer(folder) as registry:
        with modelreg.Registry(registry.url) as reg:
            reg.register("churn", write_model(base / "model", 2.0, ""), capture=False)
        with _serving_churn(registry.url) as served:
            yield served


@pytest.fixture
def fresh_url(registry_url: str, add_version: Callable[..., int]) -> Iterator[str]:
    """A server of its own answering ``churn:1`` (``x * 2``): its counters start at zero."""
    add_version(factor=2.0)
    with _serving_churn(registry_url) as served:
        yield served


@contextlib.contextmanager
def _serving_churn(registry_url: str) -> Iterator[str]:
    with serving(registry_url, "churn:1", max_body=4096) as server:
        wait_for("churn:1 served", lambda: httpx.get(server.url + "/ping").status_code == 200)
        yield server.url


def score(
    url: str, body: object = None, *, content: bytes | None = None, **headers: str
) -> httpx.Response:
    if content is not None:
        return httpx.post(url + "/invocations", content=content, headers=headers)
    return httpx.post(url + "/invocations", json=body, headers=headers)


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["x"], "data": [[1.0], [2.5]]}},
        {"dataframe_split": {"columns": ["x"], "data": [[1.0], [2.5]], "index": [7, 8]}},
        {"dataframe_records": [{"x": 1.0}, {"x": 2.5}]},
        {"instances": [{"x": 1.0}, {"x": 2.5}]},
        {"inputs": {"x": [1.0, 2.5]}},
        {"inputs": [[1.0], [2.5]]},
        {"instances": [[1, 0], [2.5, 0]]},
    ],
    ids=[
        "split",
        "split-index",
        "records",
        "instances-rows",
        "inputs-columns",
        "inputs-tensor",
        "instances-tensor",
    ],
)
def test_every_json_shape_scores(url: str, body: object) -> None:
    answer = score(url, body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [2.0, 5.0]}
    assert answer.headers["modelreg-version"] == "churn:1"
    assert answer.headers["content-type"] == "application/json"


def test_csv_scores(url: str) -> None:
    answer = score(url, content=b"x\n1.0\n2.5\n", **{"content-type": "text/csv; charset=utf-8"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [2.0, 5.0]}


def test_ping_health_and_version(url: str) -> None:
    assert httpx.get(url + "/ping").status_code == 200
    assert httpx.get(url + "/health").status_code == 200
    doc = httpx.get(url + "/version").json()
    assert doc["name"] == "churn"
    assert doc["version"] == 1
    assert doc["ref"] == "churn:1"
    assert doc["flavor"] == "test-scaled"
    assert doc["loaded_at"].endswith("Z")
    assert doc["last_error"] == ""
    assert doc["following"] is False


@pytest.mark.parametrize(
    ("kwargs", "status", "needle"),
    [
        ({"content": b"{not json", "content-type": "application/json"}, 400, "not JSON"),
        ({"content": b"[1, 2]", "content-type": "application/json"}, 400, "JSON object"),
        ({"body": {"data": [[1]]}}, 400, "exactly one of"),
        ({"body": {"inputs": [[1]], "instances": [[1]]}}, 400, "exactly one of"),
        ({"body": {"dataframe_split": {"columns": ["x"]}}}, 400, "dataframe_split"),
        ({"body": {"dataframe_split": {"columns": ["x"], "data": [[1, 2]]}}}, 400, "row 0"),
        ({"body": {"dataframe_records": [1, 2]}}, 400, "list of objects"),
        ({"body": {"inputs": [[1], [2, 3]]}}, 400, "regular array"),
        ({"body": {"inputs": "x"}}, 400, "list or an object"),
        ({"body": {"dataframe_records": [{"y": 1.0}]}}, 400, "'x'"),
        ({"body": {"dataframe_records": [{"x": "a"}]}}, 400, "'x'"),
        ({"content": b"x\n1\n", "content-type": "text/plain"}, 400, "not supported"),
        ({"content": b"", "content-type": "text/csv"}, 400, "empty"),
        ({"content": b"x\n" + b"1\n" * 4000, "content-type": "text/csv"}, 413, "4096 bytes"),
    ],
    ids=[
        "not-json",
        "not-object",
        "no-key",
        "two-keys",
        "split-no-data",
        "split-width",
        "records-not-objects",
        "ragged",
        "inputs-scalar",
        "missing-column",
        "wrong-dtype",
        "content-type",
        "empty-csv",
        "too-large",
    ],
)
def test_bad_input_gets_a_precise_error(
    url: str, kwargs: dict[str, object], status: int, needle: str
) -> None:
    if "body" in kwargs:
        answer = score(url, kwargs["body"])
    else:
        answer = score(
            url, content=kwargs["content"], **{"content-type": str(kwargs["content-type"])}
        )  # type: ignore[arg-type]
    assert answer.status_code == status, answer.text
    doc = answer.json()
    assert needle in doc["error"]["message"], doc
    assert doc["error_code"] == "BAD_REQUEST"
    assert doc["message"] == doc["error"]["message"]
    assert answer.headers["modelreg-version"] == "churn:1"
    # Nothing broke: the next good request is answered.
    assert score(url, {"inputs": {"x": [1.0]}}).json() == {"predictions": [2.0]}


def test_a_missing_column_is_named(url: str) -> None:
    answer = score(url, {"dataframe_split": {"columns": ["y"], "data": [[1.0]]}})
    assert answer.status_code == 400
    assert answer.json()["error"]["detail"] == {"column": "x"}


def test_metrics_count_requests_errors_and_the_live_version(fresh_url: str) -> None:
    url = fresh_url
    score(url, {"inputs": {"x": [1.0]}})
    score(url, {"inputs": "x"})
    text = httpx.get(url + "/metrics").text
    assert 'modelreg_serve_live_version{model="churn"} 1.0' in text
    assert 'modelreg_serve_requests_total{model="churn",status="200",version="1"}' in text
    assert 'modelreg_serve_errors_total{kind="input",model="churn",version="1"} 1.0' in text
    assert "modelreg_serve_request_duration_seconds_bucket" in text
    assert 'modelreg_serve_swaps_total{model="churn",outcome="ok"} 1.0' in text

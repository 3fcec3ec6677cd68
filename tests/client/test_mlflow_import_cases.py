"""``import_mlflow`` on cases a healthy MLflow server rarely shows, from canned MLflow answers.

The real server is in tests/e2e/test_import_mlflow.py; here an httpx.MockTransport answers as
MLflow would when a file arrives short, a listing fails, a version is still uploading, a model
is a prompt, a location names another host, a run is gone, or a policy refuses an alias. The
registry is a real embedded one.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import modelreg
from modelreg.client._mlflow_source import MlflowSource
from modelreg.client.mlflow_import import import_mlflow

URL = "http://mlflow.test:5000"


class FakeMlflow:
    """Just enough of MLflow's REST API: models, versions, download URIs, runs, artifacts."""

    def __init__(self) -> None:
        self.models: list[dict[str, Any]] = []
        self.versions: dict[str, list[dict[str, Any]]] = {}
        self.files: dict[str, bytes] = {}  # artifact path -> bytes
        self.sizes: dict[str, int] = {}  # listed size when it differs from the bytes
        self.runs: dict[str, dict[str, Any]] = {}
        self.broken: set[str] = set()  # models whose version listing fails
        self.hosts: set[str] = set()

    def model(self, name: str, **fields: Any) -> None:
        self.models.append({"name": name, **fields})
        self.versions.setdefault(name, [])

    def version(self, name: str, number: int, files: dict[str, bytes] | None = None, **fields):
        uri = fields.pop("uri", f"mlflow-artifacts:/art/{name}/{number}")
        entry = {"name": name, "version": str(number), "status": "READY", "uri": uri, **fields}
        self.versions[name].append(entry)
        for rel, data in (files or {}).items():
            self.files[f"art/{name}/{number}/{rel}"] = data

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.hosts.add(request.url.host)
        path, params = request.url.path, request.url.params
        if path == "/api/2.0/mlflow/registered-models/search":
            return _json({"registered_models": self.models})
        if path == "/api/2.0/mlflow/model-versions/search":
            name = params["filter"].split("=", 1)[1][1:-1]
            if name in self.broken:
                return _json({"error_code": "INTERNAL_ERROR", "message": "db down"}, 500)
            return _json({"model_versions": self.versions[name]})
        if path == "/api/2.0/mlflow/model-versions/get-download-uri":
            found = [v for v in self.versions[params["name"]] if v["version"] == params["version"]]
            return _json({"artifact_uri": found[0]["uri"]})
        if path == "/api/2.0/mlflow/runs/get":
            run = self.runs.get(params["run_id"])
            return _json(
                {"run": {"data": run}} if run else {"error_code": "NOT_FOUND"}, 200 if run else 404
            )
        if path == "/api/2.0/mlflow-artifacts/artifacts":
            return _json({"files": self._listing(params["path"])})
        prefix = "/api/2.0/mlflow-artifacts/artifacts/"
        if path.startswith(prefix) and path[len(prefix) :] in self.files:
            return httpx.Response(200, content=self.files[path[len(prefix) :]])
        return httpx.Response(404)

    def _listing(self, folder: str) -> list[dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for path, data in self.files.items():
            if path.startswith(folder + "/"):
                first, _, rest = path[len(folder) + 1 :].partition("/")
                size = self.sizes.get(path, len(data))
                out[first] = (
                    {"path": first, "is_dir": True}
                    if rest
                    else {
                        "path": first,
                        "is_dir": False,
                        "file_size": size,
                    }
                )
        return list(out.values())


def _json(data: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(data).encode())


@pytest.fixture
def fake() -> FakeMlflow:
    return FakeMlflow()


@pytest.fixture
def registry(tmp_path):
    reg = modelreg.Registry(tmp_path / "registry")
    yield reg
    reg.close()


def run(registry, fake, **kwargs):
    with MlflowSource(URL, transport=httpx.MockTransport(fake)) as source:
        return import_mlflow(registry, source, **kwargs)


def outcome(summary, name):
    return {m.name: m for m in summary.models}[name]


def test_a_file_shorter_than_listed_fails_that_version_only(registry, fake):
    fake.model("m")
    fake.version("m", 1, {"a.bin": b"12345"})
    fake.version("m", 2, {"a.bin": b"ok"})
    fake.sizes["art/m/1/a.bin"] = 10
    summary = run(registry, fake)
    versions = outcome(summary, "m").versions
    assert [(v.version, v.status) for v in versions] == [(1, "failed"), (2, "imported")]
    assert "received 5 bytes, the listing said 10" in versions[0].reason
    assert summary.exit_code == 1
    assert [v.version for v in registry.list_versions("m")] == [2]


def test_a_model_whose_versions_cannot_be_listed_fails(registry, fake):
    fake.model("m")
    fake.broken.add("m")
    summary = run(registry, fake)
    model = outcome(summary, "m")
    assert (model.status, summary.exit_code) == ("failed", 1)
    assert "HTTP 500 (db down)" in model.reason


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"status": "PENDING_REGISTRATION"}, "its MLflow status is PENDING_REGISTRATION"),
        ({"uri": "mlflow-artifacts://evil.test:80/art/m/1"}, "outside the MLflow server"),
        ({"uri": "gs://bucket/m"}, "its files are at gs://bucket/m"),
        ({}, "MLflow lists no files"),
    ],
)
def test_versions_that_cannot_be_imported_are_skipped(registry, fake, fields, reason):
    fake.model("m")
    fake.version("m", 1, **fields)
    summary = run(registry, fake)
    version = outcome(summary, "m").versions[0]
    assert version.status == "skipped"
    assert reason in version.reason
    assert summary.exit_code == 0
    assert fake.hosts == {"mlflow.test"}


def test_prompts_are_not_models(registry, fake):
    fake.model("greeting", tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}])
    model = outcome(run(registry, fake), "greeting")
    assert (model.status, model.reason) == ("skipped", "an MLflow prompt, not a model")


def test_a_missing_run_means_no_metrics(registry, fake):
    fake.model("m")
    fake.version("m", 1, {"a": b"1"}, run_id="gone")
    fake.version("m", 2, {"a": b"2"}, run_id="r2")
    fake.runs["r2"] = {
        "metrics": [{"key": "auc", "value": 0.8}, {"key": "nan", "value": "NaN"}],
        "params": [{"key": "depth", "value": "3"}],
    }
    summary = run(registry, fake)
    assert summary.exit_code == 0
    assert registry.get_version("m:1").metrics == {}
    second = registry.get_version("m:2")
    assert (second.metrics, second.params) == ({"auc": 0.8}, {"depth": "3"})
    assert any("'nan' not copied" in n for n in outcome(summary, "m").versions[1].notes)


def test_an_existing_model_keeps_its_tags_and_gains_what_it_lacks(registry, fake):
    registry.create_model("m", tags={"team": "mine"})
    fake.model(
        "m",
        description="from mlflow",
        tags=[{"key": "team", "value": "theirs"}, {"key": "domain", "value": "ads"}],
    )
    fake.version("m", 1, {"a": b"1"})
    model = outcome(run(registry, fake), "m")
    assert model.status == "existing"
    assert any("'team' kept as 'mine'" in n for n in model.notes)
    got = registry.get_model("m")
    assert (got.tags, got.description) == ({"team": "mine", "domain": "ads"}, "from mlflow")


def test_an_alias_refused_by_policy_is_reported(registry, fake):
    registry.set_policy_rule("*", "@champion", requires=["metrics.auc >= 0.9"])
    fake.model(
        "m", aliases=[{"alias": "champion", "version": "1"}, {"alias": "v1", "version": "1"}]
    )
    fake.version("m", 1, {"a": b"1"})
    summary = run(registry, fake)
    aliases = {a.alias: a for a in outcome(summary, "m").aliases}
    assert aliases["champion"].status == "skipped"
    assert "refused by policy" in aliases["champion"].reason
    assert "not a valid modelreg alias" in aliases["v1"].reason
    assert summary.exit_code == 0
    assert registry.get_model("m").aliases == {}


def test_an_alias_on_a_version_not_imported_is_skipped(registry, fake):
    fake.model("m", aliases=[{"alias": "prod", "version": "1"}])
    fake.version("m", 1, uri="s3://b/m")
    alias = outcome(run(registry, fake), "m").aliases[0]
    assert (alias.status, alias.reason) == ("skipped", "version 1 was not imported")


def test_production_here_stays_production(registry, fake, tmp_path):
    (tmp_path / "f").write_bytes(b"f")
    registry.register("m", tmp_path / "f", capture=False, number=1, stage="production")
    fake.model("m")
    fake.version("m", 2, {"a": b"2"}, current_stage="Production")
    summary = run(registry, fake, keep_stages=True)
    model = outcome(summary, "m")
    assert [(v.version, v.stage) for v in model.versions] == [(2, "archived")]
    assert any("version 1 already holds production here" in n for n in model.notes)
    assert registry.get_model("m").stages == {"production": 1}

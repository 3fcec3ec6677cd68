"""The MLflow scripts of docs/mlflow.md run unchanged on modelreg, and on MLflow itself (issue 5).

docs/mlflow.md shows three scripts users copy: ``first_version.py`` (a model, a version from a
logged model, alias ``champion``), ``train.py`` (log a model, ``register_model``, Staging, then
Production) and ``serve.py`` (``pyfunc.load_model`` by alias and by stage). They run here exactly
as the doc prints them, in its order, with ``train.py`` twice (the second production version
archives the first), with the real MLflow client from its own venv: once against a
``modelreg server`` and once against a real ``mlflow server``, which proves the scripts
themselves right. A probe script then reads back what MLflow's client sees.

Checked: every script runs; modelreg holds each version with the logged model's files, the
run's params and metrics and its lineage; stages and the alias are where MLflow puts them;
what ``serve.py`` loads predicts as the logged model does; and MLflow's client sees the same
registry on both servers.

Each MLflow script costs 5–10 s (importing MLflow, and ``log_model`` infers requirements in a
subprocess), so each server's scenario runs once per test run (``once_per_run``, even across
xdist workers), the server stops, and the tests share what was recorded.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import modelreg
from mlflow_env import MlflowServer, once_per_run, run_mlflow_script
from server_process import ServerProcess

pytestmark = pytest.mark.slow

DOC = Path(__file__).parents[2] / "docs" / "mlflow.md"
MODEL = "iris-classifier"
# The order a reader runs them in; train.py twice, so that a production version is replaced.
PLAY = ["first_version.py", "train.py", "train.py", "serve.py"]
STEP_IDS = ["first_version", "train", "train-again", "serve"]
LOGGED_MODEL_FILES = {"MLmodel", "model.skops", "requirements.txt", "conda.yaml", "python_env.yaml"}
SCRIPT = re.compile(r"^```python\n# (\w+\.py)\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)

# What MLflow's client sees of the model, as JSON. Each part is tried on its own, so that one
# missing endpoint shows up as one error instead of hiding everything else.
PROBE = """
import json, sys
import mlflow
from mlflow import MlflowClient
from sklearn.datasets import load_iris

name = sys.argv[1]
client = MlflowClient()
X, _ = load_iris(return_X_y=True)
out = {"errors": {}, "runs": {}, "predictions": {}}

def attempt(key, call):
    try:
        return call()
    except Exception as exc:
        out["errors"][key] = f"{type(exc).__name__}: {exc}"[:2000]

def versions():
    found = []
    for v in client.search_model_versions(f"name='{name}'"):
        # MLflow's server leaves ModelVersion.model_id empty; the source names the model.
        model_id = v.source.removeprefix("models:/") if v.source.startswith("models:/m-") else None
        found.append({
            "version": int(v.version), "stage": v.current_stage, "aliases": sorted(v.aliases),
            "source": v.source, "run_id": v.run_id, "model_id": model_id, "status": v.status,
        })
    return sorted(found, key=lambda v: v["version"])

out["versions"] = attempt("search_model_versions", versions) or []
for v in out["versions"]:
    run_id, model_id = v["run_id"], v["model_id"]
    if run_id and run_id not in out["runs"]:
        data = attempt(f"get_run {run_id}", lambda: client.get_run(run_id).data)
        if data is not None:
            out["runs"][run_id] = {"params": dict(data.params), "metrics": dict(data.metrics)}
    if model_id and model_id not in out["predictions"]:
        uri = f"models:/{model_id}"
        model = attempt(f"load {uri}", lambda: mlflow.pyfunc.load_model(uri))
        if model is not None:
            out["predictions"][model_id] = model.predict(X[::10]).tolist()
model = attempt("get_registered_model", lambda: client.get_registered_model(name))
out["aliases"] = dict(model.aliases) if model else None
out["description"] = model.description if model else None
latest = attempt("get_latest_versions", lambda: client.get_latest_versions(name))
out["latest"] = sorted([int(v.version), v.current_stage] for v in latest or [])
print(json.dumps(out))
"""


def doc_scripts() -> dict[str, str]:
    """The doc's ``python`` blocks that start with a file name comment, by that name."""
    return {m[1]: f"# {m[1]}\n{m[2]}" for m in SCRIPT.finditer(DOC.read_text(encoding="utf-8"))}


class Scenario:
    """The doc's scripts played against one server: each run, then what the clients saw.

    Plain data (``once_per_run`` shares it between xdist workers): each run is
    ``{name, returncode, stdout, stderr}``; ``registry`` is modelreg's own view, read through
    ``modelreg.Registry`` before the server stopped.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.steps: list[dict[str, Any]] = data["steps"]
        self.probe: dict[str, Any] = data["probe"]
        self.registry: dict[str, Any] = data.get("registry", {})
        self.server_log: str = data["server_log"]

    def why(self, run: dict[str, Any]) -> str:
        return (
            f"{run['name']}: exit {run['returncode']}\n--- stdout\n{run['stdout'][-3000:]}\n"
            f"--- stderr\n{run['stderr'][-6000:]}\n--- server log\n{self.server_log[-4000:]}"
        )

    def seen(self) -> dict[str, Any]:
        """The probe's JSON; fails the test (with the probe's output) if it did not run."""
        assert self.probe["returncode"] == 0, self.why(self.probe)
        data: dict[str, Any] = json.loads(self.probe["stdout"].strip().splitlines()[-1])
        return data

    def served(self) -> dict[str, tuple[str, list[int]]]:
        """``serve.py``'s lines: URI → (model_id, predictions)."""
        run = self.steps[PLAY.index("serve.py")]
        assert run["returncode"] == 0, self.why(run)
        lines = {}
        for line in run["stdout"].splitlines():
            if line.startswith("models:/"):
                uri, model_id, predictions = line.split(" ", 2)
                lines[uri] = (model_id, json.loads(predictions))
        return lines

    def view(self, key: str) -> Any:
        """One part of modelreg's own view; fails with the error if it could not be read."""
        assert key in self.registry, self.registry.get("errors", {}).get(key, self.registry)
        return self.registry[key]


def _ran(name: str, done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return {
        "name": name,
        "returncode": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr,
    }


def play(python: Path, url: str, workdir: Path) -> dict[str, Any]:
    """Run the doc's scripts in order, then the probe; keep every exit code and output."""
    steps = []
    for name, code in [*((name, doc_scripts()[name]) for name in PLAY), ("probe.py", PROBE)]:
        args = [MODEL] if name == "probe.py" else []
        done = run_mlflow_script(
            python, code, tracking_uri=url, workdir=workdir, name=name, args=args
        )
        steps.append(_ran(name, done))
    return {"steps": steps[:-1], "probe": steps[-1]}


def registry_view(url: str, downloads: Path) -> dict[str, Any]:
    """What modelreg's own client says of the model; each part on its own, errors kept."""
    view: dict[str, Any] = {"errors": {}}
    with modelreg.Registry(url) as reg:
        parts: dict[str, Callable[[], Any]] = {
            "model": lambda: reg.get_model(MODEL).to_dict(),
            "versions": lambda: [v.to_dict() for v in reg.list_versions(MODEL)],
            "champion": lambda: reg.get_version(f"{MODEL}@champion").version,
            "production": lambda: reg.get_version(f"models:/{MODEL}/production").version,
        }
        for key, read in parts.items():
            try:
                view[key] = read()
            except Exception as exc:
                view["errors"][key] = f"{type(exc).__name__}: {exc}"
        mlmodels = {}
        for version in view.get("versions", []):
            ref = f"{MODEL}:{version['version']}"
            try:
                reg.download(ref, downloads / ref)
                mlmodels[str(version["version"])] = (downloads / ref / "MLmodel").read_text()
            except Exception as exc:
                view["errors"][f"download {ref}"] = f"{type(exc).__name__}: {exc}"
        view["mlmodel"] = mlmodels
    return view


@pytest.fixture(scope="module")
def on_modelreg(mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    def produce(work: Path) -> dict[str, Any]:
        home = work / "registry"
        home.mkdir()
        with ServerProcess(home) as server:
            data = play(mlflow_python, server.url, work / "client")
            data["registry"] = registry_view(server.url, work / "downloads")
            data["server_log"] = server.output()
        return data

    return Scenario(once_per_run(tmp_path_factory, "docs-on-modelreg", produce))


@pytest.fixture(scope="module")
def on_mlflow(mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    def produce(work: Path) -> dict[str, Any]:
        with MlflowServer(mlflow_python, work / "server") as server:
            data = play(mlflow_python, server.url, work / "client")
            data["server_log"] = server.output()
        return data

    return Scenario(once_per_run(tmp_path_factory, "docs-on-mlflow", produce))


def by_version(seen: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {v["version"]: v for v in seen["versions"]}


def test_the_doc_shows_the_three_scripts() -> None:
    scripts = doc_scripts()
    assert list(scripts) == ["first_version.py", "train.py", "serve.py"]
    for name, code in scripts.items():
        compile(code, name, "exec")
        assert "MLFLOW_TRACKING_URI" not in code, "scripts take the server from the environment"


def test_the_scripts_run_on_mlflow_itself(on_mlflow: Scenario) -> None:
    for run in on_mlflow.steps:
        assert run["returncode"] == 0, on_mlflow.why(run)
    seen = on_mlflow.seen()
    assert seen["errors"] == {}
    stages = {n: v["stage"] for n, v in by_version(seen).items()}
    assert stages == {1: "None", 2: "Archived", 3: "Production"}
    served = on_mlflow.served()
    versions = by_version(seen)
    assert served[f"models:/{MODEL}@champion"][0] == versions[1]["model_id"]
    assert served[f"models:/{MODEL}/Production"][0] == versions[3]["model_id"]


@pytest.mark.parametrize("step", range(len(PLAY)), ids=STEP_IDS)
def test_each_script_runs_unchanged_on_modelreg(on_modelreg: Scenario, step: int) -> None:
    run = on_modelreg.steps[step]
    assert run["returncode"] == 0, on_modelreg.why(run)


def test_mlflow_client_reads_everything_back(on_modelreg: Scenario) -> None:
    assert on_modelreg.seen()["errors"] == {}


def test_versions_hold_the_logged_models_files(on_modelreg: Scenario) -> None:
    seen = by_version(on_modelreg.seen())
    versions = {v["version"]: v for v in on_modelreg.view("versions")}
    assert sorted(versions) == [1, 2, 3]
    mlmodels = on_modelreg.view("mlmodel")
    for number, version in versions.items():
        assert version["status"] == "ready"
        assert {f["path"] for f in version["files"]} >= LOGGED_MODEL_FILES, version["files"]
        # The MLmodel file MLflow wrote when logging names its logged model and run.
        mlmodel = mlmodels.get(str(number))
        assert mlmodel, on_modelreg.registry["errors"]
        assert f"model_id: {seen[number]['model_id']}" in mlmodel
        assert f"run_id: {seen[number]['run_id']}" in mlmodel


def test_versions_carry_the_runs_params_metrics_and_lineage(on_modelreg: Scenario) -> None:
    seen = on_modelreg.seen()
    versions = {v["version"]: v for v in on_modelreg.view("versions")}
    for number, mlflow_view in by_version(seen).items():
        version = versions[number]
        run = seen["runs"][mlflow_view["run_id"]]
        assert version["params"] == run["params"], number
        assert version["metrics"] == run["metrics"], number
        assert version["params"] == {"C": "1.0" if number == 1 else "0.5"}
        assert 0.9 <= version["metrics"]["accuracy"] <= 1.0
        assert version["lineage"]["run_id"] == mlflow_view["run_id"]
        # Both create_model_version and register_model name the logged model (MLflow 3).
        assert version["lineage"]["source"] == f"models:/{mlflow_view['model_id']}"
        assert mlflow_view["source"] == version["lineage"]["source"]


def test_stages_and_the_alias(on_modelreg: Scenario) -> None:
    stages = {v["version"]: v["stage"] for v in on_modelreg.view("versions")}
    assert stages == {1: "none", 2: "archived", 3: "production"}
    model = on_modelreg.view("model")
    assert model["aliases"] == {"champion": 1}
    assert model["stages"].get("production") == 3
    assert model["description"] == "Iris species from sepal and petal sizes"
    assert on_modelreg.view("champion") == 1
    assert on_modelreg.view("production") == 3

    seen = on_modelreg.seen()
    assert {n: v["stage"] for n, v in by_version(seen).items()} == {
        1: "None",
        2: "Archived",
        3: "Production",
    }
    assert seen["aliases"] == {"champion": "1"}


def test_serve_loads_the_named_versions_and_they_predict_as_logged(on_modelreg: Scenario) -> None:
    seen = on_modelreg.seen()
    versions = by_version(seen)
    served = on_modelreg.served()
    assert set(served) == {f"models:/{MODEL}@champion", f"models:/{MODEL}/Production"}
    for uri, number in ((f"models:/{MODEL}@champion", 1), (f"models:/{MODEL}/Production", 3)):
        model_id, predictions = served[uri]
        assert model_id == versions[number]["model_id"], uri
        # The same as the logged model (models:/m-…) predicts, loaded through the tracking side.
        assert predictions == seen["predictions"][model_id], uri


def _shape(seen: dict[str, Any]) -> dict[str, Any]:
    """What must be equal on both servers: run and model ids differ, so compare by version.

    Not the aliases of ``search_model_versions``' results: MLflow's server leaves them empty
    there (modelreg fills them in); the model's own aliases are compared.
    """
    versions = by_version(seen)
    runs = seen["runs"]
    return {
        "versions": {
            n: {
                "stage": v["stage"],
                "status": v["status"],
                "source": "models:/<model_id>" if v["source"] == f"models:/{v['model_id']}" else v,
                "run": runs.get(v["run_id"]),
                "predictions": seen["predictions"].get(v["model_id"]),
            }
            for n, v in versions.items()
        },
        "aliases": seen["aliases"],
        "description": seen["description"],
        "latest": seen["latest"],
    }


def test_the_mlflow_client_sees_the_same_registry_on_both_servers(
    on_modelreg: Scenario, on_mlflow: Scenario
) -> None:
    assert _shape(on_modelreg.seen()) == _shape(on_mlflow.seen())

"""MlflowClient against a ``modelreg server``: registry calls, their errors, and modelreg's rules.

Each test is one script run with the real MLflow client (its own venv) that prints one JSON
document, then assertions on it and, where it matters, on modelreg's own view of the registry.

- The calls and errors are MLflow's documented behaviour. Set
  ``MODELREG_TEST_MLFLOW_REFERENCE=1`` to run those tests against a real ``mlflow server`` as
  well, which proves the expectations are MLflow's own.
- The rest is what modelreg does differently (docs/mlflow.md, "What differs"): sources outside
  the registry are refused, one production version per model, transitions through promotion
  policies, and API tokens for authentication.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import modelreg
from mlflow_env import MlflowServer, run_mlflow_json
from server_process import ServerProcess

pytestmark = pytest.mark.slow

TARGETS = ["modelreg"] + (["mlflow"] if os.environ.get("MODELREG_TEST_MLFLOW_REFERENCE") else [])

# Every script starts with this: a client, a way to catch an expected error, a small logged model.
PRELUDE = '''
import json, os, sys
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException

client = MlflowClient()


def error_of(call, *args, **kwargs):
    """The error of a call that should fail: {code, message, rest}; None if it succeeded."""
    try:
        call(*args, **kwargs)
    except RestException as exc:
        return {"code": exc.error_code, "message": exc.message, "rest": True}
    except MlflowException as exc:
        return {"code": exc.error_code, "message": exc.message, "rest": False}
    return None


def log_model(accuracy=None):
    """A small scikit-learn model logged in a run: (run_id, the logged model's info)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    with mlflow.start_run() as run:
        clf = LogisticRegression(max_iter=500).fit(X, y)
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("accuracy", clf.score(X, y) if accuracy is None else accuracy)
        # Naming the requirements skips MLflow's inference (a subprocess, seconds).
        info = mlflow.sklearn.log_model(clf, name="model", pip_requirements=["scikit-learn"])
    return run.info.run_id, info


def new_version(name, run_id, info):
    return client.create_model_version(
        name, source=info.model_uri, run_id=run_id, model_id=info.model_id
    )


def mv(v):
    return {
        "name": v.name, "version": v.version, "stage": v.current_stage, "source": v.source,
        "run_id": v.run_id, "status": v.status, "description": v.description,
        "tags": dict(v.tags), "aliases": sorted(v.aliases),
    }


def rm(m):
    return {
        "name": m.name, "description": m.description, "tags": dict(m.tags),
        "aliases": dict(m.aliases),
    }


def done(result):
    print(json.dumps(result, default=str))
'''


def run(python: Path, url: str, workdir: Path, body: str, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = run_mlflow_json(
        python, PRELUDE + body, tracking_uri=url, workdir=workdir, name="compat.py", **kwargs
    )
    return result


def code(error: dict[str, Any] | None) -> str | None:
    return None if error is None else error["code"]


@pytest.fixture(scope="module")
def modelreg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A registry with no users: loopback clients act as its owner (laptop mode)."""
    home = tmp_path_factory.mktemp("compat-modelreg") / "registry"
    home.mkdir()
    with ServerProcess(home) as server:
        yield server


@pytest.fixture(scope="module")
def mlflow_server(
    mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    with MlflowServer(mlflow_python, tmp_path_factory.mktemp("compat-mlflow")) as server:
        yield server


@pytest.fixture(params=TARGETS)
def url(request: pytest.FixtureRequest) -> str:
    """The server of a test that holds for MLflow as much as for modelreg."""
    server: ServerProcess | MlflowServer = request.getfixturevalue(f"{request.param}_server")
    return server.url


@pytest.fixture
def registry(modelreg_server: ServerProcess) -> Iterator[modelreg.Registry]:
    reg = modelreg.Registry(modelreg_server.url)
    yield reg
    reg.close()


REGISTERED_MODEL_CALLS = """
name, renamed = "compat-models", "compat-models-renamed"
created = client.create_registered_model(name, tags={"team": "risk"}, description="first")
out = {"created": rm(created)}
out["got"] = rm(client.get_registered_model(name))
found = client.search_registered_models(filter_string="name LIKE 'compat-mod%'")
out["found"] = [m.name for m in found]
client.update_registered_model(name, description="second")
client.set_registered_model_tag(name, "owner", "alice")
client.delete_registered_model_tag(name, "team")
out["updated"] = rm(client.get_registered_model(name))
client.rename_registered_model(name, renamed)  # MlflowClient returns None here
out["old_name"] = error_of(client.get_registered_model, name)
out["new_name"] = rm(client.get_registered_model(renamed))
client.delete_registered_model(renamed)
out["deleted"] = error_of(client.get_registered_model, renamed)
done(out)
"""


def test_registered_model_calls(mlflow_python: Path, url: str, tmp_path: Path) -> None:
    out = run(mlflow_python, url, tmp_path, REGISTERED_MODEL_CALLS)
    first = {"description": "first", "tags": {"team": "risk"}, "aliases": {}}
    assert out["created"] == {"name": "compat-models", **first}
    assert out["got"] == {"name": "compat-models", **first}
    assert out["found"] == ["compat-models"]
    second = {"description": "second", "tags": {"owner": "alice"}, "aliases": {}}
    assert out["updated"] == {"name": "compat-models", **second}
    assert code(out["old_name"]) == "RESOURCE_DOES_NOT_EXIST"
    assert out["new_name"] == {"name": "compat-models-renamed", **second}
    assert code(out["deleted"]) == "RESOURCE_DOES_NOT_EXIST"


MODEL_VERSION_CALLS = """
name, copy = "compat-versions", "compat-versions-copy"
run_id, info = log_model()
client.create_registered_model(name)
out = {"run_id": run_id, "model_uri": info.model_uri}
out["created"] = [mv(new_version(name, run_id, info)) for _ in range(2)]
out["got"] = mv(client.get_model_version(name, "1"))
client.update_model_version(name, "1", description="the first")
client.set_model_version_tag(name, "1", "validated", "true")
client.set_model_version_tag(name, "1", "scratch", "x")
client.delete_model_version_tag(name, "1", "scratch")
out["updated"] = mv(client.get_model_version(name, "1"))
client.set_registered_model_alias(name, "champion", "2")
out["aliased"] = mv(client.get_model_version_by_alias(name, "champion"))
client.delete_registered_model_alias(name, "champion")
out["unaliased"] = rm(client.get_registered_model(name))
out["download_uri"] = client.get_model_version_download_uri(name, "1")
local = mlflow.artifacts.download_artifacts(out["download_uri"], dst_path="dl")
out["files"] = sorted(os.listdir(local))
latest = mlflow.artifacts.download_artifacts(f"models:/{name}/latest", dst_path="latest")
out["latest_files"] = sorted(os.listdir(latest))
out["copied"] = mv(client.copy_model_version(f"models:/{name}/1", copy))
copied = f"models:/{copy}/{out['copied']['version']}"
out["copied_files"] = sorted(os.listdir(mlflow.artifacts.download_artifacts(copied, dst_path="cp")))
client.delete_model_version(name, "2")
out["remaining"] = [v.version for v in client.search_model_versions(f"name='{name}'")]
out["deleted_version"] = error_of(client.get_model_version, name, "2")
client.delete_registered_model(name)
out["deleted_model"] = error_of(client.get_registered_model, name)
out["copy_survives"] = [v.version for v in client.search_model_versions(f"name='{copy}'")]
done(out)
"""


def test_model_version_calls(mlflow_python: Path, url: str, tmp_path: Path) -> None:
    out = run(mlflow_python, url, tmp_path, MODEL_VERSION_CALLS)
    assert [v["version"] for v in out["created"]] == ["1", "2"]
    got = out["got"]
    assert got["source"] == out["model_uri"]
    assert got["run_id"] == out["run_id"]
    assert (got["status"], got["stage"], got["tags"], got["aliases"]) == ("READY", "None", {}, [])
    updated = out["updated"]
    assert (updated["description"], updated["tags"]) == ("the first", {"validated": "true"})
    assert (out["aliased"]["version"], out["aliased"]["aliases"]) == ("2", ["champion"])
    assert out["unaliased"]["aliases"] == {}
    assert out["download_uri"]
    assert {"MLmodel", "model.skops", "requirements.txt"} <= set(out["files"])
    assert (out["copied"]["name"], out["copied"]["version"]) == ("compat-versions-copy", "1")
    # MLflow's client adds registered_model_meta when it downloads a models:/ URI.
    assert set(out["latest_files"]) - {"registered_model_meta"} == set(out["files"])
    assert set(out["copied_files"]) - {"registered_model_meta"} == set(out["files"])
    assert out["remaining"] == ["1"]
    assert code(out["deleted_version"]) == "RESOURCE_DOES_NOT_EXIST"
    assert code(out["deleted_model"]) == "RESOURCE_DOES_NOT_EXIST"
    assert out["copy_survives"] == ["1"]


ERRORS = """
name = "compat-errors"
client.create_registered_model(name)
done({
    "missing_model": error_of(client.get_registered_model, "compat-missing"),
    "duplicate": error_of(client.create_registered_model, name),
    "missing_alias": error_of(client.get_model_version_by_alias, name, "nope"),
    "missing_version": error_of(client.get_model_version, name, "7"),
})
"""


def test_error_codes(mlflow_python: Path, url: str, tmp_path: Path) -> None:
    out = run(mlflow_python, url, tmp_path, ERRORS)
    assert {key: code(error) for key, error in out.items()} == {
        "missing_model": "RESOURCE_DOES_NOT_EXIST",
        "duplicate": "RESOURCE_ALREADY_EXISTS",
        # MLflow answers a missing alias with 400 INVALID_PARAMETER_VALUE, not 404.
        "missing_alias": "INVALID_PARAMETER_VALUE",
        "missing_version": "RESOURCE_DOES_NOT_EXIST",
    }
    assert all(error["rest"] for error in out.values()), out


OUTSIDE = [
    "s3://other-bucket/model",
    "gs://other-bucket/model",
    "file:///etc",
    "/etc/passwd",
    "http://169.254.169.254/latest/meta-data/",
    "https://example.com/model.pkl",
]
# Sources in an allowed scheme that climb out of what they name.
CLIMBING = ["mlflow-artifacts:/../../../etc", "runs:/../../etc/passwd"]
SOURCES = """
name = "compat-sources"
client.create_registered_model(name)
sources = json.loads(sys.argv[1])
refused = {s: error_of(client.create_model_version, name, source=s) for s in sources}
done({
    "refused": refused,
    "versions": [v.version for v in client.search_model_versions(f"name='{name}'")],
    "bad_name": error_of(client.create_registered_model, "iris classifier"),
})
"""


def test_sources_outside_the_registry_are_refused(
    mlflow_python: Path, modelreg_server: ServerProcess, tmp_path: Path
) -> None:
    """MLflow accepts these and its server later reads them (~25 advisories); modelreg does not."""
    sources = json.dumps(OUTSIDE + CLIMBING)
    out = run(mlflow_python, modelreg_server.url, tmp_path, SOURCES, args=[sources])
    refused = out["refused"]
    assert {s: code(refused[s]) for s in OUTSIDE} == dict.fromkeys(
        OUTSIDE, "INVALID_PARAMETER_VALUE"
    )
    for source in CLIMBING:
        assert code(refused[source]) in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"), (
            source,
            refused[source],
        )
    assert out["versions"] == []
    # modelreg's names are 1–128 of A-Z a-z 0-9 . _ - (docs/mlflow.md); MLflow takes any.
    assert code(out["bad_name"]) == "INVALID_PARAMETER_VALUE"


ONE_PRODUCTION = """
name = "compat-production"
run_id, info = log_model()
client.create_registered_model(name)
for _ in range(2):
    new_version(name, run_id, info)
client.transition_model_version_stage(name, "1", "Production")
# No archive_existing_versions: MLflow would leave version 1 in Production too.
moved = client.transition_model_version_stage(name, "2", "Production")
done({
    "moved": mv(moved),
    "stages": {v.version: v.current_stage for v in client.search_model_versions(f"name='{name}'")},
    "latest": [v.version for v in client.get_latest_versions(name, stages=["Production"])],
})
"""


def test_one_production_version_the_previous_is_archived(
    mlflow_python: Path, modelreg_server: ServerProcess, registry: modelreg.Registry, tmp_path: Path
) -> None:
    """MLflow would keep both in Production; modelreg's default rule archives the previous one."""
    out = run(mlflow_python, modelreg_server.url, tmp_path, ONE_PRODUCTION)
    assert out["moved"]["stage"] == "Production"
    assert out["stages"] == {"1": "Archived", "2": "Production"}
    assert out["latest"] == ["2"]
    stages = {v.version: v.stage for v in registry.list_versions("compat-production")}
    assert stages == {1: "archived", 2: "production"}


POLICY = """
run_id, info = log_model(accuracy=0.9)
out = {}
for name in ("compat-gated", "compat-approval"):
    version = new_version(name, run_id, info).version
    out[name] = {
        "version": version,
        "error": error_of(client.transition_model_version_stage, name, version, "Production"),
        "stage": client.get_model_version(name, version).current_stage,
    }
done(out)
"""


def test_transitions_go_through_promotion_policies(
    mlflow_python: Path, modelreg_server: ServerProcess, registry: modelreg.Registry, tmp_path: Path
) -> None:
    for name in ("compat-gated", "compat-approval"):
        registry.create_model(name)
    registry.set_policy_rule("compat-gated", "production", requires=["metrics.accuracy >= 0.95"])
    registry.set_policy_rule("compat-approval", "production", approvals=1)

    out = run(mlflow_python, modelreg_server.url, tmp_path, POLICY)

    gated = out["compat-gated"]
    assert gated["error"] is not None, "a version below the gate went to production"
    assert gated["error"]["rest"], gated
    # Each failed criterion, and the value the registry saw.
    assert "metrics.accuracy >= 0.95" in gated["error"]["message"], gated
    assert "not met: metrics.accuracy = 0.9" in gated["error"]["message"], gated
    assert gated["stage"] == "None"
    assert registry.get_version("compat-gated:1").metrics == {"accuracy": 0.9}

    waiting = out["compat-approval"]
    assert waiting["error"] is not None, "a version that needs an approval went to production"
    assert waiting["error"]["rest"], waiting
    match = re.search(r"modelreg approve (\d+)", waiting["error"]["message"])
    assert match, waiting["error"]
    pending = registry.promotions("compat-approval", state="pending")
    assert [p.id for p in pending] == [int(match[1])]
    assert waiting["stage"] == "None"


AUTH = """
name = "compat-auth"
token = os.environ.pop("TEST_TOKEN")
out = {}
os.environ["MLFLOW_TRACKING_TOKEN"] = token
out["bearer"] = client.create_registered_model(name).name
del os.environ["MLFLOW_TRACKING_TOKEN"]
os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = "alice", token
out["basic"] = client.get_registered_model(name).name
del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]
out["anonymous"] = error_of(client.get_registered_model, name)
os.environ["MLFLOW_TRACKING_TOKEN"] = "not-a-token"
out["wrong_token"] = error_of(client.get_registered_model, name)
done(out)
"""


def test_api_tokens_authenticate_the_mlflow_client(mlflow_python: Path, tmp_path: Path) -> None:
    home = tmp_path / "registry"
    home.mkdir()
    with modelreg.Registry(home) as local:
        local.create_user("alice", role="admin")
        token = local.create_token("alice")["token"]
    with ServerProcess(home) as server:
        out = run(mlflow_python, server.url, tmp_path / "client", AUTH, env={"TEST_TOKEN": token})
    assert out["bearer"] == "compat-auth"
    assert out["basic"] == "compat-auth"
    for key in ("anonymous", "wrong_token"):
        error = out[key]
        assert error is not None, f"{key}: the server answered without a valid token"
        assert "authenticat" in error["message"].lower(), (key, error)


# -- issue 19: what MLflow scripts hit in their first hour ----------------------------------

SEARCH_RUNS = """
exp_id = mlflow.set_experiment("compat-search-runs").experiment_id
RUNS = [("a", 0.95, "1.0", "Risk"), ("b", 0.8, "0.5", "risk"), ("c", 0.7, "2", "x")]
ids = {}
for name, acc, c, team in RUNS:
    with mlflow.start_run(run_name=name) as run:
        ids[name] = run.info.run_id
        mlflow.log_metric("acc", acc)
        mlflow.log_param("C", c)
        mlflow.set_tag("team", team)
        mlflow.set_tag("another key", "yes" if name == "a" else "no")


def names(runs):
    return [r.info.run_name for r in runs]


df = mlflow.search_runs(
    experiment_ids=[exp_id], filter_string="metrics.acc > 0.75", order_by=["metrics.acc DESC"]
)
out = {
    "frame": list(df["tags.mlflow.runName"]),
    "frame_columns": sorted(c for c in df.columns if c.startswith(("metrics.", "params."))),
    "frame_acc": list(df["metrics.acc"]),
    "all": sorted(mlflow.search_runs(experiment_ids=[exp_id])["tags.mlflow.runName"]),
    "params": names(client.search_runs([exp_id], "params.C = '0.5'")),
    "and": names(client.search_runs([exp_id], "params.C != '0.5' AND metrics.acc < 0.9")),
    "in": sorted(names(client.search_runs([exp_id], f"run_id IN ('{ids['a']}', '{ids['c']}')"))),
    "no_key": names(client.search_runs([exp_id], "params.missing IS NULL AND params.C = '2'")),
    "like": names(client.search_runs([exp_id], "tags.team LIKE 'r%'")),
    "ilike": sorted(names(client.search_runs([exp_id], "tags.team ILIKE 'r%'"))),
    "spaced_key": names(client.search_runs([exp_id], "tags.`another key` = 'yes'")),
    "attribute": names(client.search_runs([exp_id], "attributes.run_name = 'c'")),
    "status": len(client.search_runs([exp_id], "attributes.status = 'FINISHED'")),
}
first = client.search_runs([exp_id], max_results=2, order_by=["attributes.run_name ASC"])
second = client.search_runs(
    [exp_id], max_results=2, order_by=["attributes.run_name ASC"], page_token=first.token
)
out["pages"] = [names(first), names(second), second.token]
out["bad_filter"] = error_of(client.search_runs, [exp_id], "metrics.acc > 'high'")
out["too_many"] = error_of(client.search_runs, [exp_id], max_results=50001)
done(out)
"""


def test_search_runs_with_filters_order_and_pages(mlflow_python: Path, url: str, tmp_path: Path):
    """Issue 19, item 13: mlflow.search_runs (a pandas DataFrame) and MlflowClient.search_runs."""
    out = run(mlflow_python, url, tmp_path, SEARCH_RUNS)
    assert out["frame"] == ["a", "b"]
    assert out["frame_acc"] == [0.95, 0.8]
    assert out["frame_columns"] == ["metrics.acc", "params.C"]
    assert out["all"] == ["a", "b", "c"]
    assert out["params"] == ["b"]
    assert out["and"] == ["c"]
    assert out["in"] == ["a", "c"]
    assert out["no_key"] == ["c"]
    assert out["like"] == ["b"]  # LIKE keeps case, as in MLflow
    assert out["ilike"] == ["a", "b"]
    assert out["spaced_key"] == ["a"]
    assert out["attribute"] == ["c"]
    assert out["status"] == 3
    assert out["pages"] == [["a", "b"], ["c"], None]
    assert code(out["bad_filter"]) == "INVALID_PARAMETER_VALUE"
    assert code(out["too_many"]) == "INVALID_PARAMETER_VALUE"


LIKE_AND_EXISTS = """
for name in ("compat-likeA-rm", "compat-likeB-RM"):
    client.create_registered_model(name)
client.create_experiment("compat-exists-exp")


def found(text):
    return sorted(m.name for m in client.search_registered_models(filter_string=text))


done({
    "like": found("name LIKE 'compat-like%rm'"),
    "like_upper": found("name LIKE 'compat-like%RM'"),
    "ilike": found("name ILIKE 'compat-like%rm'"),
    "versions_like": [v.name for v in client.search_model_versions("name LIKE 'compat-like%rm'")],
    "model": error_of(client.create_registered_model, "compat-likeA-rm"),
    "rename": error_of(client.rename_registered_model, "compat-likeB-RM", "compat-likeA-rm"),
    "experiment": error_of(client.create_experiment, "compat-exists-exp"),
})
"""


def test_like_keeps_case_and_already_exists_speaks_mlflow(
    mlflow_python: Path, url: str, tmp_path: Path
) -> None:
    """Issue 19, item 14: LIKE is case-sensitive (ILIKE is not), and "already exists" errors
    carry MLflow's wording, which scripts match on, besides the code."""
    out = run(mlflow_python, url, tmp_path, LIKE_AND_EXISTS)
    assert out["like"] == ["compat-likeA-rm"]
    assert out["like_upper"] == ["compat-likeB-RM"]
    assert out["ilike"] == ["compat-likeA-rm", "compat-likeB-RM"]
    assert out["versions_like"] == []
    wording = {
        "model": "Registered Model (name=compat-likeA-rm) already exists.",
        "rename": "Registered Model (name=compat-likeA-rm) already exists.",
        "experiment": "Experiment(name=compat-exists-exp) already exists.",
    }
    for key, words in wording.items():
        assert code(out[key]) == "RESOURCE_ALREADY_EXISTS", (key, out[key])
        assert words in out[key]["message"], (key, out[key])


TAG_KEYS = """
name = "compat-tag-keys"
client.create_registered_model(name)
with mlflow.start_run() as run:
    mlflow.set_tag("another key", "run tags take any key")
done({
    "run_tag": client.get_run(run.info.run_id).data.tags.get("another key"),
    "model_tag": error_of(client.set_registered_model_tag, name, "another key", "v"),
    "tags_after": dict(client.get_registered_model(name).tags),
})
"""


def test_tag_keys_with_spaces_on_runs_and_on_registered_models(
    mlflow_python: Path, modelreg_server: ServerProcess, tmp_path: Path
) -> None:
    """Issue 19, item 14, as docs/mlflow.md's table says: run (and experiment and logged
    model) tags take any key, as in MLflow; a registered model's or version's tag key follows
    modelreg's key rule (searchable by ``tags.KEY``), so a space is refused, precisely."""
    out = run(mlflow_python, modelreg_server.url, tmp_path, TAG_KEYS)
    assert out["run_tag"] == "run tags take any key"
    assert code(out["model_tag"]) == "INVALID_PARAMETER_VALUE"
    assert "another key" in out["model_tag"]["message"]
    assert out["tags_after"] == {}

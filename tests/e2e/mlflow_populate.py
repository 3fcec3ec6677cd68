"""Fill an MLflow server's registry for tests/e2e/test_import_mlflow.py, with MLflow's own client.

Runs in MLflow's venv (bench/.mlflow-venv), never in modelreg's, with MLFLOW_TRACKING_URI set
(tests/mlflow_env.py ``run_mlflow_json``), and prints one JSON document: per model, each
version's run id, source, stage and artifact location.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings

import mlflow
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

warnings.simplefilter("ignore")  # stage transitions are deprecated in MLflow 3; still used

WORK = tempfile.mkdtemp(dir=os.getcwd())
client = MlflowClient()
mlflow.set_experiment("import-test")


def plain_version(name, files, *, metrics=None, params=None, **kwargs):
    """Plain files logged with log_artifacts, registered with create_model_version."""
    with mlflow.start_run() as run:
        for key, value in (metrics or {}).items():
            mlflow.log_metric(key, value)
        for key, value in (params or {}).items():
            mlflow.log_param(key, value)
        folder = tempfile.mkdtemp(dir=WORK)
        for rel, data in files.items():
            path = os.path.join(folder, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
        mlflow.log_artifacts(folder, artifact_path="bundle")
        source = f"{run.info.artifact_uri}/bundle"
    return client.create_model_version(name, source, run_id=run.info.run_id, **kwargs)


# fraud: an sklearn model (mlflow.sklearn.log_model + register_model), plain versions, a deleted
# version (a gap: 1, 2, 4), two Production versions, Staging, aliases, tags, descriptions.
client.create_registered_model("fraud", tags={"team": "risk"}, description="Fraud scorer")
X = np.array([[0.0], [1.0], [2.0], [3.0]])
y = np.array([0, 0, 1, 1])
with mlflow.start_run():
    mlflow.log_metric("accuracy", 0.91)
    mlflow.log_param("C", "1.0")
    info = mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model")
mlflow.register_model(info.model_uri, "fraud")
plain_version(
    "fraud",
    {"weights.bin": os.urandom(300_000), "sub/config.json": b'{"layers": 3}'},
    metrics={"accuracy": 0.93, "bad metric": 1.0},
    params={"lr": "0.01"},
    description="second",
    tags={"reviewed": "yes"},
)
plain_version("fraud", {"weights.bin": b"three"})
plain_version("fraud", {"weights.bin": os.urandom(1000)}, description="fourth", tags={"k": "v"})
client.delete_model_version("fraud", "3")
client.transition_model_version_stage("fraud", "1", "Staging")
client.transition_model_version_stage("fraud", "2", "Production")
client.transition_model_version_stage("fraud", "4", "Production", archive_existing_versions=False)
client.set_registered_model_alias("fraud", "champion", "4")
client.set_registered_model_alias("fraud", "challenger", "2")

# churn: two small versions, an alias, a version tag modelreg cannot keep.
client.create_registered_model("churn", description="Churn model")
plain_version("churn", {"m.txt": b"churn one"}, tags={"bad key": "x", "ok": "1"})
plain_version("churn", {"m.txt": b"churn two"})
client.set_registered_model_alias("churn", "prod", "2")

# remote: files outside the server's artifact store (MLflow accepts any source).
client.create_registered_model("remote")
client.create_model_version("remote", "s3://bucket/model")

# Names modelreg cannot take: one invalid, one that normalizes like another model's.
client.create_registered_model("bad name")
client.create_registered_model("ranker.a")
plain_version("ranker.a", {"r.bin": b"ranker"})
client.create_registered_model("ranker_a")

manifest = {}
for model in client.search_registered_models():
    versions = {}
    for v in client.search_model_versions(f"name='{model.name}'"):
        uri = client.get_model_version_download_uri(model.name, v.version)
        versions[v.version] = {
            "run_id": v.run_id,
            "source": v.source,
            "stage": v.current_stage,
            "artifact": uri.removeprefix("mlflow-artifacts:/")
            if uri.startswith("mlflow-artifacts:/")
            else None,
        }
    manifest[model.name] = {"versions": versions}
print(json.dumps(manifest))

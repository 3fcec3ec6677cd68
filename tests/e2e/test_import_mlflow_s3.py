"""Versions whose files MLflow keeps in S3: copied in only from sources an admin allowed.

A real ``mlflow server`` (bench/.mlflow-venv, with boto3) whose clients write their artifacts
straight to the moto S3 server (``--default-artifact-root s3://…``); ``modelreg import mlflow``
and the MLflow door of a real ``modelreg server`` then copy them, with the registry's own
credentials (the AWS_* variables boto3 reads), by content.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

import modelreg
from mlflow_env import MlflowServer, run_mlflow_json
from modelreg.cli.main import main
from s3_endpoint import MotoServer
from server_process import ServerProcess

POPULATE = """
import json, os
import mlflow
from mlflow import MlflowClient

mlflow.set_experiment("s3-team")
os.makedirs("model/sub", exist_ok=True)
with open("model/weights.bin", "wb") as fh:
    fh.write(bytes(range(256)) * 1200)
with open("model/sub/config.json", "w") as fh:
    fh.write('{"layers": 3}')
with mlflow.start_run() as run:
    mlflow.log_artifacts("model", artifact_path="model")
    mlflow.log_metric("auc", 0.91)
    uri = mlflow.get_artifact_uri("model")
client = MlflowClient()
client.create_registered_model("fraud")
client.create_model_version("fraud", uri, run_id=run.info.run_id)
print(json.dumps({"uri": uri, "run_id": run.info.run_id}))
"""


def cli(*args: str) -> tuple[int, str, str]:
    """``modelreg ARGS`` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def import_json(registry: str, url: str, *extra: str) -> tuple[int, Any, str]:
    code, out, err = cli(
        "--registry", registry, "import", "mlflow", "--from", url, "--json", *extra
    )
    return code, json.loads(out) if out.strip() else None, err


class S3Mlflow:
    def __init__(self, url: str, bucket: str, moto: MotoServer, made: dict[str, Any]) -> None:
        self.url, self.bucket, self.moto = url, bucket, moto
        self.uri: str = made["uri"]

    def objects(self) -> dict[str, str]:
        """SHA-256 of each object under the version's artifact URI, read from moto."""
        client = boto3.session.Session().client("s3", endpoint_url=self.moto.url)
        prefix = self.uri.removeprefix(f"s3://{self.bucket}/") + "/"
        listed = client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)["Contents"]
        return {
            o["Key"][len(prefix) :]: hashlib.sha256(
                client.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
            ).hexdigest()
            for o in listed
        }


@pytest.fixture(scope="module")
def aws(moto_server: MotoServer) -> Iterator[MotoServer]:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in moto_server.env().items():
            patch.setenv(key, value)
        yield moto_server


@pytest.fixture(scope="module")
def mlflow_s3(
    aws: MotoServer, mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Mlflow]:
    home = tmp_path_factory.mktemp("mlflow-s3")
    bucket = aws.new_bucket()
    env = {"MLFLOW_S3_ENDPOINT_URL": aws.url}
    root = f"s3://{bucket}/mlflow"
    with MlflowServer(mlflow_python, home / "server", artifact_root=root, env=env) as server:
        made = run_mlflow_json(
            mlflow_python, POPULATE, tracking_uri=server.url, workdir=home / "client", env=env
        )
        yield S3Mlflow(server.url, bucket, aws, made)


def _version(summary: dict[str, Any]) -> dict[str, Any]:
    (model,) = summary["models"]
    (version,) = model["versions"]
    return dict(version)


@pytest.mark.slow
@pytest.mark.xdist_group("mlflow-s3")
class TestImport:
    def test_a_source_not_allowed_is_skipped_and_nothing_is_stored(self, mlflow_s3, tmp_path):
        home = str(tmp_path / "reg")
        code, summary, _ = import_json(home, mlflow_s3.url)
        assert code == 0  # skipped by design, as any version outside MLflow's own store
        version = _version(summary)
        assert version["status"] == "skipped"
        assert mlflow_s3.uri in version["reason"]
        assert "modelreg sources allow" in version["reason"]
        with modelreg.Registry(home) as reg, pytest.raises(modelreg.NotFound):
            reg.get_version("fraud:1")

    def test_an_allowed_source_is_copied_by_content(self, mlflow_s3, tmp_path):
        home = str(tmp_path / "reg")
        allowed = f"s3://{mlflow_s3.bucket}/mlflow"
        code, summary, err = import_json(home, mlflow_s3.url, "--allow-source", allowed)
        assert code == 0, (summary, err)
        version = _version(summary)
        assert version["status"] == "imported"
        assert version["files"] == 2
        with modelreg.Registry(home) as reg:
            got = reg.get_version("fraud:1")
        assert {f.path: f.sha256 for f in got.files} == mlflow_s3.objects()
        assert got.lineage["source"] == mlflow_s3.uri
        assert got.metrics["auc"] == pytest.approx(0.91)
        # Again: checked against the bucket, nothing copied twice.
        code, summary, _ = import_json(home, mlflow_s3.url)
        assert code == 0
        assert _version(summary)["status"] == "present"
        code, out, _ = cli("--registry", home, "sources", "list", "--json")
        assert [s["uri"] for s in json.loads(out)["items"]] == [allowed]
        code, out, _ = cli("--registry", home, "audit", "--json")
        assert "registry:source:allow" in out

    def test_a_prefix_allows_only_on_a_path_boundary(self, mlflow_s3, tmp_path):
        home = str(tmp_path / "reg")
        # s3://BUCKET/mlf is a string prefix of s3://BUCKET/mlflow/…, not a path prefix.
        narrow = f"s3://{mlflow_s3.bucket}/mlf"
        code, summary, _ = import_json(home, mlflow_s3.url, "--allow-source", narrow)
        assert code == 0
        assert _version(summary)["status"] == "skipped"

    def test_the_door_and_an_import_over_http_copy_an_allowed_source(self, mlflow_s3, tmp_path):
        home = tmp_path / "reg"
        with ServerProcess(home) as proc:
            door = f"{proc.url}/api/2.0/mlflow"
            with httpx.Client(timeout=60) as http:
                made = http.post(f"{door}/registered-models/create", json={"name": "door"})
                assert made.status_code == 200, made.text
                body = {"name": "door", "source": mlflow_s3.uri}
                refused = http.post(f"{door}/model-versions/create", json=body)
                assert refused.status_code == 400, refused.text
                assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
                assert "not under an allowed source" in refused.json()["message"]
                allowed = f"s3://{mlflow_s3.bucket}/mlflow"
                code, _, err = cli("--registry", proc.url, "sources", "allow", allowed)
                assert code == 0, err
                answer = http.post(f"{door}/model-versions/create", json=body)
                assert answer.status_code == 200, answer.text
                outside = {"name": "door", "source": f"s3://{mlflow_s3.bucket}/other/x"}
                assert http.post(f"{door}/model-versions/create", json=outside).status_code == 400
            # The import against a server: the server copies, the client only names the URI.
            code, summary, err = import_json(proc.url, mlflow_s3.url)
            assert code == 0, (summary, err)
            assert _version(summary)["status"] == "imported"
            with modelreg.Registry(proc.url) as reg:
                got = reg.get_version("door:1")
                imported = reg.get_version("fraud:1")
        assert {f.path: f.sha256 for f in got.files} == mlflow_s3.objects()
        assert {f.path: f.sha256 for f in imported.files} == mlflow_s3.objects()
        assert imported.lineage["imported_from"].startswith(mlflow_s3.url)


class TestAllowlist:
    """The setting itself, on an embedded registry (no S3 needed)."""

    @pytest.mark.parametrize(
        "uri",
        [
            "http://bucket/x",
            "s3://bucket/../other",
            "s3://bucket/a//b",
            "s3://Bucket/x",
            "s3://bucket/x?versionId=1",
            "s3://bucket/x%2F..",
            "s3://",
        ],
    )
    def test_a_bad_uri_is_refused_and_changes_nothing(self, tmp_path, uri):
        home = str(tmp_path / "reg")
        code, _, err = cli("--registry", home, "sources", "allow", uri)
        assert code == 1, err  # InvalidInput
        assert "source" in err
        code, out, _ = cli("--registry", home, "sources", "list", "--json")
        assert json.loads(out)["items"] == []

    def test_allow_list_remove(self, tmp_path):
        home = str(tmp_path / "reg")
        assert cli("--registry", home, "sources", "allow", "s3://models-bucket/prod/")[0] == 0
        code, _, err = cli("--registry", home, "sources", "allow", "s3://models-bucket/prod")
        assert code == 6  # AlreadyExists
        assert "already" in err
        code, out, _ = cli("--registry", home, "sources", "list", "--json")
        assert [s["uri"] for s in json.loads(out)["items"]] == ["s3://models-bucket/prod"]
        assert cli("--registry", home, "sources", "remove", "s3://models-bucket/prod")[0] == 0
        code, _, err = cli("--registry", home, "sources", "remove", "s3://models-bucket/prod")
        assert code == 2  # NotFound
        assert "not an allowed source" in err
        code, out, _ = cli("--registry", home, "audit", "--json")
        assert "registry:source:allow" in out
        assert "registry:source:remove" in out

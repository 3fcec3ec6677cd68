"""`modelreg server --artifacts s3://…` as real processes, on moto's S3 server over loopback.

One server on SQLite: every door (REST, the MLflow artifacts route) stores its bytes in the
bucket and reads them back verified. Two and three servers on one PostgreSQL and one bucket:
20 clients spread over them get contiguous version numbers, a promotion on one is what the
next resolves at once, and blobs uploaded through one download through another. And a server
whose bucket goes away answers ``storage_failure`` and recovers by itself.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import modelreg
from modelreg.errors import StorageFailure
from modelreg.storage.s3 import S3BlobStore, parse_s3_url
from registry_folders import fresh_pg_database
from s3_endpoint import MotoServer
from server_process import ServerProcess, free_port, run_cli

pytestmark = pytest.mark.slow

CLIENTS = 20


def bucket_digests(s3_artifacts: str) -> set[str]:
    bucket, prefix = parse_s3_url(s3_artifacts)
    return {digest for digest, _ in S3BlobStore(bucket, prefix).iter_blobs()}


def test_one_server_stores_every_door_in_the_bucket(
    tmp_path: Path, sqlite_db_url: str, s3_artifacts: str, files: Path
) -> None:
    home = tmp_path / "registry"
    home.mkdir()
    shutil.copyfile(sqlite_db_url.removeprefix("sqlite:///"), home / "registry.db")
    big = files / "weights.bin"
    big.write_bytes(os.urandom(17 * 1024 * 1024 + 3))  # above one part: a multipart upload
    with ServerProcess(home, "--artifacts", s3_artifacts) as server:
        with modelreg.Registry(server.url) as reg:
            version = reg.register("fraud", files, capture=False)
            assert {f.sha256 for f in version.files} == bucket_digests(s3_artifacts)
            out = reg.download("fraud:1", tmp_path / "out")
            assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in out) == sorted(
                f.path for f in version.files
            )
            assert (tmp_path / "out" / "weights.bin").read_bytes() == big.read_bytes()

        with httpx.Client(base_url=server.url) as http:
            run = http.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0"})
            root = run.json()["run"]["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
            art = f"/api/2.0/mlflow-artifacts/artifacts/{root}/model/model.bin"
            data = os.urandom(100_000)
            assert http.put(art, content=data).status_code == 200
            assert hashlib.sha256(data).hexdigest() in bucket_digests(s3_artifacts)
            answer = http.get(art)
            assert answer.status_code == 200
            assert answer.content == data
    # The folder's own settings never named the bucket: nothing was written beside the db.
    assert not (home / "blobs" / "sha256").exists()


@pytest.mark.parametrize("count", [2, 3])
def test_servers_on_one_postgresql_and_one_bucket(
    tmp_path: Path, pg_server, s3_artifacts: str, count: int
) -> None:
    home = tmp_path / "registry"
    home.mkdir()
    url = fresh_pg_database(pg_server)
    (home / "modelreg.toml").write_text(f'db = "{url}"\nartifacts = "{s3_artifacts}"\n')
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shared = inputs / "shared.bin"
    shared.write_bytes(os.urandom(300_000))
    own = []
    for i in range(CLIENTS):
        path = inputs / f"own-{i}.bin"
        path.write_bytes(os.urandom(1000 + i))
        own.append(path)

    servers = [ServerProcess(home, log=tmp_path / f"server-{k}.log") for k in range(count)]
    try:
        for server in servers:
            server.start()

        def register(i: int) -> tuple[int, int]:
            """(version number, the server it went through) for client ``i``."""
            with modelreg.Registry(servers[i % count].url) as reg:
                version = reg.register("fraud", [shared, own[i]], capture=False)
                return version.version, i % count

        with ThreadPoolExecutor(CLIENTS) as pool:
            made = dict(pool.map(register, range(CLIENTS)))
        assert sorted(made) == list(range(1, CLIENTS + 1))

        regs = [modelreg.Registry(server.url) for server in servers]
        try:
            # A promotion through one server is what the next one resolves, at once.
            for step, number in enumerate((3, 7, 12, 13, 19)):
                regs[step % count].promote("fraud", number, "staging", reason=f"try {number}")
                seen = regs[(step + 1) % count].get_version("fraud/staging")
                assert seen.version == number
            # Every version downloads, verified, through a server other than its uploader's.
            for number, through in made.items():
                reg = regs[(through + 1) % count]
                target = tmp_path / f"out-{number}"
                reg.download(f"fraud:{number}", target)
                for file in reg.get_version(f"fraud:{number}").files:
                    assert (target / file.path).read_bytes() == (inputs / file.path).read_bytes()
            assert regs[-1].verify_audit()["ok"] is True
        finally:
            for reg in regs:
                reg.close()
        assert len(bucket_digests(s3_artifacts)) == CLIENTS + 1  # shared stored once
    finally:
        for server in servers:
            server.stop()
    result = run_cli("--registry", str(home), "fsck", "--json")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_server_outlives_an_outage_of_its_bucket(
    tmp_path: Path, sqlite_db_url: str, files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoint down: 503 storage_failure, nothing made; back up: no restart needed."""
    moto = MotoServer(tmp_path / "moto.log")
    moto.port = free_port()
    for key, value in moto.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    home = tmp_path / "registry"
    home.mkdir()
    shutil.copyfile(sqlite_db_url.removeprefix("sqlite:///"), home / "registry.db")
    # The store is down when the server starts: it starts all the same.
    server = ServerProcess(
        home, "--artifacts", "s3://outage-bucket/registry", ready_path="/healthz"
    )
    with server:
        ready = httpx.get(server.url + "/readyz")
        assert (ready.status_code, ready.json()["problems"]) == (503, ["artifacts: StorageFailure"])
        with modelreg.Registry(server.url) as reg:
            with pytest.raises(StorageFailure, match="s3://outage-bucket/registry"):
                reg.register("fraud", files, capture=False)
            assert reg.list_models().items == []
            moto.start()
            try:
                moto.new_bucket("outage-bucket")
                assert httpx.get(server.url + "/readyz").status_code == 200
                assert reg.register("fraud", files, capture=False).version == 1
                moto.stop()
                with pytest.raises(StorageFailure):
                    reg.download("fraud:1", tmp_path / "lost")
                with pytest.raises(StorageFailure):
                    reg.register("fraud", [files / "model.pkl"], capture=False)
                assert reg.get_model("fraud").latest_version == 1
            finally:
                moto.stop()

"""A damaged object in the bucket is never served whole (as tests/api/test_damaged_blobs.py
proves for a folder): each download route streams it hashed and cuts the response off, the
object is set aside under PREFIX/damaged/, and registering the right bytes again repairs it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import modelreg
from modelreg.storage.s3 import S3BlobStore, parse_s3_url
from server_process import ThreadedServer

DATA = os.urandom(3 * 1024 * 1024 + 11)
DIGEST = hashlib.sha256(DATA).hexdigest()
ROUTES = {
    "files": "/api/v1/models/m/versions/1/files/model.bin",
    "blob": f"/api/v1/blobs/sha256:{DIGEST}",
    "mlflow": "/api/2.0/mlflow-artifacts/artifacts/_registry/m/1/model.bin",
}
BAD = {
    "flip": DATA[:-3] + bytes([DATA[-3] ^ 0x40]) + DATA[-2:],
    "truncate": DATA[:-1000],
}


@pytest.fixture
def store(s3_artifacts: str) -> S3BlobStore:
    return S3BlobStore(*parse_s3_url(s3_artifacts))


@pytest.fixture
def server(tmp_path: Path, s3_artifacts: str) -> Iterator[ThreadedServer]:
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    home = tmp_path / "registry"
    home.mkdir()
    (home / "modelreg.toml").write_text(f'artifacts = "{s3_artifacts}"\n')
    with ThreadedServer(create_app(Settings.for_home(home))) as running:
        (tmp_path / "model.bin").write_bytes(DATA)
        with modelreg.Registry(running.url) as reg:
            reg.register("m", tmp_path / "model.bin", capture=False)
        yield running


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_damaged_object_is_cut_off_set_aside_and_repaired(server, store, tmp_path, route, bad):
    store._client.put_object(Bucket=store.bucket, Key=store.key(DIGEST), Body=BAD[bad])
    with httpx.Client(base_url=server.url, timeout=60) as http:
        with pytest.raises(httpx.TransportError):
            http.get(ROUTES[route])
        assert not store.exists(DIGEST)
        assert store.quarantined(DIGEST)
        assert http.get(ROUTES[route]).status_code == 404
        with modelreg.Registry(server.url) as reg:
            reg.register("m", tmp_path / "model.bin", capture=False)
        repaired = http.get(ROUTES[route])
        assert repaired.status_code == 200
        assert repaired.content == DATA

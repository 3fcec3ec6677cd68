"""A damaged blob is never served whole (issue 25, fault runs): every download route hashes as
it sends and cuts the response off on a mismatch, sets the bad copy aside, and the right bytes
uploaded again repair it. SQLite only: this is about HTTP and the blob store."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import modelreg
from modelreg.errors import IntegrityFailure
from modelreg.storage.base import blob_key
from server_process import ThreadedServer

DATA = os.urandom(3 * 1024 * 1024 + 11)
DIGEST = hashlib.sha256(DATA).hexdigest()
ROUTES = {
    "files": "/api/v1/models/m/versions/1/files/model.bin",
    "blob": f"/api/v1/blobs/sha256:{DIGEST}",
    "mlflow": "/api/2.0/mlflow-artifacts/artifacts/_registry/m/1/model.bin",
}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "registry"
    folder.mkdir()
    return folder


@pytest.fixture
def server(home: Path, tmp_path: Path) -> Iterator[ThreadedServer]:
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    with ThreadedServer(create_app(Settings.for_home(home))) as running:
        source = tmp_path / "model.bin"
        source.write_bytes(DATA)
        reg = modelreg.Registry(running.url)
        reg.register("m", source, capture=False)
        reg.close()
        yield running


def blob(home: Path) -> Path:
    return home / "blobs" / blob_key(DIGEST)


def damage(home: Path, data: bytes) -> None:
    os.chmod(blob(home), 0o644)
    blob(home).write_bytes(data)


def flipped() -> bytes:
    at = len(DATA) - 3  # in the last chunk: everything before it could already be sent
    return DATA[:at] + bytes([DATA[at] ^ 0x40]) + DATA[at + 1 :]


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_flipped_byte_cuts_the_download_off_and_sets_the_copy_aside(server, home, route):
    damage(home, flipped())
    with httpx.Client(base_url=server.url, timeout=60) as http:
        # Never a complete 200: if the status came, the body must not complete.
        with pytest.raises(httpx.TransportError):
            http.get(ROUTES[route])
        assert not blob(home).exists()
        assert [p.read_bytes() for p in (home / "blobs" / "damaged").iterdir()] == [flipped()]
        again = http.get(ROUTES[route])
        assert again.status_code == 404
        if route != "mlflow":
            assert again.json()["error"]["code"] == "blob_not_found"
            assert "damaged" in again.json()["error"]["message"]


def test_a_truncated_blob_is_refused_before_any_header(server, home):
    damage(home, DATA[:-100])
    with httpx.Client(base_url=server.url, timeout=60) as http:
        response = http.get(ROUTES["files"])
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "integrity_failure"
    assert not blob(home).exists()


def test_a_truncated_blob_on_the_blob_route_is_cut_off(server, home):
    damage(home, DATA[:-100])
    with httpx.Client(base_url=server.url, timeout=60) as http, pytest.raises(httpx.TransportError):
        http.get(ROUTES["blob"])


@pytest.mark.parametrize("bad", [flipped(), DATA[:-100]], ids=["flip", "truncate"])
def test_uploading_the_right_bytes_repairs_the_stored_copy(server, home, bad):
    damage(home, bad)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        put = http.put(
            ROUTES["blob"], content=DATA, headers={"content-type": "application/octet-stream"}
        )
        assert put.status_code == 200, put.text
        assert put.json()["created"] is False
        assert blob(home).read_bytes() == DATA
        assert http.get(ROUTES["files"]).content == DATA


def test_registering_again_repairs_a_truncated_copy(server, home, tmp_path):
    damage(home, DATA[:-100])
    source = tmp_path / "model.bin"
    reg = modelreg.Registry(server.url)
    assert reg.register("m", source, capture=False).version == 2
    reg.close()
    assert blob(home).read_bytes() == DATA
    assert list((home / "blobs" / "damaged").iterdir())  # the bad copy is kept


def test_a_good_blob_downloads_whole_on_every_route(server):
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for route in ROUTES.values():
            response = http.get(route)
            assert response.status_code == 200
            assert response.content == DATA
        ranged = http.get(ROUTES["files"], headers={"range": "bytes=0-9"})
        assert ranged.status_code == 206
        assert ranged.content == DATA[:10]


def test_the_python_client_says_the_stored_copy_is_damaged(server, home, tmp_path):
    damage(home, flipped())
    with modelreg.Registry(server.url) as reg, pytest.raises(IntegrityFailure, match="damaged"):
        reg.download("m:1", tmp_path / "out")
    assert not (tmp_path / "out" / "model.bin").exists()

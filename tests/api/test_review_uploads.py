"""Review of the read-ahead upload (routes/blobs.py) against a real server on loopback.

A disk that fails while the body is still being read ahead, and uploads of one digest at
once: nothing partial is kept, no request hangs, and the server goes on working.
"""

from __future__ import annotations

import errno
import hashlib
import os
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg.storage.local as local_store
from server_process import ThreadedServer, unlogged_server_errors

API = "/api/v1"
MiB = 1024 * 1024


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "registry"
    folder.mkdir()
    return folder


@pytest.fixture
def server(home: Path) -> Iterator[ThreadedServer]:
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    with ThreadedServer(create_app(Settings.for_home(home))) as running:
        yield running


def _stored(home: Path) -> list[Path]:
    blobs = home / "blobs" / "sha256"
    return [p for p in blobs.rglob("*") if p.is_file()] if blobs.is_dir() else []


def _temporary(home: Path) -> list[Path]:
    tmp = home / "blobs" / "tmp"
    return list(tmp.iterdir()) if tmp.is_dir() else []


class _FullDisk:
    """A file whose writes fail with ENOSPC once ``room`` bytes were written."""

    def __init__(self, file: Any, room: int) -> None:
        self._file = file
        self._room = room

    def write(self, data: bytes) -> int:
        self._room -= len(data)
        if self._room < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written: int = self._file.write(data)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.__exit__(*exc)


def test_a_disk_that_fills_mid_upload_stores_nothing_and_hangs_nothing(
    server: ThreadedServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store fails while the event loop is still reading the body ahead of it: the pump
    # must be stopped, the request answered, the worker thread freed and the temp file gone.
    room = 3 * MiB

    def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        file = os.fdopen(fd, mode, *args, **kwargs)
        return _FullDisk(file, room) if "w" in mode else file

    monkeypatch.setattr(local_store, "os", types.SimpleNamespace(**{**vars(os), "fdopen": fdopen}))
    data = os.urandom(24 * MiB)
    url = f"{server.url}{API}/blobs/sha256:{_sha(data)}"

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(data), 256 * 1024):
            yield data[i : i + 256 * 1024]

    with unlogged_server_errors():
        for _ in range(3):  # more than once: nothing is left stuck by the one before
            try:
                response = httpx.put(url, content=pieces(), timeout=60)
            except httpx.HTTPError:  # the answer may come while the body is still going
                pass
            else:
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "storage_failure"
    assert _temporary(home) == []
    assert _stored(home) == []
    monkeypatch.undo()
    small = os.urandom(MiB)
    ok = httpx.put(f"{server.url}{API}/blobs/sha256:{_sha(small)}", content=small, timeout=60)
    assert ok.status_code == 200, ok.text


def test_concurrent_uploads_of_one_digest_store_it_once(server: ThreadedServer, home: Path) -> None:
    data = os.urandom(12 * MiB + 7)
    url = f"{server.url}{API}/blobs/sha256:{_sha(data)}"

    def upload(_: int) -> dict[str, Any]:
        response = httpx.put(url, content=data, timeout=120)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(upload, range(6)))
    assert {(a["sha256"], a["size"]) for a in answers} == {(_sha(data), len(data))}
    assert any(a["created"] for a in answers)
    assert [p.read_bytes() == data for p in _stored(home)] == [True]
    assert _temporary(home) == []
    assert httpx.get(url, timeout=60).content == data

"""Large blobs over real HTTP (issue 6): the read-ahead upload and the MiB-chunk download.

Many megabytes, so that an upload spans several read-ahead batches and writeback ranges, and a
download several send chunks. SQLite only: this is about HTTP and the blob store.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.requests import ClientDisconnect

import modelreg
from modelreg.api.uploads import _Body
from modelreg.errors import BodyTimeout, InvalidInput
from modelreg.storage.base import BlobInfo
from modelreg.storage.memory import MemoryBlobStore
from server_process import ThreadedServer, unlogged_server_errors

API = "/api/v1"
MiB = 1024 * 1024
LIMIT = 3 * MiB


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _serve(home: Path, **settings: int) -> ThreadedServer:
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    config = Settings.for_home(home).model_copy(update=settings)
    return ThreadedServer(create_app(config))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "registry"
    folder.mkdir()
    return folder


@pytest.fixture
def server(home: Path) -> Iterator[ThreadedServer]:
    with _serve(home) as running:
        yield running


@pytest.fixture
def limited(home: Path) -> Iterator[ThreadedServer]:
    """The same registry, refusing uploads over ``LIMIT`` bytes."""
    with _serve(home, max_upload_bytes=LIMIT) as running:
        yield running


@pytest.fixture(scope="module")
def data() -> bytes:
    return os.urandom(20 * MiB + 12345)


def _pieces(data: bytes, size: int = 300_000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _stored(home: Path) -> list[Path]:
    blobs = home / "blobs" / "sha256"
    return [p for p in blobs.rglob("*") if p.is_file()] if blobs.is_dir() else []


def _temporary(home: Path) -> list[Path]:
    tmp = home / "blobs" / "tmp"
    return list(tmp.iterdir()) if tmp.is_dir() else []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_large_upload_round_trips(
    server: ThreadedServer, home: Path, data: bytes, chunked: bool
) -> None:
    url = f"{server.url}{API}/blobs/sha256:{_sha(data)}"
    response = httpx.put(url, content=_pieces(data) if chunked else data, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json() == {"sha256": _sha(data), "size": len(data), "created": True}
    assert httpx.get(url, timeout=60).content == data
    assert [p.read_bytes() == data for p in _stored(home)] == [True]
    assert _temporary(home) == []


def test_a_large_upload_with_the_wrong_digest_stores_nothing(
    server: ThreadedServer, home: Path, data: bytes
) -> None:
    claimed = _sha(b"something else")
    response = httpx.put(f"{server.url}{API}/blobs/sha256:{claimed}", content=data, timeout=60)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "digest_mismatch"
    assert _stored(home) == []
    assert _temporary(home) == []


def test_a_chunked_upload_is_cut_off_at_the_limit(
    limited: ThreadedServer, home: Path, data: bytes
) -> None:
    sent = 0

    def counted() -> Iterator[bytes]:
        nonlocal sent
        for piece in _pieces(data):
            sent += len(piece)
            yield piece

    url = f"{limited.url}{API}/blobs/sha256:{_sha(data)}"
    try:
        response = httpx.put(url, content=counted(), timeout=60)
    except httpx.HTTPError:  # the server may answer and close while the body is still going
        pass
    else:
        assert response.status_code == 400
        assert "limit" in response.json()["error"]["message"]
    assert _stored(home) == []
    assert _temporary(home) == []
    fits = data[:LIMIT]
    ok = httpx.put(f"{limited.url}{API}/blobs/sha256:{_sha(fits)}", content=fits, timeout=60)
    assert ok.json() == {"sha256": _sha(fits), "size": LIMIT, "created": True}


@pytest.mark.usefixtures("_quiet")
def test_a_client_that_goes_away_mid_upload_leaves_nothing(
    server: ThreadedServer, home: Path, data: bytes
) -> None:
    digest = _sha(data)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        head = (
            f"PUT {API}/blobs/sha256:{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        sock.sendall(head.encode() + data[: 5 * MiB])
        deadline = time.monotonic() + 30
        while not _temporary(home) and time.monotonic() < deadline:
            time.sleep(0.01)  # until the upload is under way
    deadline = time.monotonic() + 30
    while _temporary(home) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _temporary(home) == []
    assert _stored(home) == []
    assert httpx.head(f"{server.url}{API}/blobs/sha256:{digest}").status_code == 404


@pytest.fixture
def _quiet() -> Iterator[None]:
    with unlogged_server_errors():
        yield


def test_a_range_across_send_chunks(server: ThreadedServer, data: bytes) -> None:
    url = f"{server.url}{API}/blobs/sha256:{_sha(data)}"
    assert httpx.put(url, content=data, timeout=60).status_code == 200
    start, end = MiB - 10, 3 * MiB + 10
    response = httpx.get(url, headers={"range": f"bytes={start}-{end}"}, timeout=60)
    assert response.status_code == 206
    assert response.content == data[start : end + 1]


def test_a_registry_download_of_a_large_file_is_verified(
    server: ThreadedServer, data: bytes, tmp_path: Path
) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    with modelreg.Registry(server.url) as reg:
        version = reg.register("big", source, capture=False)
        assert version.files[0].sha256 == _sha(data)
        (path,) = reg.download("big:1", tmp_path / "out")
    assert path.read_bytes() == data


# -- the body on its own: read on an event loop, written by a worker thread a batch at a time --


def _through_body(
    pieces: list[bytes] | AsyncIterator[bytes], *, limit: int, idle: float = 60
) -> tuple[object, MemoryBlobStore]:
    """What ``_Body.store`` returns (or raises) for ``pieces``, and the store it wrote to."""

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    store = MemoryBlobStore()

    async def main() -> object:
        chunks = body() if isinstance(pieces, list) else pieces
        try:
            return await _Body(limit, idle).store(chunks, store.writer(), anyio.CapacityLimiter(1))
        except Exception as exc:
            return exc

    return anyio.run(main), store


def test_the_body_is_stored_whole_across_batches(data: bytes) -> None:
    pieces = [data[: 3 * MiB], b"", *_pieces(data[3 * MiB :])]
    got, store = _through_body(pieces, limit=len(data))
    assert got == BlobInfo(_sha(data), len(data), created=True)
    assert store.open(_sha(data)).read() == data


def test_the_body_raises_the_size_limit_and_stores_nothing(data: bytes) -> None:
    got, store = _through_body(list(_pieces(data[: 4 * MiB])), limit=2 * MiB)
    assert isinstance(got, InvalidInput)
    assert "limit" in str(got)
    assert list(store.iter_blobs()) == []


def test_a_body_cut_off_is_not_taken_for_the_end_of_the_body() -> None:
    # Were it taken for the end, a store without an expected digest would keep a cut-off blob.
    async def cut() -> AsyncIterator[bytes]:
        for _ in range(3000):
            yield b"x" * 1000
        raise ClientDisconnect

    got, store = _through_body(cut(), limit=2**40)
    assert isinstance(got, ClientDisconnect)
    assert list(store.iter_blobs()) == []


def test_a_body_that_stops_arriving_times_out_and_stores_nothing() -> None:
    async def stalled() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        await anyio.sleep(3600)

    got, store = _through_body(stalled(), limit=2**40, idle=0.2)
    assert isinstance(got, BodyTimeout)
    assert list(store.iter_blobs()) == []

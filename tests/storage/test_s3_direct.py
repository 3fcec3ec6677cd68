"""Direct transfers on moto's S3 server: the client moves bytes to and from the bucket itself.

Real HTTP throughout: a modelreg server on loopback, moto's server process as the bucket, and
the client's own part uploads to presigned URLs. What crosses the wire is counted in moto's
request log (each request one line naming its path and query).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

import modelreg
from modelreg.config import Settings
from modelreg.errors import IntegrityFailure, InvalidInput, Unavailable
from modelreg.storage.s3 import S3BlobStore, parse_s3_url
from s3_endpoint import MotoServer
from server_process import ThreadedServer, free_port
from two_teams import two_teams

API = "/api/v1"
JSON = {"content-type": "application/json"}  # what the client sends with a bodiless POST
PART = 16 * 1024 * 1024
SIZE = PART + 1234  # two parts, the last short


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def home(tmp_path: Path, s3_artifacts: str) -> Path:
    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / "modelreg.toml").write_text(f'artifacts = "{s3_artifacts}"\n')
    return folder


@pytest.fixture
def server(home: Path) -> Iterator[ThreadedServer]:
    from modelreg.api.app import create_app

    with ThreadedServer(create_app(Settings.for_home(home))) as running:
        yield running


@pytest.fixture
def big(tmp_path: Path) -> Path:
    path = tmp_path / "inputs" / "weights.bin"
    path.parent.mkdir()
    path.write_bytes(os.urandom(SIZE))
    return path


def store_of(s3_artifacts: str) -> S3BlobStore:
    bucket, prefix = parse_s3_url(s3_artifacts)
    return S3BlobStore(bucket, prefix)


def moto_requests(moto: MotoServer, bucket: str, method: str, marker: str) -> list[str]:
    """The request lines moto logged for ``bucket`` with ``method`` and ``marker`` in them."""
    # werkzeug colours the lines of some statuses (206 among them): drop the escapes.
    text = re.sub(r"\x1b\[[0-9;]*m", "", moto.log.read_text(errors="replace"))
    lines = text.splitlines()
    return [
        line
        for line in lines
        if f'"{method} /{bucket}/' in line and marker in line and "X-Amz-Signature=" in line
    ]


def part_puts(moto: MotoServer, bucket: str, number: int) -> int:
    return len(moto_requests(moto, bucket, "PUT", f"partNumber={number}&"))


def test_upload_and_download_go_straight_to_the_bucket(
    server: ThreadedServer,
    big: Path,
    tmp_path: Path,
    s3_artifacts: str,
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELREG_TRANSFER", "direct")
    bucket = parse_s3_url(s3_artifacts)[0]
    with modelreg.Registry(server.url) as reg:
        version = reg.register("fraud", big, capture=False)
        assert [part_puts(moto_server, bucket, n) for n in (1, 2)] == [1, 1]
        assert store_of(s3_artifacts).exists(version.files[0].sha256)
        reg.download("fraud:1", tmp_path / "out")
    assert (tmp_path / "out" / "weights.bin").read_bytes() == big.read_bytes()
    gets = moto_requests(moto_server, bucket, "GET", f"/sha256/{sha(big.read_bytes())[:2]}/")
    assert len(gets) == 1  # the bytes came from a presigned URL, not through the server
    # Nothing is left of the upload: no temporary object, no unfinished multipart upload.
    store = store_of(s3_artifacts)
    assert list(store._list(store._key("tmp/"))) == []
    uploads = store._client.list_multipart_uploads(Bucket=store.bucket)
    assert uploads.get("Uploads", []) == []


def _drop_mid_part(url: str, data: bytes) -> None:
    """PUT ``data`` to ``url`` but close the connection half-way: a dropped connection."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        head = (
            f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        sock.sendall(head.encode() + data[: len(data) // 2])


def test_resume_sends_only_the_missing_parts(
    server: ThreadedServer,
    big: Path,
    s3_artifacts: str,
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELREG_TRANSFER", "direct")
    data = big.read_bytes()
    bucket = parse_s3_url(s3_artifacts)[0]
    blob = f"{server.url}{API}/blobs/sha256:{sha(data)}/uploads"
    # A first client sends part 1, then its connection drops in the middle of part 2.
    with httpx.Client(timeout=60) as http:
        up = http.post(blob, json={"size": SIZE}).json()
        assert (up["part_count"], up["parts"]) == (2, [])
        urls = http.post(f"{blob}/{up['upload_id']}/parts", json={"numbers": [1, 2]}).json()
        assert http.put(urls["urls"]["1"], content=data[:PART]).status_code == 200
        _drop_mid_part(urls["urls"]["2"], data[PART:])
        # Asking again finds the same upload, holding part 1 only.
        again = http.post(blob, json={"size": SIZE}).json()
        assert again["upload_id"] == up["upload_id"]
        assert again["parts"] == [{"number": 1, "size": PART}]
    # The real client resumes it: part 2 travels, part 1 does not again.
    with modelreg.Registry(server.url) as reg:
        version = reg.register("fraud", big, capture=False)
    assert version.files[0].sha256 == sha(data)
    assert part_puts(moto_server, bucket, 1) == 1
    assert part_puts(moto_server, bucket, 2) >= 1
    assert store_of(s3_artifacts).exists(sha(data))


def test_a_tampered_part_is_refused_and_nothing_is_stored(
    server: ThreadedServer, big: Path, s3_artifacts: str
) -> None:
    data = big.read_bytes()
    blob = f"{server.url}{API}/blobs/sha256:{sha(data)}/uploads"
    with httpx.Client(timeout=60) as http:
        up = http.post(blob, json={"size": SIZE}).json()
        url = f"{blob}/{up['upload_id']}"
        # Completing before every part is there names what is missing, and keeps the upload.
        early = http.post(f"{url}/complete", headers=JSON)
        assert early.status_code == 400
        assert early.json()["error"]["detail"]["missing_parts"] == [1, 2]
        urls = http.post(f"{url}/parts", json={"numbers": [1, 2]}).json()["urls"]
        flipped = bytearray(data[PART:])
        flipped[1000] ^= 0xFF
        for number, body in (("1", data[:PART]), ("2", bytes(flipped))):
            assert http.put(urls[number], content=body).status_code == 200
        answer = http.post(f"{url}/complete", headers=JSON)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "digest_mismatch"
        # The upload is gone whole: resuming it is refused, a new one starts from nothing.
        assert http.post(f"{url}/complete", headers=JSON).status_code == 404
        fresh = http.post(blob, json={"size": SIZE}).json()
        assert (fresh["upload_id"] != up["upload_id"], fresh["parts"]) == (True, [])
        assert http.delete(f"{blob}/{fresh['upload_id']}").status_code == 204
    store = store_of(s3_artifacts)
    assert not store.exists(sha(data))
    assert list(store._list(store._key("tmp/"))) == []
    assert store._client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


def test_bad_requests_are_refused(server: ThreadedServer) -> None:
    digest = "ab" * 32
    blob = f"{server.url}{API}/blobs/sha256:{digest}/uploads"
    with httpx.Client(timeout=60) as http:
        assert http.post(blob, json={"size": 0}).status_code == 400
        assert http.post(blob, json={"size": 10**15}).status_code == 400
        bad = http.post(f"{server.url}{API}/blobs/sha256:nothex/uploads", json={"size": 5})
        assert bad.status_code == 400
        up = http.post(blob, json={"size": 5}).json()
        parts = f"{blob}/{up['upload_id']}/parts"
        assert http.post(parts, json={"numbers": [2]}).status_code == 400
        assert http.post(parts, json={"numbers": []}).status_code == 400
        # An id the server did not hand out names no upload (and no key it would sign).
        for forged in ("5.16777216.../../sha256", "5.5." + "0" * 32, "x"):
            answer = http.post(f"{blob}/{forged}/parts", json={"numbers": [1]})
            assert answer.status_code == 404, forged
        # A download URL only for a blob that is there.
        assert http.get(f"{server.url}{API}/blobs/sha256:{digest}/url").status_code == 404


def test_falls_back_to_the_server_when_the_bucket_is_out_of_reach(
    home: Path,
    big: Path,
    tmp_path: Path,
    s3_artifacts: str,
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelreg.api.app import create_app

    # The server signs URLs for an address this client cannot reach (nothing listens there).
    monkeypatch.setenv("MODELREG_PRESIGN_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    bucket = parse_s3_url(s3_artifacts)[0]
    with ThreadedServer(create_app(Settings.for_home(home))) as server:
        monkeypatch.setenv("MODELREG_TRANSFER", "direct")
        with modelreg.Registry(server.url) as reg, pytest.raises(Unavailable) as caught:
            reg.register("fraud", big, capture=False)
        assert "cannot be reached" in str(caught.value)
        monkeypatch.setenv("MODELREG_TRANSFER", "auto")
        with modelreg.Registry(server.url) as reg:
            reg.register("fraud", big, capture=False)
            reg.download("fraud:1", tmp_path / "out")
    assert (tmp_path / "out" / "weights.bin").read_bytes() == big.read_bytes()
    assert moto_requests(moto_server, bucket, "PUT", "partNumber=") == []


def test_proxy_mode_and_servers_without_direct_use_the_proxied_routes(
    home: Path,
    big: Path,
    tmp_path: Path,
    s3_artifacts: str,
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelreg.api.app import create_app

    bucket = parse_s3_url(s3_artifacts)[0]
    monkeypatch.setenv("MODELREG_TRANSFER", "proxy")
    app = create_app(Settings.for_home(home))
    with ThreadedServer(app) as server, modelreg.Registry(server.url) as reg:
        reg.register("fraud", big, capture=False)
    monkeypatch.setenv("MODELREG_DIRECT_TRANSFERS", "false")
    monkeypatch.setenv("MODELREG_TRANSFER", "auto")
    with ThreadedServer(create_app(Settings.for_home(home))) as server:
        with httpx.Client(base_url=server.url) as http:
            assert http.get(f"{API}/transfers").json()["direct"] is False
            refused = http.post(f"{API}/blobs/sha256:{'ab' * 32}/uploads", json={"size": 9})
            assert refused.status_code == 409
        with modelreg.Registry(server.url) as reg:
            reg.download("fraud:1", tmp_path / "out")
    assert (tmp_path / "out" / "weights.bin").read_bytes() == big.read_bytes()
    assert moto_requests(moto_server, bucket, "PUT", "partNumber=") == []
    assert moto_requests(moto_server, bucket, "GET", "/sha256/") == []


def test_authorisation_is_the_proxied_routes(
    tmp_path: Path, s3_artifacts: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "teams"
    home.mkdir()
    (home / "modelreg.toml").write_text(f'artifacts = "{s3_artifacts}"\n')
    with two_teams(home) as teams:
        beta = sha(b"beta seed bytes")
        start = f"{API}/blobs/sha256:{'cd' * 32}/uploads"
        # A reader may not upload; a contributor may.
        assert teams["vic"].post(start, json={"size": 9}).status_code == 403
        assert teams["ann"].post(start, json={"size": 9}).status_code == 200
        # Another team's blob answers 404 as if absent; a reader of it gets its URL.
        assert teams["ann"].get(f"{API}/blobs/sha256:{beta}/url").status_code == 404
        url = teams["vic"].get(f"{API}/blobs/sha256:{beta}/url").json()["url"]
        assert httpx.get(url).content == b"beta seed bytes"
        # One user's upload is not another's to continue.
        up = teams["ann"].post(start, json={"size": 9}).json()["upload_id"]
        parts = f"{start}/{up}/parts"
        assert teams["cy"].post(parts, json={"numbers": [1]}).status_code == 404
        assert re.search(r"/tmp/direct/", teams["ann"].post(parts, json={"numbers": [1]}).text)


def test_bytes_that_do_not_verify_are_read_again_through_the_server(
    server: ThreadedServer,
    big: Path,
    tmp_path: Path,
    s3_artifacts: str,
) -> None:
    with modelreg.Registry(server.url) as reg:
        version = reg.register("fraud", big, capture=False)
    digest = version.files[0].sha256
    store = store_of(s3_artifacts)
    damaged = bytearray(big.read_bytes())
    damaged[-1] ^= 0x01
    store._client.put_object(Bucket=store.bucket, Key=store.key(digest), Body=bytes(damaged))
    with modelreg.Registry(server.url) as reg, pytest.raises(IntegrityFailure):
        reg.download("fraud:1", tmp_path / "out")
    # The server's own read found the damage and set the copy aside; nothing was written.
    assert not store.exists(digest)
    assert store.quarantined(digest)
    assert not (tmp_path / "out" / "weights.bin").exists()


def test_an_unknown_transfer_mode_is_refused(
    server: ThreadedServer, big: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELREG_TRANSFER", "fast")
    with (
        modelreg.Registry(server.url) as reg,
        pytest.raises(InvalidInput, match="MODELREG_TRANSFER"),
    ):
        reg.register("fraud", big, capture=False)
    with modelreg.Registry(server.url) as reg:
        assert reg.list_models().items == []


def test_unfinished_uploads_outlive_a_restart_and_go_with_gc(
    server: ThreadedServer, s3_artifacts: str
) -> None:
    blob = f"{server.url}{API}/blobs/sha256:{'ef' * 32}/uploads"
    with httpx.Client(timeout=60) as http:
        assert http.post(blob, json={"size": 9}).status_code == 200
    store = store_of(s3_artifacts)

    def unfinished() -> int:
        return len(store._client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []))

    # Start-up cleaning (older_than=0) leaves it: a client may resume it from anywhere.
    assert store.clean_temporary(older_than=0) == 0
    assert unfinished() == 1
    # gc past its grace aborts it.
    assert store.clean_temporary(older_than=time.time() + 1) == 1
    assert unfinished() == 0


class _CuttingRelay:
    """A loopback TCP relay to moto that cuts the first long answer off after ``cut`` bytes."""

    def __init__(self, target: int, cut: int) -> None:
        self.target = target
        self.cut = cut
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                sent += len(data)
                if answers and sent >= self.cut and self.cuts == 0:
                    self.cuts += 1
                    break
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()


def test_a_download_cut_off_continues_where_it_stopped(
    home: Path,
    big: Path,
    tmp_path: Path,
    s3_artifacts: str,
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelreg.api.app import create_app

    relay = _CuttingRelay(moto_server.port, cut=4 * 1024 * 1024)
    monkeypatch.setenv("MODELREG_PRESIGN_ENDPOINT", f"http://127.0.0.1:{relay.port}")
    monkeypatch.setenv("MODELREG_TRANSFER", "direct")
    bucket = parse_s3_url(s3_artifacts)[0]
    try:
        app = create_app(Settings.for_home(home))
        with ThreadedServer(app) as server, modelreg.Registry(server.url) as reg:
            reg.register("fraud", big, capture=False)
            reg.download("fraud:1", tmp_path / "out")
    finally:
        relay.close()
    assert relay.cuts == 1
    assert (tmp_path / "out" / "weights.bin").read_bytes() == big.read_bytes()
    # Two GETs of the blob: the one cut off, and the rest of it asked with Range.
    assert len(moto_requests(moto_server, bucket, "GET", "/sha256/")) == 2


def test_a_part_url_takes_only_that_parts_length(server: ThreadedServer, s3_artifacts: str) -> None:
    """The part's length is signed: a caller cannot park more bytes than it declared.

    S3 refuses a body whose length differs from a signed ``content-length`` (403); moto checks
    no presigned signature, so what is checked here is that the length is signed.
    """
    data = b"x" * 10
    blob = f"{server.url}{API}/blobs/sha256:{sha(data)}/uploads"
    with httpx.Client(timeout=60) as http:
        up = http.post(blob, json={"size": len(data)}).json()
        url = f"{blob}/{up['upload_id']}"
        signed = http.post(f"{url}/parts", json={"numbers": [1]}).json()["urls"]["1"]
        assert "content-length" in httpx.URL(signed).params["X-Amz-SignedHeaders"].split(";")
        assert httpx.URL(signed).params["X-Amz-Expires"] == "900"
        assert http.put(signed, content=data).status_code == 200
        assert http.post(f"{url}/complete", headers=JSON).status_code == 200
    assert store_of(s3_artifacts).exists(sha(data))


def test_gc_refuses_a_negative_grace(server: ThreadedServer) -> None:
    """A negative grace would reach into the future: every live upload would look abandoned."""
    answer = httpx.post(f"{server.url}{API}/gc", json={"grace_seconds": -1})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_input"

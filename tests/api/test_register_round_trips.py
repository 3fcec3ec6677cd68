"""Registering over HTTP: the manifest goes first, and only what the server lacks is uploaded.

Real servers on loopback, real SQLite and PostgreSQL, the real client. The server's answer to
a manifest naming blobs it lacks lists every one of them, and is given only to an actor who
may register (so it cannot be used to probe which digests the store holds).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg
from server_process import RequestLog, log_requests

API = "/api/v1"


def _kinds(log: RequestLog) -> list[str]:
    """Each request as ``METHOD what``, blob digests left out."""
    return [f"{m} {'blob' if '/blobs/' in p else 'versions'}" for m, p in log.seen]


@pytest.fixture
def requests_seen(live_server: Any) -> RequestLog:
    return log_requests(live_server.app)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_new_file_is_uploaded_once_and_a_stored_one_not_at_all(
    live_server: Any, requests_seen: RequestLog, tmp_path: Path
) -> None:
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights v1")
    with modelreg.Registry(live_server.url) as reg:
        first = reg.register("m", artifact, capture=False)
        assert _kinds(requests_seen) == ["POST versions", "PUT blob", "POST versions"]
        requests_seen.seen.clear()
        again = reg.register("m", artifact, metrics={"acc": 0.9}, capture=False)
        # The server has the blob: the manifest alone registers the version.
        assert _kinds(requests_seen) == ["POST versions"]
        assert [first.version, again.version] == [1, 2]
        assert again.files[0].sha256 == _sha(b"weights v1")
        out = reg.download("m:2", tmp_path / "out")
        assert [p.read_bytes() for p in out] == [b"weights v1"]


def test_only_the_missing_blobs_of_a_folder_are_sent(
    live_server: Any, requests_seen: RequestLog, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_bytes(b"{}")
    (folder / "weights.bin").write_bytes(b"old weights")
    with modelreg.Registry(live_server.url) as reg:
        reg.register("m", folder, capture=False)
        (folder / "weights.bin").write_bytes(b"new weights")
        (folder / "tokenizer.json").write_bytes(b"[]")
        requests_seen.seen.clear()
        version = reg.register("m", folder, capture=False)
    puts = [p for m, p in requests_seen.seen if m == "PUT"]
    assert sorted(puts) == sorted(f"{API}/blobs/sha256:{_sha(b)}" for b in (b"new weights", b"[]"))
    assert _kinds(requests_seen).count("POST versions") == 2
    assert {f.path: f.sha256 for f in version.files} == {
        "config.json": _sha(b"{}"),
        "tokenizer.json": _sha(b"[]"),
        "weights.bin": _sha(b"new weights"),
    }


def test_a_manifest_with_missing_blobs_names_them_all_and_changes_nothing(
    live_server: Any, tmp_path: Path
) -> None:
    stored = tmp_path / "a.bin"
    stored.write_bytes(b"stored")
    with modelreg.Registry(live_server.url) as reg:
        reg.register("other", stored, capture=False)
    files = [
        {"path": "z.bin", "sha256": "e" * 64, "size": 3},
        {"path": "a.bin", "sha256": _sha(b"stored"), "size": 6},
        {"path": "b.bin", "sha256": "f" * 64, "size": 4},
    ]
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        response = http.post(f"{API}/models/m/versions", json={"files": files})
        assert response.status_code == 404, response.text
        error = response.json()["error"]
        assert error["code"] == "blob_not_found"
        assert error["detail"]["missing"] == [
            {"path": "b.bin", "sha256": "f" * 64},
            {"path": "z.bin", "sha256": "e" * 64},
        ]
        assert error["detail"]["path"] == "b.bin"
        assert "1 more" in error["message"]
        # The model the request would have created on the spot does not exist.
        assert http.get(f"{API}/models/m").status_code == 404


def test_who_may_not_register_learns_nothing_about_stored_blobs(
    live_server: Any, home: Path, tmp_path: Path
) -> None:
    artifact = tmp_path / "secret.bin"
    artifact.write_bytes(b"another team's weights")
    with modelreg.Registry(home) as local:
        local.register("secret", artifact, capture=False)
        local.create_user("admin", role="admin")
        local.create_user("vic", role="viewer")
        token = local.create_token("vic")["token"]
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as http:
        answers = []
        for digest, size in ((_sha(b"another team's weights"), 22), ("e" * 64, 22)):
            files = [{"path": "x.bin", "sha256": digest, "size": size}]
            answers.append(http.post(f"{API}/models/secret/versions", json={"files": files}))
        # Stored or not, the same refusal: neither "missing" nor a size check answers first.
        assert [r.status_code for r in answers] == [403, 403]
        assert {r.json()["error"]["code"] for r in answers} == {"permission_denied"}
        assert all("missing" not in r.json()["error"]["detail"] for r in answers)


def test_files_with_the_same_bytes_are_sent_once(
    live_server: Any, requests_seen: RequestLog, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("a.bin", "b.bin", "c.bin"):
        (folder / name).write_bytes(b"shared bytes")
    with modelreg.Registry(live_server.url) as reg:
        version = reg.register("m", folder, capture=False)
    assert [p for m, p in requests_seen.seen if m == "PUT"] == [
        f"{API}/blobs/sha256:{_sha(b'shared bytes')}"
    ]
    assert [f.path for f in version.files] == ["a.bin", "b.bin", "c.bin"]


class WithoutMissingList:
    """A server from before the manifest-first order: its 404 does not list what it lacks."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        held: list[Any] = []

        async def hold(message: Any) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        start, *chunks = held
        body = b"".join(m.get("body", b"") for m in chunks)
        if start["status"] == 404:
            error = json.loads(body)
            error["error"]["detail"].pop("missing", None)
            body = json.dumps(error).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def test_a_server_that_does_not_list_missing_blobs_is_asked_blob_by_blob(
    live_server: Any, tmp_path: Path
) -> None:
    app = live_server.app
    recorder = log_requests(app)
    recorder.app = WithoutMissingList(recorder.app)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "kept.bin").write_bytes(b"kept")
    with modelreg.Registry(live_server.url) as reg:
        reg.register("m", folder / "kept.bin", capture=False)
        (folder / "new.bin").write_bytes(b"new")
        recorder.seen.clear()
        version = reg.register("m", folder, capture=False)
    assert _kinds(recorder) == [
        "POST versions",
        "HEAD blob",
        "HEAD blob",
        "PUT blob",
        "POST versions",
    ]
    assert {f.path: f.sha256 for f in version.files} == {
        "kept.bin": _sha(b"kept"),
        "new.bin": _sha(b"new"),
    }

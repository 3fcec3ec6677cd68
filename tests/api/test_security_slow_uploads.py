"""Slow clients cost nothing (issue 18, finding 5; SECURITY.md rule 16).

A red team held every worker thread with 41 uploads sending one byte a second, and `/healthz`
and listings stopped answering. Here a real `modelreg server` takes 100 crawling uploads from
four users (more than anyio's 40 default threads) and must still answer health and reads,
refuse a user's upload past its cap with 429, and cut off an upload whose body stops.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

import modelreg
from modelreg.api.app import create_app
from modelreg.api.http_protocol import HeaderDeadline
from modelreg.api.uploads import UploadGate
from modelreg.config import Settings
from modelreg.errors import TooManyUploads
from modelreg.services.actor import Actor
from server_process import ServerProcess, ThreadedServer

API = "/api/v1"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
USERS = 4
PER_USER = 25  # 100 uploads in all
# Generous: the machine running the tests is busy; what matters is an answer, not its speed.
ANSWER_WITHIN = 10.0
SETTLE_WITHIN = 60.0


def _wait_for(condition: Callable[[], bool], within: float = SETTLE_WITHIN) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _temporary(home: Path) -> list[Path]:
    tmp = home / "blobs" / "tmp"
    return list(tmp.iterdir()) if tmp.is_dir() else []


def _stored(home: Path) -> list[Path]:
    blobs = home / "blobs" / "sha256"
    return [p for p in blobs.rglob("*") if p.is_file()] if blobs.is_dir() else []


def _open_upload(
    port: int,
    token: str,
    *,
    path: str = "",
    length: int = 10**6,
    first: bytes = b"x",
    method: str = "PUT",
    kind: str = "application/octet-stream",
) -> socket.socket:
    """A raw upload of ``length`` bytes announced, of which only ``first`` is sent.

    To ``path``, or by default to a blob of a random digest.
    """
    path = path or f"{API}/blobs/sha256:{hashlib.sha256(os.urandom(16)).hexdigest()}"
    sock = socket.create_connection(("127.0.0.1", port), timeout=SETTLE_WITHIN)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: {kind}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )
    sock.sendall(head.encode() + first)
    return sock


class _Dribbler:
    """Sends one byte to each socket every half second, from a thread, until stopped."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        self.sockets = sockets
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.send(b"x")

    def __enter__(self) -> _Dribbler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=SETTLE_WITHIN)


def _artifact_path(server: ServerProcess, token: str) -> str:
    """Where MLflow's client would upload a file of a new run (the MLflow door)."""
    run = httpx.post(
        f"{server.url}/api/2.0/mlflow/runs/create",
        json={"experiment_id": "0", "start_time": 1},
        headers={"authorization": f"Bearer {token}"},
        timeout=ANSWER_WITHIN,
    )
    assert run.status_code == 200, run.text
    root = run.json()["run"]["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    return f"{ARTIFACTS}/{root}/model.bin"


def _users(home: Path, tmp_path: Path) -> list[str]:
    """Tokens of ``USERS`` contributors, and one registered model to read."""
    artifact = tmp_path / "m.bin"
    artifact.write_bytes(b"weights")
    with modelreg.Registry(home) as local:
        local.register("m", artifact, capture=False)
        tokens = []
        for i in range(USERS):
            local.create_user(f"u{i}", role="contributor")
            tokens.append(local.create_token(f"u{i}")["token"])
    return tokens


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    home = tmp_path / "registry"
    home.mkdir()
    return home


def _serve(home: Path, **settings: object) -> ServerProcess:
    env = {f"MODELREG_{k.upper()}": str(v) for k, v in settings.items()}
    return ServerProcess(home, ready_path="/healthz", env=env)


class TestSlowUploadsCostNothing:
    """Crawling uploads hold no worker: health and reads answer, caps and idle cut-offs hold."""

    def test_health_and_reads_answer_while_100_uploads_crawl(
        self, folder: Path, tmp_path: Path
    ) -> None:
        tokens = _users(folder, tmp_path)
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(_serve(folder, max_uploads_per_principal=PER_USER))
            sockets = [
                stack.enter_context(_open_upload(server.port, token))
                for token in tokens
                for _ in range(PER_USER)
            ]
            stack.enter_context(_Dribbler(sockets))
            # Every upload is under way (its temp file exists): none waits for a thread. Asked
            # after the reads, so that a server whose threads the uploads hold fails on those.
            under_way = _wait_for(lambda: len(_temporary(folder)) == USERS * PER_USER, 30)
            auth = {"authorization": f"Bearer {tokens[0]}"}
            with httpx.Client(base_url=server.url, timeout=ANSWER_WITHIN) as client:
                for _ in range(3):
                    assert client.get("/healthz").status_code == 200
                    models = client.get(f"{API}/models", headers=auth)
                    assert models.status_code == 200
                    assert [m["name"] for m in models.json()["items"]] == ["m"]
                    resolved = client.get(f"{API}/resolve", params={"uri": "m:1"}, headers=auth)
                    assert resolved.status_code == 200
                assert under_way, len(_temporary(folder))
                # One more upload from a user at its cap is refused before its body is read.
                data = b"one upload too many"
                refused = client.put(
                    f"{API}/blobs/sha256:{hashlib.sha256(data).hexdigest()}",
                    content=data,
                    headers={**auth, "content-type": "application/octet-stream"},
                )
                assert refused.status_code == 429, refused.text
                assert int(refused.headers["retry-after"]) > 0
                error = refused.json()["error"]
                assert error["code"] == "too_many_uploads"
                assert error["detail"]["limit"] == PER_USER
                assert (
                    client.head(
                        f"{API}/blobs/sha256:{hashlib.sha256(data).hexdigest()}", headers=auth
                    ).status_code
                    == 404
                )
        # The clients went away: every upload is dropped, nothing half-written stays.
        assert _wait_for(lambda: _temporary(folder) == [])
        assert [p.read_bytes() for p in _stored(folder)] == [b"weights"]

    def test_a_user_below_its_cap_uploads_while_another_is_at_its_cap(
        self, folder: Path, tmp_path: Path
    ) -> None:
        tokens = _users(folder, tmp_path)
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(_serve(folder, max_uploads_per_principal=2))
            for _ in range(2):
                stack.enter_context(_open_upload(server.port, tokens[0]))
            assert _wait_for(lambda: len(_temporary(folder)) == 2)
            data = b"the other user's weights"
            url = f"{server.url}{API}/blobs/sha256:{hashlib.sha256(data).hexdigest()}"
            headers = {"content-type": "application/octet-stream"}
            with httpx.Client(timeout=ANSWER_WITHIN) as client:
                first = client.put(
                    url, content=data, headers={**headers, "authorization": f"Bearer {tokens[0]}"}
                )
                assert first.status_code == 429
                # The MLflow door counts the same uploads.
                door = client.put(
                    f"{server.url}{_artifact_path(server, tokens[0])}",
                    content=data,
                    headers={**headers, "authorization": f"Bearer {tokens[0]}"},
                )
                assert door.status_code == 429, door.text
                assert door.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
                assert int(door.headers["retry-after"]) > 0
                second = client.put(
                    url, content=data, headers={**headers, "authorization": f"Bearer {tokens[1]}"}
                )
                assert second.status_code == 200, second.text
                assert second.json()["created"] is True
        assert _wait_for(lambda: _temporary(folder) == [])

    def test_the_client_waits_for_a_free_slot_instead_of_failing(
        self, folder: Path, tmp_path: Path
    ) -> None:
        tokens = _users(folder, tmp_path)
        weights = tmp_path / "queued.bin"
        weights.write_bytes(b"registered once a slot frees")
        with _serve(folder, max_uploads_per_principal=1) as server:
            held = _open_upload(server.port, tokens[0])
            assert _wait_for(lambda: len(_temporary(folder)) == 1)
            statuses: list[int] = []
            outcome: list[object] = []
            with modelreg.Registry(server.url, token=tokens[0]) as remote:
                remote.backend._http.event_hooks["response"].append(  # type: ignore[attr-defined]
                    lambda response: statuses.append(response.status_code)
                )

                def register() -> None:
                    try:
                        outcome.append(remote.register("queued", weights, capture=False).version)
                    except Exception as exc:
                        outcome.append(exc)

                worker = threading.Thread(target=register)
                worker.start()
                try:
                    # Free the slot only once the client has been told to wait.
                    assert _wait_for(lambda: 429 in statuses or bool(outcome))
                finally:
                    held.close()
                    worker.join(timeout=SETTLE_WITHIN)
            assert outcome == [1]
            assert 429 in statuses

    @pytest.mark.parametrize(
        ("door", "sent", "code"),
        [
            ("rest", 0, b'"body_timeout"'),
            ("rest", 1000, b'"body_timeout"'),
            ("mlflow", 1000, b'"DEADLINE_EXCEEDED"'),
        ],
        ids=["no-body", "part-of-a-body", "mlflow-artifact"],
    )
    def test_an_idle_upload_times_out_and_leaves_nothing(
        self, folder: Path, tmp_path: Path, door: str, sent: int, code: bytes
    ) -> None:
        tokens = _users(folder, tmp_path)
        before = _stored(folder)
        with _serve(folder, body_idle_timeout=1) as server:
            path = _artifact_path(server, tokens[0]) if door == "mlflow" else ""
            with _open_upload(server.port, tokens[0], path=path, first=b"x" * sent) as sock:
                answer = _answer(sock)
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert code in answer
            assert _wait_for(lambda: _temporary(folder) == [])
            assert _stored(folder) == before
            # The server still takes uploads.
            data = b"after the timeout"
            done = httpx.put(
                f"{server.url}{API}/blobs/sha256:{hashlib.sha256(data).hexdigest()}",
                content=data,
                headers={"authorization": f"Bearer {tokens[0]}"},
                timeout=ANSWER_WITHIN,
            )
            assert done.status_code == 200, done.text

    @pytest.mark.parametrize(
        ("path", "code"),
        [
            (f"{API}/models", b'"body_timeout"'),
            ("/api/2.0/mlflow/registered-models/create", b'"DEADLINE_EXCEEDED"'),
        ],
        ids=["rest", "mlflow"],
    )
    def test_an_idle_json_body_times_out_and_changes_nothing(
        self, folder: Path, tmp_path: Path, path: str, code: bytes
    ) -> None:
        tokens = _users(folder, tmp_path)
        with _serve(folder, body_idle_timeout=1) as server:
            with _open_upload(
                server.port,
                tokens[0],
                method="POST",
                path=path,
                kind="application/json",
                length=100,
                first=b'{"name": "st',
            ) as sock:
                answer = _answer(sock)
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert code in answer
            with modelreg.Registry(server.url, token=tokens[0]) as remote:
                assert [m.name for m in remote.list_models()] == ["m"]


def _answer(sock: socket.socket) -> bytes:
    """A whole JSON answer from ``sock`` (the socket's timeout is generous)."""
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        piece = sock.recv(65536)
        if not piece:
            break
        answer += piece
    return answer


class TestUploadGate:
    """The per-principal count behind the 429: users count once, the laptop owner is one."""

    def test_a_principal_past_its_cap_is_refused_until_a_slot_frees(self) -> None:
        gate = UploadGate(2)
        user = Actor("alice", superuser=False, principal_id=_uuid(1))
        same_user_other_token = Actor(
            "alice", superuser=False, principal_id=_uuid(1), token_id=_uuid(9)
        )
        other = Actor("bob", superuser=False, principal_id=_uuid(2))
        with gate.slot(user), gate.slot(same_user_other_token):
            with pytest.raises(TooManyUploads) as refused, gate.slot(user):
                pass
            assert refused.value.retry_after > 0
            with gate.slot(other):
                pass
        with gate.slot(user):
            pass
        assert gate.running == {}

    def test_the_laptop_owner_counts_as_one_principal(self) -> None:
        gate = UploadGate(1)
        owner = Actor("me", source="api", superuser=True)
        with (
            gate.slot(owner),
            pytest.raises(TooManyUploads),
            gate.slot(Actor("me", source="api", superuser=True)),
        ):
            pass


def _uuid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


class _Impatient(HeaderDeadline, H11Protocol):
    header_timeout = 1.0


class _ImpatientFast(HeaderDeadline, HttpToolsProtocol):
    header_timeout = 1.0


@pytest.fixture(params=[_Impatient, _ImpatientFast], ids=["h11", "httptools"])
def impatient(request: pytest.FixtureRequest, folder: Path) -> Iterator[ThreadedServer]:
    """A laptop-mode server whose header deadline is one second."""
    with ThreadedServer(create_app(Settings.for_home(folder)), http=request.param) as server:
        yield server


class TestHeaderDeadline:
    """Headers sent a byte at a time never reach the app: uvicorn must close the connection."""

    def test_headers_that_crawl_get_the_connection_closed(self, impatient: ThreadedServer) -> None:
        with socket.create_connection(("127.0.0.1", impatient.port), timeout=1) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            deadline = time.monotonic() + SETTLE_WITHIN
            answer = None
            while answer is None and time.monotonic() < deadline:
                try:
                    sock.sendall(b"x")
                    answer = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:  # reset: closed while we were still sending
                    answer = b""
        assert answer == b""

    def test_a_body_that_crawls_is_not_cut_by_the_header_deadline(
        self, impatient: ThreadedServer
    ) -> None:
        data = b"x" * 12

        def crawl() -> Iterator[bytes]:
            for byte in data:
                time.sleep(0.25)  # three header deadlines in all
                yield bytes([byte])

        url = f"{impatient.url}{API}/blobs/sha256:{hashlib.sha256(data).hexdigest()}"
        response = httpx.put(
            url, content=crawl(), headers={"content-length": str(len(data))}, timeout=60
        )
        assert response.status_code == 200, response.text

    def test_a_kept_alive_connection_still_serves_its_next_request(
        self, impatient: ThreadedServer
    ) -> None:
        with httpx.Client(base_url=impatient.url, timeout=ANSWER_WITHIN) as client:
            for _ in range(3):
                assert client.get("/healthz").status_code == 200
                time.sleep(0.5)

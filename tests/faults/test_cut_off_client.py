"""A client cut off before the answer to its registration (issue 25, fault runs): it sends an
idempotency key of its own and retries once, so the version is made exactly once and the
caller gets it. The cut is real: a TCP proxy between client and server drops the connection
right after the server answered that the version was created."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelreg
from server_process import ThreadedServer


class CuttingProxy:
    """Relays TCP to ``upstream``; drops the first connection whose answer to a
    ``POST …/versions`` is a success, without relaying it."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cuts = 1
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> CuttingProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()

    def _spawn(self, target, *args) -> None:  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            state = {"posting": False}
            self._spawn(self._up, client, server, state)
            self._spawn(self._down, server, client, state)

    def _up(self, client: socket.socket, server: socket.socket, state: dict) -> None:  # type: ignore[type-arg]
        with client, server:
            while data := _recv(client):
                if data.startswith(b"POST ") and b"/versions " in data.split(b"\r\n", 1)[0]:
                    state["posting"] = True
                elif data[:4] in (b"GET ", b"PUT ", b"HEAD", b"POST"):
                    state["posting"] = False
                server.sendall(data)

    def _down(self, server: socket.socket, client: socket.socket, state: dict) -> None:  # type: ignore[type-arg]
        while data := _recv(server):
            if state["posting"] and data.startswith((b"HTTP/1.1 200", b"HTTP/1.1 201")):
                with self.lock:
                    cut = self.cuts > 0
                    self.cuts -= cut
                if cut:
                    client.shutdown(socket.SHUT_RDWR)
                    client.close()
                    server.close()
                    return
            try:
                client.sendall(data)
            except OSError:
                return


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[CuttingProxy, Path]]:
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    home = tmp_path / "registry"
    home.mkdir()
    server = ThreadedServer(create_app(Settings.for_home(home)))
    with server, CuttingProxy(server.port) as proxy:
        yield proxy, home


def test_a_registration_cut_off_after_commit_is_made_once(proxied, tmp_path):
    proxy, _ = proxied
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    with modelreg.Registry(f"http://127.0.0.1:{proxy.port}") as reg:
        made = reg.register("m", source, capture=False)
        assert proxy.cuts == 0  # the first answer was cut off
        assert made.version == 1
        assert [v.version for v in reg.list_versions("m")] == [1]
        # A second registration is a new one, with a key of its own.
        assert reg.register("m", source, capture=False).version == 2


def test_a_callers_own_key_is_kept(proxied, tmp_path):
    proxy, _ = proxied
    proxy.cuts = 0
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    with modelreg.Registry(f"http://127.0.0.1:{proxy.port}") as reg:
        first = reg.register("m", source, capture=False, idempotency_key="ci-run-7")
        again = reg.register("m", source, capture=False, idempotency_key="ci-run-7")
        assert first.version == again.version == 1

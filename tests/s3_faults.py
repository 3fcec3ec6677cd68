"""Tools for the S3 fault runs (tests/faults/test_s3_*.py): what moto holds under a store's
temp prefix, an upload body held back mid-way, and a TCP relay whose network can be cut."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from modelreg.storage.s3 import S3BlobStore
from server_process import DEADLINE

MiB = 1024 * 1024


def multipart_uploads(store: S3BlobStore) -> list[dict[str, Any]]:
    """The multipart uploads in progress under the store's prefix."""
    answer = store._client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
    return list(answer.get("Uploads", []))


def parts(store: S3BlobStore, upload: dict[str, Any]) -> list[dict[str, Any]]:
    """The parts ``upload`` holds."""
    answer = store._client.list_parts(
        Bucket=store.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
    )
    return list(answer.get("Parts", []))


def temp_keys(store: S3BlobStore) -> list[str]:
    """The objects under ``PREFIX/tmp/`` (completed uploads not yet copied to a final key)."""
    answer = store._client.list_objects_v2(Bucket=store.bucket, Prefix=f"{store.prefix}/tmp/")
    return [entry["Key"] for entry in answer.get("Contents", [])]


def held_body(data: bytes, release: threading.Event, held_at: int) -> Iterator[bytes]:
    """``data`` in 1 MiB pieces, pausing after ``held_at`` bytes until ``release``."""
    for start in range(0, len(data), MiB):
        if start == held_at:
            release.wait(DEADLINE)
        yield data[start : start + MiB]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until true; fail after ``DEADLINE`` (a hang, not a slow machine)."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Relay:
    """TCP from a loopback port to ``upstream``; ``cut()`` drops and refuses, ``heal()`` not."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.down = False
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []

    def __enter__(self) -> Relay:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self.cut()

    def cut(self) -> None:
        """Drop every relayed connection and refuse new ones until ``heal()``."""
        with self.lock:
            self.down = True
            dropped, self.open = self.open, []
        for conn in dropped:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def heal(self) -> None:
        """Relay again."""
        with self.lock:
            self.down = False

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.down:
                    client.close()
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.upstream))
                self.open += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        for conn in (source, target):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

"""The scan worker: a thread of the server process that finishes ``pending`` scans.

Woken when a registration leaves a version pending, it also looks every ``poll`` seconds, so
versions left pending by a process that stopped (or by another server process) are finished
after a restart. Several processes may run one each: a scan is per digest and idempotent,
so two workers on one version at worst read its blobs twice.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from modelreg.db.session import transaction
from modelreg.services.scanning import service
from modelreg.storage.base import BlobStore

__all__ = ["ScanWorker"]

log = logging.getLogger("modelreg.scanning")


class ScanWorker:
    """Finishes pending scans in the background; ``start``/``stop`` with the server."""

    def __init__(self, engine: Engine, store: BlobStore, *, poll: float = 30.0) -> None:
        self.engine = engine
        self.store = store
        self.poll = poll
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self):  # type: ignore[no-untyped-def]
        return transaction(self.engine, write=False)

    def _write(self):  # type: ignore[no-untyped-def]
        return transaction(self.engine, write=True)

    def start(self) -> ScanWorker:
        """Start the thread (it first picks up what earlier processes left pending)."""
        self._thread = threading.Thread(target=self._loop, name="modelreg-scan", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """A version was left pending: look now."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the blob being scanned (a half-done version stays pending)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> int:
        """Finish every version pending now; how many were finished."""
        finished = 0
        for version_id in service.pending_ids(self._read):
            if self._stop.is_set():
                break
            if service.finish_version(self._read, self._write, self.store, version_id):
                finished += 1
        return finished

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except Exception:  # a failing pass must not end the thread; the next one retries
                log.exception("finishing pending scans failed")
            self._wake.wait(self.poll)

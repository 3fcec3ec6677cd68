"""Reporting this serve process to the registry's deployments (``Registry.report_deployment``).

A report goes out at start, on every swap or failure, and as a heartbeat every 5 seconds, from
a thread of its own so that a slow registry never delays a request. A report that fails is
logged once and tried again at the next heartbeat: the registry being down never stops
serving.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from typing import TYPE_CHECKING, Any

from modelreg.serving.follower import Follower, Live, now_iso

if TYPE_CHECKING:
    from modelreg.client import Registry

log = logging.getLogger("modelreg.serve")

HEARTBEAT = 5.0


class Reporter:
    """Heartbeats of one serve process (one worker) under a deployment id of its own."""

    def __init__(
        self,
        registry: Registry,
        follower: Follower,
        *,
        address: str,
        heartbeat: float = HEARTBEAT,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.registry = registry
        self.follower = follower
        self.address = address
        self.heartbeat = heartbeat
        self.info = dict(info or {})
        self.id = str(uuid.uuid4())
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.started_at = now_iso()
        self.reports = 0
        self.last_failure = ""
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        follower.listeners.append(self._on_change)

    @property
    def supported(self) -> bool:
        """Whether this client can report deployments at all."""
        return callable(getattr(self.registry, "report_deployment", None))

    def start(self) -> None:
        """Report now, then every ``heartbeat`` seconds and on each change."""
        if not self.supported:
            log.info("this modelreg client cannot report deployments; not reporting")
            return
        self._thread = threading.Thread(target=self._run, name="modelreg-report", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the heartbeats and tell the registry this deployment ended."""
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout=30)  # a report in flight finishes before the end
        end = getattr(self.registry, "end_deployment", None)
        if self._thread is not None and callable(end):
            try:
                end(self.id)
            except Exception as exc:
                log.warning("could not end deployment %s: %s", self.id, exc)

    def _on_change(self, what: str, live: Live | None, seconds: float) -> None:
        if what in ("swap", "failure"):  # not "error": the registry is unreachable anyway
            self._kick.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._kick.clear()
            self.report()
            self._kick.wait(self.heartbeat)

    def report(self) -> bool:
        """Send one report; returns whether the registry took it."""
        live = self.follower.live
        try:
            self.registry.report_deployment(
                self.id,
                ref=self.follower.ref_text,
                live_version=live.version if live else None,
                address=self.address,
                hostname=self.hostname,
                pid=self.pid,
                started_at=self.started_at,
                loaded_at=live.loaded_at if live else None,
                last_error=self.follower.last_error,
                info=self.info,
            )
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            if message != self.last_failure:
                log.warning(
                    "deployment report failed (retrying every %gs): %s", self.heartbeat, message
                )
            self.last_failure = message
            return False
        self.reports += 1
        self.last_failure = ""
        return True

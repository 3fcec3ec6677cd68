"""Helpers of the serving tests: the serve app on a loopback port, and waiting for a state."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from serving_fakes import load

import modelreg
from modelreg.cli.serve import KEEP_ALIVE
from modelreg.serving.app import ServeConfig, assemble, build_app
from server_process import DEADLINE, MODELREG, ThreadedServer, free_port

ONE = {"inputs": {"x": [1.0]}}


@contextlib.contextmanager
def serving(url: str, ref: str, **options: Any) -> Iterator[ThreadedServer]:
    """``modelreg serve REF`` (the app, with the test loader) on a free loopback port."""
    loader = options.pop("loader", load)  # None: the real one, modelreg.flavors.open_version
    config = ServeConfig(ref=ref, **options)
    parts = assemble(modelreg.Registry(url), config, loader=loader)
    # Short long-polls: the registry server, stopped after this one, waits for them to end.
    parts.follower.event_wait = 1.0
    try:
        with ThreadedServer(build_app(parts), timeout_keep_alive=KEEP_ALIVE) as server:
            yield server
    finally:
        parts.follower.registry.close()


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    """Poll ``check`` until it is truthy; DEADLINE only detects a hang, it times nothing."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


class ServeProcess:
    """``modelreg --registry URL serve REF --port P ARGS`` as a real process, until ``stop``."""

    def __init__(self, registry: str, ref: str, *args: str, log: Path) -> None:
        self.port = free_port()
        here = str(Path(__file__).parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, *sys.path])}
        cmd = [MODELREG, "--registry", registry, "serve", ref, "--port", str(self.port), *args]
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        def up() -> bool:
            assert self.proc.poll() is None, self.output()
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(self.url + "/ping", timeout=10).status_code == 200
            return False

        wait_for("modelreg serve ready", up)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.returncode


class Clients:
    """``n`` threads scoring continuously; every answer's status, version and prediction."""

    def __init__(self, url: str, n: int = 4, body: Any = ONE) -> None:
        self.url = url
        self.body = body
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers: list[tuple[int, str, object]] = []
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def _run(self) -> None:
        with httpx.Client() as client:
            while not self.stop.is_set():
                try:
                    r = client.post(self.url + "/invocations", json=self.body)
                    row = (r.status_code, r.headers.get("modelreg-version", ""), r.json())
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.failures.append(repr(exc))
                    continue
                with self.lock:
                    self.answers.append(row)

    def __enter__(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()

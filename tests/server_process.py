"""``modelreg server`` as a real subprocess on a free loopback port, for the HTTP tests."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

MODELREG = str(Path(sys.executable).parent / "modelreg")
_START_ATTEMPTS = 3  # a free port can be taken between picking it and binding it

DEADLINE = float(os.environ.get("MODELREG_TEST_DEADLINE", "300"))
"""How long the harness waits for anything (a server to start or stop, an HTTP answer) before
calling it hung. Generous on purpose: CI shares a 2-core machine that may be under heavy load,
where a PostgreSQL-backed answer has taken over 5 s (httpx's own default). A wait that only
detects a hang costs nothing when all is well; set MODELREG_TEST_DEADLINE to scale it."""


def use_test_deadlines() -> None:
    """Make ``DEADLINE`` httpx's default timeout for every client a test builds.

    httpx binds its 5 s default as one shared ``Timeout`` object at import; changing that
    object reaches every ``httpx.Client()`` and ``httpx.get()`` that names no timeout, so no
    test needs to remember to.
    """
    from httpx._config import DEFAULT_TIMEOUT_CONFIG

    for phase in ("connect", "read", "write", "pool"):
        setattr(DEFAULT_TIMEOUT_CONFIG, phase, DEADLINE)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``modelreg ARGS`` to completion (stdin closed, output captured as text)."""
    return subprocess.run(
        [MODELREG, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        check=False,
    )


class ServerProcess:
    """``modelreg --registry HOME server --port P ARGS`` until ``stop()`` (SIGTERM, then wait).

    It runs in its own session, so that stopping it can also reach uvicorn's worker
    processes if the supervisor does not stop them itself.
    """

    def __init__(
        self,
        home: Path,
        *args: str,
        ready_path: str = "/readyz",
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        self.home = home
        self.args: Sequence[str] = args
        self.ready_path = ready_path
        self.env = {**os.environ, **(env or {})}
        self.log = log or home.parent / f"server-{id(self)}.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = DEADLINE) -> ServerProcess:
        """Start the server and wait until ``ready_path`` answers 200."""
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.port = free_port()
            cmd = [MODELREG, "--registry", str(self.home), "server", "--port", str(self.port)]
            with self.log.open("wb") as out:
                self.proc = subprocess.Popen(
                    [*cmd, *self.args],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    start_new_session=True,
                )
            if self._wait_ready(timeout):
                return self
            self.stop()
            if attempt == _START_ATTEMPTS or "address already in use" not in self.output():
                raise RuntimeError(f"modelreg server did not become ready:\n{self.output()}")
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_ready(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + self.ready_path, timeout=10).status_code == 200:
                    return True
            time.sleep(0.05)
        return False

    def output(self) -> str:
        """What the server printed so far (stdout and stderr)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM the server, wait for it, and make sure its workers are gone too."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        # Whatever is left in the server's own process group (orphaned workers) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ThreadedServer:
    """A FastAPI app served by uvicorn in a thread on a free loopback port (like conftest's
    ``LiveServer``, for apps a test builds itself, e.g. with small limits)."""

    def __init__(self, app: Any, **options: Any) -> None:
        """``options`` are more of ``uvicorn.Config``'s (e.g. ``http=`` a protocol class)."""
        import uvicorn

        self.app = app
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", **options
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + DEADLINE
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self._close_engine()
                raise RuntimeError("the test server did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=DEADLINE)
        # The app's lifespan disposes its engine as the server stops; closing it here as well
        # covers a server that never got that far, so no pooled database connection outlives
        # the test and is reported (as a ResourceWarning, an error) in whichever test the
        # garbage collector happens to run in.
        self._close_engine()
        if self.thread.is_alive():
            raise RuntimeError(f"the test server did not stop within {DEADLINE:.0f} s")

    def _close_engine(self) -> None:
        registry = getattr(getattr(self.app, "state", None), "registry", None)
        engine = getattr(registry, "engine", None)
        if engine is not None:
            engine.dispose()


@contextlib.contextmanager
def unlogged_server_errors() -> Iterator[None]:
    """Keep in-process uvicorn threads from logging the tracebacks of 500 answers.

    CPython 3.11 keeps the AST constructor's recursion depth in state that threads share
    (cf. python/cpython#106905): a server thread formatting a traceback (3.11 parses source
    lines with ``ast`` for the ``^^^^`` markers) while pytest parses source in the main thread
    has crashed a pytest-xdist worker here with ``SystemError: AST constructor recursion depth
    mismatch``. Tests that provoke 500s on purpose use this; the client still sees the 500.
    """
    logger = logging.getLogger("uvicorn.error")
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


class RequestLog:
    """An ASGI layer recording ``(method, path)`` of every HTTP request it passes on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str]] = []

    @property
    def paths(self) -> list[str]:
        """The paths seen, in order."""
        return [path for _, path in self.seen]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


def log_requests(app: Any, behind: type | None = None) -> RequestLog:
    """Record the requests a running app serves: all of them, or what its ``behind`` layer
    passes on (``CachedReads``: the requests it did not answer from memory)."""
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    if behind is None:
        log = RequestLog(app.middleware_stack)
        app.middleware_stack = log
        return log
    layer = app.middleware_stack
    while not isinstance(layer, behind):
        layer = layer.app
    log = RequestLog(layer.app)
    layer.app = log
    return log

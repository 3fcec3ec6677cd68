"""The real MLflow client and server for the tests: their venv, client scripts, and a server.

MLflow's pins clash with modelreg's, so it lives in a venv of its own: ``bench/mlflow_venv.py``
makes it at ``bench/.mlflow-venv`` (``.ci/run`` does so before the tests; the session fixture
``mlflow_python`` in tests/conftest.py makes it on first use otherwise).

MLflow runs only in child processes, each a script run with that venv's python:
``run_mlflow_script`` (exit code and output) and ``run_mlflow_json`` (the last line it prints,
as JSON). ``MlflowServer`` is a real ``mlflow server`` on SQLite and a local artifact folder,
on a free loopback port. ``once_per_run`` computes an expensive, JSON-able result once per test
run even when pytest-xdist's workers both ask for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import httpx
import pytest

from server_process import free_port

ROOT = Path(__file__).resolve().parents[1]
_START_ATTEMPTS = 3  # a free port can be taken between picking it and binding it


def _load_venv_module() -> ModuleType:
    # bench/ is not a package and its modules import each other by bare name; load the one
    # file by path instead of putting bench/ on sys.path for every test.
    path = ROOT / "bench" / "mlflow_venv.py"
    spec = importlib.util.spec_from_file_location("modelreg_bench_mlflow_venv", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_venv = _load_venv_module()
MLFLOW_VERSION: str = _venv.MLFLOW_VERSION
DEFAULT_VENV: Path = _venv.DEFAULT_VENV
MLFLOW_ENV: dict[str, str] = dict(_venv.MLFLOW_ENV)
MAKE_VENV = ".venv/bin/python bench/mlflow_venv.py"


SKIP_VARIABLE = "MODELREG_SKIP_MLFLOW_TESTS"


def skip_reason(environ: Mapping[str, str]) -> str | None:
    """Why the MLflow tests are skipped on a machine without the venv, or ``None`` to build it.

    ``MODELREG_SKIP_MLFLOW_TESTS=1`` skips them (offline machines); with ``CI`` set the
    variable is ignored, so CI never skips them silently.
    """
    if not environ.get(SKIP_VARIABLE) or environ.get("CI"):
        return None
    return f"{SKIP_VARIABLE} is set; make the venv with: {MAKE_VENV}"


def require_mlflow_python(venv: Path = DEFAULT_VENV) -> Path:
    """The python of the MLflow venv, made on first use (about a minute, once).

    The README's test command runs every test, so a missing venv is made rather than skipped;
    only ``MODELREG_SKIP_MLFLOW_TESTS=1`` (offline machines) skips, and never in CI.
    """
    python = venv / "bin" / "python"
    if _venv.installed_mlflow(python) == MLFLOW_VERSION:
        return python
    reason = skip_reason(os.environ)
    if reason is not None:
        pytest.skip(reason)
    venv.parent.mkdir(parents=True, exist_ok=True)
    # Both pytest-xdist workers may get here; one makes the venv, the other waits for it.
    with open(venv.parent / ".mlflow-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            made, _info = _venv.ensure_mlflow_venv(venv, MLFLOW_VERSION)
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.fail(f"could not make the MLflow venv at {venv} ({exc}); try: {MAKE_VENV}")
    return Path(made)


def mlflow_env(tracking_uri: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of an MLflow client process that talks to ``tracking_uri``.

    Nothing MLflow- or modelreg-related leaks in from the shell running the tests (a stray
    ``MLFLOW_TRACKING_TOKEN`` or registry URI would change what is tested).
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "MODELREG_")) and k not in ("DO_NOT_TRACK", "PYTHONPATH")
    }
    env.update(MLFLOW_ENV)
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    env.update(extra or {})
    return env


def run_mlflow_script(
    python: Path,
    code: str,
    *,
    tracking_uri: str,
    workdir: Path,
    name: str = "script.py",
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Save ``code`` as ``workdir/name`` and run it with MLflow's python, as a user would."""
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / name
    script.write_text(code, encoding="utf-8")
    return subprocess.run(
        [str(python.absolute()), str(script), *args],
        cwd=workdir,
        env=mlflow_env(tracking_uri, env),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


def explain(done: subprocess.CompletedProcess[str]) -> str:
    """The end of a script's output, for assertion messages."""
    return (
        f"exit {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n"
        f"--- stderr\n{done.stderr[-6000:]}"
    )


def run_mlflow_json(python: Path, code: str, **kwargs: Any) -> Any:
    """Run a script (``run_mlflow_script``) that must succeed; its last stdout line as JSON."""
    done = run_mlflow_script(python, code, **kwargs)
    assert done.returncode == 0, explain(done)
    lines = done.stdout.strip().splitlines()
    assert lines, explain(done)
    return json.loads(lines[-1])


def once_per_run(
    tmp_path_factory: pytest.TempPathFactory, key: str, produce: Callable[[Path], Any]
) -> Any:
    """``produce(folder)`` once per test run, also across pytest-xdist workers; its result.

    ``--dist load`` spreads one module's tests over both workers, so a module fixture would run
    twice, each time competing for the CPU (``--dist loadgroup`` would keep them together, but
    with pytest 9.2 and xdist 3.8 it groups nothing). Workers of one run share the parent of
    their base temporary folders: the first worker computes and saves the result there, the
    other waits on the lock and reads it. The result must survive a JSON round trip, and it
    goes through one in every case, so that both ways give the same types.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return json.loads(json.dumps(produce(tmp_path_factory.mktemp(key))))
    shared = tmp_path_factory.getbasetemp().parent
    saved = shared / f"{key}.json"
    with (shared / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not saved.exists():
            text = json.dumps(produce(tmp_path_factory.mktemp(key)))
            saved.write_text(text)
        return json.loads(saved.read_text())


class MlflowServer:
    """``mlflow server`` on SQLite and a local artifact folder under ``folder``, until stopped.

    One worker (the default is 4, too many for a 2-core test machine), artifacts served by the
    server itself (``--serve-artifacts``), as teams run it. It runs in its own session so that
    stopping it also reaches the workers uvicorn starts.
    """

    def __init__(
        self,
        python: Path,
        folder: Path,
        *,
        artifact_root: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``artifact_root`` (e.g. ``s3://BUCKET/PREFIX``): clients write there themselves
        (``--default-artifact-root``, no served artifacts); ``env`` goes to the server."""
        self.python = python
        self.folder = folder
        self.artifact_root = artifact_root
        self.env = dict(env or {})
        self.log = folder / "mlflow-server.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> MlflowServer:
        """Start it and wait until ``/health`` answers (about 10 s; more on a busy machine)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        mlflow = str(self.python.parent / "mlflow")
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.port = free_port()
            cmd = [
                mlflow,
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.folder / 'mlflow.db'}",
            ]
            if self.artifact_root:
                cmd += ["--default-artifact-root", self.artifact_root, "--no-serve-artifacts"]
            else:
                artifacts = str(self.folder / "artifacts")
                cmd += ["--artifacts-destination", artifacts, "--serve-artifacts"]
            cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
            with self.log.open("wb") as out:
                self.proc = subprocess.Popen(
                    cmd,
                    cwd=self.folder,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=mlflow_env(self.url, self.env),
                    start_new_session=True,
                )
            if self._wait_ready(timeout):
                return self
            self.stop()
            if attempt == _START_ATTEMPTS or "address already in use" not in self.output():
                raise RuntimeError(f"mlflow server did not become ready:\n{self.output()[-4000:]}")
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_ready(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return True
            time.sleep(0.2)
        return False

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM its process group, wait, and SIGKILL whatever is left."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

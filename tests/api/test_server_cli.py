"""`modelreg server` as users run it: a real process, driven by the CLI over HTTP."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server_process import ServerProcess, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A registry folder exactly as a user gets it: SQLite, nothing configured."""
    path = tmp_path / "folder-registry"
    path.mkdir()
    return path


@pytest.fixture
def server(folder: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(folder, ready_path="/healthz")
    proc.start()
    yield proc
    proc.stop()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_round_trip_through_the_server(home: Path, files: Path, tmp_path: Path) -> None:
    """register / models / show / download via MODELREG_URI, on SQLite and PostgreSQL."""
    with ServerProcess(home, ready_path="/healthz") as srv:
        env = {"MODELREG_URI": srv.url}
        result = run_cli(
            "register",
            "fraud",
            str(files / "model.pkl"),
            str(files / "model_dir"),
            "--metric",
            "auc=0.91",
            "--tag",
            "team=risk",
            "--no-capture",
            "--json",
            env=env,
        )
        assert result.returncode == 0, result.stderr
        version = json.loads(result.stdout)
        assert (version["name"], version["version"]) == ("fraud", 1)
        assert version["metrics"] == {"auc": 0.91}

        result = run_cli("models", "--json", env=env)
        assert result.returncode == 0, result.stderr
        models = json.loads(result.stdout)["items"]
        assert [m["name"] for m in models] == ["fraud"]
        assert models[0]["latest_version"] == 1

        result = run_cli("show", "fraud:1", "--json", env=env)
        assert result.returncode == 0, result.stderr
        shown = json.loads(result.stdout)
        assert shown["tags"] == {"team": "risk"}
        assert sorted(f["path"] for f in shown["files"]) == sorted(
            f["path"] for f in version["files"]
        )

        result = run_cli("show", "fraud", "--json", env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["name"] == "fraud"

        out = tmp_path / "out"
        result = run_cli("download", "models:/fraud/latest", "-o", str(out), env=env)
        assert result.returncode == 0, result.stderr
        for entry in version["files"]:
            assert _sha256(out / entry["path"]) == entry["sha256"]

        result = run_cli("show", "nope:1", "--json", env=env)
        assert result.returncode == 2, result.stdout + result.stderr
        assert json.loads(result.stdout)["error"]["code"] == "model_not_found"


def test_server_answers_health_and_readiness(server: ServerProcess) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").json() == {"status": "ready"}
    assert "loopback" in server.output()


def test_laptop_server_says_and_does_loopback_names_only(server: ServerProcess) -> None:
    """Issue 18 finding 1: the start-up line names the rule, and the Host header obeys it."""
    assert "as localhost, 127.0.0.1 or [::1] only" in server.output()
    rebound = httpx.get(server.url + "/api/v1/models", headers={"host": "evil.example"})
    assert rebound.status_code == 400
    assert rebound.json()["error"]["code"] == "invalid_host"


def test_allowed_hosts_from_the_command_line(folder: Path) -> None:
    with ServerProcess(folder, "--allowed-hosts", "registry.internal,127.0.0.1") as srv:
        assert "as registry.internal, 127.0.0.1 only (allowed_hosts)" in srv.output()
        named = httpx.get(srv.url + "/api/v1/models", headers={"host": "registry.internal"})
        assert named.status_code == 200
        # The list is the whole list: this server no longer answers as localhost.
        local = httpx.get(srv.url + "/api/v1/models", headers={"host": "localhost"})
        assert local.status_code == 400


def test_server_refuses_a_non_loopback_host_without_users(folder: Path) -> None:
    anywhere = "0.0.0.0"  # noqa: S104 - the point: binding beyond loopback is refused
    result = run_cli("--registry", str(folder), "server", "--host", anywhere, "--port", "0")
    assert result.returncode == 1
    assert "loopback" in result.stderr
    assert result.stdout == ""


def test_a_second_server_on_the_same_folder(server: ServerProcess, files: Path) -> None:
    with ServerProcess(server.home, ready_path="/healthz") as second:
        assert second.port != server.port
        first_env = {"MODELREG_URI": server.url}
        second_env = {"MODELREG_URI": second.url}
        model = str(files / "model.pkl")
        assert run_cli("register", "a", model, "--no-capture", env=first_env).returncode == 0
        assert run_cli("register", "a", model, "--no-capture", env=second_env).returncode == 0
        for env in (first_env, second_env):
            result = run_cli("versions", "a", "--json", env=env)
            assert result.returncode == 0, result.stderr
            assert sorted(v["version"] for v in json.loads(result.stdout)["items"]) == [1, 2]


def test_sigterm_stops_the_server(server: ServerProcess) -> None:
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    try:
        code = server.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("modelreg server did not stop on SIGTERM")
    # uvicorn shuts down gracefully, then re-raises the signal (so the exit status says why).
    assert code in (0, -signal.SIGTERM), server.output()
    assert "Traceback" not in server.output()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/healthz", timeout=2)


def test_sigterm_stops_a_multi_worker_server(folder: Path) -> None:
    srv = ServerProcess(folder, "--workers", "2")
    srv.start()
    try:
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=20) in (0, -signal.SIGTERM), srv.output()
        assert "Traceback" not in srv.output()
        with pytest.raises(httpx.ConnectError):
            httpx.get(srv.url + "/healthz", timeout=2)
    finally:
        srv.stop()

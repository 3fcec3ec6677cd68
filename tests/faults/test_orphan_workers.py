"""``modelreg server --workers 2`` after a kill -9 of its supervisor (issue 25, fault runs): the
workers end too, so the port is free and a restarted server starts."""

from __future__ import annotations

import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from server_process import DEADLINE, ServerProcess

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the process tree from /proc"
)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_workers_end_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    home = tmp_path / "registry"
    home.mkdir()
    srv = ServerProcess(home, "--workers", "2")
    srv.start()
    try:
        assert srv.proc is not None
        deadline = time.monotonic() + DEADLINE
        while len(workers := children(srv.proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        # uvicorn's multiprocessing may add a helper process; the two workers are among them.
        assert len(workers) >= 2
        assert httpx.get(srv.url + "/healthz", timeout=10).status_code == 200
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        deadline = time.monotonic() + DEADLINE
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in workers), srv.output()
        assert port_free(srv.port)
    finally:
        srv.stop()

"""What must hold across real processes: concurrent registrations and a kill mid-upload."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import modelreg

pytestmark = pytest.mark.slow

# Twelve processes on two cores already race for the write lock on every registration; more
# only add interpreter start-ups (each costs about a second).
WRITERS = 12


def cli(home: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "modelreg.cli.main", "--registry", str(home), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_concurrent_registration_processes_get_contiguous_numbers(home, files):
    # The writers on two cores queue on the database's write lock; each is a process.
    # On SQLite they start from no database at all: each tries to create the schema at once.
    (home / "registry.db").unlink(missing_ok=True)
    procs = [
        cli(
            home,
            "register",
            "fraud",
            str(files / "model.pkl"),
            "--metric",
            f"i={i}",
            "--no-capture",
            "--json",
        )
        for i in range(WRITERS)
    ]
    failures = []
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            failures.append(err.decode())
    assert failures == []
    reg = modelreg.Registry(home)
    numbers = sorted(v.version for v in reg.list_versions("fraud", page_size=100))
    assert numbers == list(range(1, WRITERS + 1))
    verify = reg.verify_audit()
    assert verify["ok"]
    assert verify["events"] == WRITERS + 1
    reg.close()


def test_killed_upload_leaves_no_version_and_the_next_one_works(home, files, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        chunk = os.urandom(1024 * 1024)
        for _ in range(400):
            fh.write(chunk)
    reg = modelreg.Registry(home)
    reg.register("fraud", files / "model.pkl", capture=False)
    proc = cli(home, "register", "fraud", str(big), "--no-capture")
    tmp_dir = home / "blobs" / "tmp"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partial = list(tmp_dir.glob("upload*")) if tmp_dir.is_dir() else []
        if partial and partial[0].stat().st_size > 0:
            break
        time.sleep(0.005)
    else:  # pragma: no cover - the upload never started
        proc.kill()
        pytest.fail("the upload never started")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    assert [v.version for v in reg.list_versions("fraud")] == [1]
    for version in reg.search("name = 'fraud'"):
        for f in version.files:
            blob = home / "blobs" / "sha256" / f.sha256[:2] / f.sha256[2:4] / f.sha256
            assert blob.stat().st_size == f.size
    assert reg.verify_audit()["ok"]
    assert reg.register("fraud", files / "model_dir", capture=False).version == 2
    assert reg.gc(grace_seconds=0)["temporary_removed"] >= 1
    assert list(tmp_dir.iterdir()) == []
    reg.close()

"""A full disk (issue 25, fault runs): a precise ``storage_failure`` naming the database and
what to free, from the CLI (exit 1, no traceback) and the server (503), never a raw ``disk I/O
error`` or ``internal server error``. The local blob store's disk full mid-upload likewise,
with nothing half-written: no temp file, no partial blob, no version; once space is freed the
same process (no restart) stores again.

The disk is a real, small tmpfs mounted for the test; that needs root (CI's container is), so
the test skips elsewhere, saying why.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import modelreg
from server_process import ThreadedServer, run_cli


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> None:
    """Take every free byte of ``disk``."""
    with open(disk / "filler", "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass


def test_the_cli_says_which_disk_is_full_and_what_to_free(small_disk, tmp_path):
    home = small_disk / "registry"
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    with modelreg.Registry(home) as reg:
        reg.register("m", source, capture=False)
    fill(small_disk)
    for args in (["models"], ["tag", "m:1", "stage=x"]):
        done = run_cli("--registry", str(home), *args)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert f"cannot write the registry database {home / 'registry.db'}" in done.stderr
        assert "0 bytes free" in done.stderr
        assert "free space there" in done.stderr
    (small_disk / "filler").unlink()
    done = run_cli("--registry", str(home), "tag", "m:1", "stage=x")
    assert done.returncode == 0, done.stderr


def test_the_server_answers_storage_failure_not_internal_error(small_disk, tmp_path):
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    home = small_disk / "registry"
    home.mkdir()
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    with ThreadedServer(create_app(Settings.for_home(home))) as server:
        with modelreg.Registry(server.url) as reg:
            reg.register("m", source, capture=False)
        fill(small_disk)
        with httpx.Client(base_url=server.url, timeout=60) as http:
            # More than the WAL holds already, so that it must grow.
            tags = {f"k{i}": "v" * 4000 for i in range(100)}
            answer = http.patch("/api/v1/models/m/versions/1/tags", json={"set": tags})
            assert answer.status_code == 503, answer.text
            error = answer.json()["error"]
            assert error["code"] == "storage_failure"
            assert str(home / "registry.db") in error["message"]
            (small_disk / "filler").unlink()
            assert http.get("/api/v1/models/m/versions/1").json()["tags"] == {}


def blob_leftovers(home: Path) -> list[str]:
    """Every file under the blob store (final blobs and temp files alike)."""
    blobs = home / "blobs"
    if not blobs.is_dir():
        return []
    return sorted(p.relative_to(blobs).as_posix() for p in blobs.rglob("*") if p.is_file())


def test_a_blob_larger_than_the_free_space_is_a_clear_cli_error(small_disk, tmp_path):
    home = small_disk / "registry"
    modelreg.Registry(home).close()  # the database exists: only the blob can fill the disk
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(6 * 1024 * 1024))  # more than the 4 MiB disk
    done = run_cli("--registry", str(home), "register", "m", str(big), "--no-capture")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"cannot write to the artifact store {home / 'blobs'}" in done.stderr
    assert "No space left on device" in done.stderr
    assert blob_leftovers(home) == []
    listed = run_cli("--registry", str(home), "models", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["items"] == []
    small = tmp_path / "small.bin"
    small.write_bytes(b"fits")
    done = run_cli("--registry", str(home), "register", "m", str(small), "--no-capture")
    assert done.returncode == 0, done.stderr


def test_a_server_whose_blob_disk_fills_answers_storage_failure_and_recovers(small_disk, tmp_path):
    from modelreg.api.app import create_app
    from modelreg.config import Settings
    from modelreg.errors import StorageFailure

    home = small_disk / "registry"
    home.mkdir()
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(6 * 1024 * 1024))
    small = tmp_path / "small.bin"
    small.write_bytes(b"fits")
    app = create_app(Settings.for_home(home))
    with ThreadedServer(app) as server, modelreg.Registry(server.url) as reg:
        with pytest.raises(StorageFailure, match="No space left on device") as caught:
            reg.register("m", big, capture=False)
        assert caught.value.code == "storage_failure"
        assert blob_leftovers(home) == []
        assert reg.list_models().items == []
        assert reg.register("m", small, capture=False).version == 1

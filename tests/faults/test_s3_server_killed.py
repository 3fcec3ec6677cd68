"""kill -9 of a ``modelreg server`` on an S3 store (moto) during four multipart uploads (issue
25, fault runs): no version points at a missing blob, the clients' uploads retried against the
restarted server complete, ``fsck`` is clean, and ``gc`` aborts the dead server's multipart
uploads and drops its temp objects, leaving nothing under ``PREFIX/tmp/``.

The kill is deterministic: each upload's body is held back after 20 MiB (more than one 16 MiB
part) until moto lists its multipart upload with a part in it, so all four are mid-upload when
the server dies. One of the orphans is then completed (as a kill between completing an upload
and copying it to its final key leaves it) so that gc meets a temp object too.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg
from modelreg.storage.s3 import S3BlobStore, parse_s3_url
from registry_folders import fresh_pg_database
from s3_faults import MiB, held_body, multipart_uploads, parts, temp_keys, wait_for
from server_process import DEADLINE, ServerProcess, run_cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="writers are told by /proc"),
]

UPLOADS = 4
SIZE = 40 * MiB + 17  # above the server's 16 MiB part: multipart
HELD_AT = 20 * MiB  # bytes sent before a body waits for the kill


def kill_mid_uploads(server: ServerProcess, store: S3BlobStore, sources: list[Path]) -> None:
    """Upload ``sources`` through ``server`` at once; kill -9 it when each is mid-multipart."""
    release = threading.Event()

    def upload(path: Path) -> int | str:
        data = path.read_bytes()
        url = f"{server.url}/api/v1/blobs/sha256:{hashlib.sha256(data).hexdigest()}"
        try:
            return httpx.put(url, content=held_body(data, release, HELD_AT)).status_code
        except httpx.HTTPError as exc:
            return type(exc).__name__

    with ThreadPoolExecutor(len(sources)) as pool:
        outcomes = pool.map(upload, sources)
        try:
            wait_for(
                lambda: (
                    len(multipart_uploads(store)) == len(sources)
                    and all(parts(store, u) for u in multipart_uploads(store))
                ),
                f"{len(sources)} multipart uploads with a part each",
            )
            assert server.proc is not None
            os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait(DEADLINE)
        finally:
            release.set()
        answers = list(outcomes)
    assert 200 not in answers, answers  # none of them can have been stored


def complete_one(store: S3BlobStore, upload: dict[str, Any]) -> None:
    """What a kill between completing an upload and copying it to its final key leaves."""
    done = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts(store, upload)]
    store._client.complete_multipart_upload(
        Bucket=store.bucket,
        Key=upload["Key"],
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": done},
    )


def fsck_clean(home: Path) -> None:
    fsck = run_cli("--registry", str(home), "fsck", "--json", timeout=DEADLINE)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_kill_9_mid_multipart_uploads_leaves_nothing_gc_cannot_clean(
    tmp_path: Path, pg_server: Any, s3_artifacts: str
) -> None:
    home = tmp_path / "registry"
    home.mkdir()
    db = fresh_pg_database(pg_server)
    (home / "modelreg.toml").write_text(f'db = "{db}"\nartifacts = "{s3_artifacts}"\n')
    store = S3BlobStore(*parse_s3_url(s3_artifacts))
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    sources = []
    for i in range(UPLOADS):
        path = inputs / f"weights-{i}.bin"
        path.write_bytes(os.urandom(SIZE))
        sources.append(path)
    kept = inputs / "kept.bin"
    kept.write_bytes(os.urandom(1000))

    with ServerProcess(home, log=tmp_path / "server-1.log") as server:
        with modelreg.Registry(server.url) as reg:
            reg.register("kept", kept, capture=False)  # committed before the kill
        kill_mid_uploads(server, store, sources)

    orphans = multipart_uploads(store)
    assert len(orphans) == UPLOADS
    complete_one(store, orphans[0])
    assert temp_keys(store) == [orphans[0]["Key"]]
    fsck_clean(home)  # the version committed before the kill is whole

    # gc, run while no server is up (the dead one's peers need not restart): its leftovers
    # go at once, whatever the grace, because their keys name a writer that is gone.
    gc = run_cli("--registry", str(home), "gc", "--json", timeout=DEADLINE)
    assert gc.returncode == 0, gc.stdout + gc.stderr
    report = json.loads(gc.stdout)
    assert (report["removed"], report["temporary_removed"]) == (0, UPLOADS), report
    assert multipart_uploads(store) == []
    assert temp_keys(store) == []

    # The clients retry, through the restarted server: every registration completes.
    with ServerProcess(home, log=tmp_path / "server-2.log") as again:

        def register(i: int) -> int:
            with modelreg.Registry(again.url) as reg:
                return reg.register(f"model-{i}", sources[i], capture=False).version

        with ThreadPoolExecutor(UPLOADS) as pool:
            assert list(pool.map(register, range(UPLOADS))) == [1] * UPLOADS
        with modelreg.Registry(again.url) as reg:
            reg.download("model-2:1", tmp_path / "out")
            assert (tmp_path / "out" / "weights-2.bin").read_bytes() == sources[2].read_bytes()
    assert multipart_uploads(store) == []
    assert temp_keys(store) == []
    stored = {digest for digest, _ in store.iter_blobs()}
    assert stored == {hashlib.sha256(p.read_bytes()).hexdigest() for p in [*sources, kept]}
    fsck_clean(home)  # no version points at a missing or damaged blob

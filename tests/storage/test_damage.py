"""Damaged blobs (issue 25, fault runs): verified reads, setting a bad copy aside, repair by
upload, and temp files of dead writers cleaned without waiting for the grace."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelreg.errors import BlobNotFound, IntegrityFailure
from modelreg.storage.base import CHUNK, blob_key, verified_chunks, verify_blob
from modelreg.storage.local import LocalBlobStore
from modelreg.storage.memory import MemoryBlobStore
from modelreg.storage.s3 import MIN_PART_SIZE, S3BlobStore

DATA = os.urandom(2 * CHUNK + 5)
DIGEST = hashlib.sha256(DATA).hexdigest()


Store = LocalBlobStore | MemoryBlobStore | S3BlobStore


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "s3":
        bucket, prefix = request.getfixturevalue("s3_artifacts")[5:].split("/", 1)
        return S3BlobStore(bucket, prefix, part_size=MIN_PART_SIZE)
    return LocalBlobStore(tmp_path / "blobs") if request.param == "local" else MemoryBlobStore()


def damage(store: Store, data: bytes) -> None:
    if isinstance(store, MemoryBlobStore):
        store.corrupt(DIGEST, data)
        return
    if isinstance(store, S3BlobStore):
        store._client.put_object(Bucket=store.bucket, Key=store.key(DIGEST), Body=data)
        return
    path = store.root / blob_key(DIGEST)
    os.chmod(path, 0o644)
    path.write_bytes(data)


def flipped() -> bytes:
    return DATA[:100] + bytes([DATA[100] ^ 1]) + DATA[101:]


@pytest.mark.parametrize("bad", [flipped(), DATA[:-7], DATA + b"x"], ids=["flip", "short", "long"])
def test_verified_chunks_withhold_the_last_chunk_of_bad_bytes(bad):
    sent: list[bytes] = []
    chunks = verified_chunks(io.BytesIO(bad), DIGEST)
    with pytest.raises(IntegrityFailure):
        sent.extend(chunks)
    assert len(b"".join(sent)) < len(bad)


def test_verified_chunks_yield_every_byte_of_a_good_blob():
    assert b"".join(verified_chunks(io.BytesIO(DATA), DIGEST, len(DATA))) == DATA
    empty = hashlib.sha256(b"").hexdigest()
    assert list(verified_chunks(io.BytesIO(b""), empty, 0)) == []


@pytest.mark.parametrize("bad", [flipped(), DATA[:-7]], ids=["flip", "truncate"])
def test_the_right_bytes_repair_a_damaged_copy(store, bad):
    store.put(io.BytesIO(DATA))
    damage(store, bad)
    assert verify_blob(store, DIGEST) is False
    info = store.put(io.BytesIO(DATA), expected=DIGEST)
    assert info.created is False
    assert verify_blob(store, DIGEST) is True
    with store.open(DIGEST) as fh:
        assert fh.read() == DATA


def test_a_quarantined_copy_is_kept_and_reported_then_repaired(store):
    store.put(io.BytesIO(DATA))
    damage(store, flipped())
    assert store.quarantine(DIGEST) is True
    assert store.quarantine(DIGEST) is False
    assert not store.exists(DIGEST)
    assert store.quarantined(DIGEST)
    assert list(store.iter_blobs()) == []  # gc never sees (nor deletes) the damaged copy
    with pytest.raises(BlobNotFound) as caught:
        store.open(DIGEST)
    assert "damaged" in str(caught.value)
    if isinstance(store, LocalBlobStore):
        kept = list((store.root / "damaged").iterdir())
        assert [p.read_bytes() for p in kept] == [flipped()]
    if isinstance(store, S3BlobStore):
        [aside] = store._client.list_objects_v2(
            Bucket=store.bucket, Prefix=f"{store.prefix}/damaged/"
        )["Contents"]
        assert aside["Key"].startswith(f"{store.prefix}/damaged/{DIGEST}.")
        kept_bytes = store._client.get_object(Bucket=store.bucket, Key=aside["Key"])["Body"]
        assert kept_bytes.read() == flipped()
    assert store.put(io.BytesIO(DATA)).created is True
    assert verify_blob(store, DIGEST) is True


def test_a_copy_repaired_since_it_was_read_is_not_set_aside(store):
    if isinstance(store, MemoryBlobStore):
        pytest.skip("nothing repairs a memory store behind a reader")
    store.put(io.BytesIO(DATA))
    damage(store, flipped())
    with store.open(DIGEST) as stale:
        store.put(io.BytesIO(DATA))  # the repair lands while the bad copy is being read
        assert store.quarantine(DIGEST, stale) is False
    assert verify_blob(store, DIGEST) is True


WRITER = textwrap.dedent(
    """
    import sys, time
    from modelreg.storage.local import LocalBlobStore
    writer = LocalBlobStore(sys.argv[1]).writer()
    writer.write(b"x" * 100_000)
    writer._out.flush()
    print("writing", flush=True)
    time.sleep(600)
    """
)


LINUX = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="a writer's start time comes from /proc"
)


@LINUX
def test_dead_writers_leftovers_go_at_once_live_ones_never(tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    _killed_writer(store.root)
    live = store.writer()
    live.write(b"still being written")
    tmp = store.root / "tmp"
    assert len(list(tmp.iterdir())) == 2
    # Fresh files, no grace passed: only the dead writer's goes.
    assert store.clean_temporary(older_than=0) == 1
    # Even once "old", the live writer's file stays.
    assert store.clean_temporary(older_than=time.time() + 3600) == 0
    info = live.commit()
    assert info.size == len(b"still being written")
    assert list(tmp.iterdir()) == []


def test_leftovers_of_unknown_writers_still_go_by_age(tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    tmp = store.root / "tmp"
    tmp.mkdir(parents=True)
    (tmp / "upload-abc123").write_bytes(b"from an older release")
    (tmp / "upload.ffffffff.1.1.abc").write_bytes(b"from another host")
    assert store.clean_temporary(older_than=0) == 0
    assert store.clean_temporary(older_than=time.time() + 60) == 2


def _killed_writer(root: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"writing\n"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


@LINUX
def test_gc_with_its_default_grace_and_server_start_up_drop_dead_writers_leftovers(tmp_path):
    import modelreg
    from modelreg.api.app import create_app
    from modelreg.config import Settings
    from server_process import ThreadedServer

    home = tmp_path / "registry"
    home.mkdir()
    tmp = home / "blobs" / "tmp"
    _killed_writer(home / "blobs")
    with modelreg.Registry(home) as reg:
        assert reg.gc().temporary_removed == 1
    _killed_writer(home / "blobs")
    assert len(list(tmp.iterdir())) == 1
    with ThreadedServer(create_app(Settings.for_home(home))):
        assert list(tmp.iterdir()) == []

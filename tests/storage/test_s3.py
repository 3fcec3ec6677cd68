"""What only the S3 store promises (the shared contract is tests/storage/test_contract.py):
its URL, its key layout, multipart uploads that leave nothing behind, dead writers' uploads
aborted, and clear ``storage_failure`` errors when the endpoint or bucket is not there."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import modelreg
from modelreg.errors import DigestMismatch, InvalidInput, StorageFailure
from modelreg.storage import open_blob_store
from modelreg.storage.s3 import MIN_PART_SIZE, S3BlobStore, parse_s3_url
from server_process import free_port

BIG = os.urandom(2 * MIN_PART_SIZE + 12345)
BIG_DIGEST = hashlib.sha256(BIG).hexdigest()


@pytest.fixture
def s3(s3_artifacts: str) -> S3BlobStore:
    bucket, prefix = parse_s3_url(s3_artifacts)
    return S3BlobStore(bucket, prefix, part_size=MIN_PART_SIZE)


def keys(store: S3BlobStore, under: str = "") -> list[str]:
    answer = store._client.list_objects_v2(Bucket=store.bucket, Prefix=under)
    return sorted(entry["Key"] for entry in answer.get("Contents", []))


def uploads(store: S3BlobStore) -> list[str]:
    answer = store._client.list_multipart_uploads(Bucket=store.bucket)
    return [upload["Key"] for upload in answer.get("Uploads", [])]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://models", ("models", "")),
        ("s3://models/", ("models", "")),
        ("s3://my.models-1/team/registry/", ("my.models-1", "team/registry")),
    ],
)
def test_urls_name_a_bucket_and_a_prefix(url, expected):
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "s3://",
        "s3://ab",
        "s3://Upper",
        "s3://bad_name/x",
        "s3://a..b/x",
        "s3://ok-bucket/a/../b",
        "s3://ok-bucket/a//b",
        "s3://" + "x" * 64,
    ],
)
def test_bad_urls_are_invalid_input(url):
    with pytest.raises(InvalidInput, match="invalid artifact store"):
        open_blob_store(url)


def test_open_blob_store_opens_an_s3_store(s3_artifacts):
    store = open_blob_store(s3_artifacts)
    assert isinstance(store, S3BlobStore)
    assert store.url == s3_artifacts


def test_keys_are_prefix_sha256_ab_cd_digest(s3):
    digest = s3.put(io.BytesIO(b"laid out")).sha256
    assert keys(s3) == [f"registry/sha256/{digest[:2]}/{digest[2:4]}/{digest}"]
    bare = S3BlobStore(s3.bucket, "")
    assert bare.key(digest) == f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"


def test_a_multipart_blob_leaves_only_its_final_key(s3):
    info = s3.put(io.BytesIO(BIG), expected=BIG_DIGEST)
    assert (info.sha256, info.size, info.created) == (BIG_DIGEST, len(BIG), True)
    assert keys(s3) == [s3.key(BIG_DIGEST)]
    assert uploads(s3) == []
    with s3.open(BIG_DIGEST) as fh:
        assert fh.read() == BIG
    assert s3.check(BIG_DIGEST, len(BIG)) is None


@pytest.mark.parametrize("size", [100, len(BIG)], ids=["single-put", "multipart"])
def test_a_mismatch_leaves_nothing_under_any_key(s3, size):
    with pytest.raises(DigestMismatch):
        s3.put(io.BytesIO(BIG[:size]), expected=hashlib.sha256(b"declared").hexdigest())
    assert keys(s3) == []
    assert uploads(s3) == []


def test_a_dropped_multipart_upload_is_aborted(s3):
    writer = s3.writer()
    writer.write(BIG[: MIN_PART_SIZE + 10])
    assert len(uploads(s3)) == 1  # a part is on its way
    writer.abort()
    assert uploads(s3) == []
    assert keys(s3) == []


def test_check_reports_damage(s3):
    info = s3.put(io.BytesIO(b"good bytes"))
    assert s3.check(info.sha256, info.size) is None
    s3._client.put_object(Bucket=s3.bucket, Key=s3.key(info.sha256), Body=b"bad bytes!")
    assert s3.check(info.sha256, info.size) == "hash mismatch"
    assert s3.check(info.sha256, info.size + 1) == f"size {info.size}, expected {info.size + 1}"
    s3.delete(info.sha256)
    assert s3.check(info.sha256, info.size) == "missing"


WRITER = textwrap.dedent(
    """
    import sys, time
    from modelreg.storage.s3 import MIN_PART_SIZE, S3BlobStore
    writer = S3BlobStore(sys.argv[1], sys.argv[2], part_size=MIN_PART_SIZE).writer()
    writer.write(b"x" * (MIN_PART_SIZE + 1))
    print("writing", flush=True)
    time.sleep(600)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="writers are told by /proc")
def test_dead_writers_uploads_are_aborted_at_once_live_ones_never(s3):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, s3.bucket, s3.prefix], stdout=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"writing\n"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    live = s3.writer()
    live.write(BIG[: MIN_PART_SIZE + 1])
    assert len(uploads(s3)) == 2
    assert s3.clean_temporary(older_than=0) == 1
    assert s3.clean_temporary(older_than=time.time() + 3600) == 0
    assert len(uploads(s3)) == 1
    live.write(BIG[MIN_PART_SIZE + 1 :])
    assert live.commit().sha256 == BIG_DIGEST
    assert uploads(s3) == []
    assert keys(s3) == [s3.key(BIG_DIGEST)]


def test_uploads_of_other_hosts_go_by_age(s3):
    key = f"{s3.prefix}/tmp/upload.ffffffff.1.1.{'0' * 32}"
    s3._client.create_multipart_upload(Bucket=s3.bucket, Key=key)
    s3._client.put_object(Bucket=s3.bucket, Key=key + "done", Body=b"completed, not copied")
    assert s3.clean_temporary(older_than=0) == 0
    assert s3.clean_temporary(older_than=time.time() + 60) == 2
    assert uploads(s3) == []
    assert keys(s3) == []


def test_a_dead_multipart_copys_upload_goes_by_age_and_blobs_stay(s3):
    """Regression: a multipart copy (a blob above 512 MiB, a quarantine) uploads to its target
    key itself; one killed mid-way left its parts under the final key or ``damaged/``, where
    nothing looked."""
    kept = s3.put(io.BytesIO(b"a stored blob")).sha256
    digest = hashlib.sha256(b"being copied").hexdigest()
    for key in (s3.key(digest), f"{s3.prefix}/damaged/{digest}.1"):
        s3._client.create_multipart_upload(Bucket=s3.bucket, Key=key)
    assert s3.clean_temporary(older_than=0) == 0  # nothing names the writer: by age only
    assert s3.clean_temporary(older_than=time.time() + 60) == 2
    assert uploads(s3) == []
    assert keys(s3) == [s3.key(kept)]


def test_gc_removes_unreferenced_blobs_from_the_bucket(s3_artifacts, tmp_path, files):
    home = tmp_path / "registry"
    home.mkdir()
    (home / "modelreg.toml").write_text(f'artifacts = "{s3_artifacts}"\n')
    store = open_blob_store(s3_artifacts)
    stray = store.put(io.BytesIO(b"referenced by nothing")).sha256
    with modelreg.Registry(home) as reg:
        version = reg.register("fraud", files)
        report = reg.gc(grace_seconds=0)
        assert report.removed == 1
        assert not store.exists(stray)
        kept = [d for d, _ in store.iter_blobs()]
        assert sorted(kept) == sorted(f.sha256 for f in version.files)
        assert reg.download("fraud:1", tmp_path / "out")


def test_an_unreachable_endpoint_is_a_storage_failure(monkeypatch, tmp_path, files):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = open_blob_store("s3://nowhere/registry")
    digest = hashlib.sha256(b"x").hexdigest()
    for call in (
        lambda: store.put(io.BytesIO(b"x")),
        lambda: store.exists(digest),
        lambda: store.open(digest),
        lambda: list(store.iter_blobs()),
    ):
        with pytest.raises(StorageFailure, match=r"cannot \w+.* the artifact store s3://nowhere"):
            call()
    home = tmp_path / "registry"
    home.mkdir()
    (home / "modelreg.toml").write_text('artifacts = "s3://nowhere/registry"\n')
    with modelreg.Registry(home) as reg:
        with pytest.raises(StorageFailure) as caught:
            reg.register("fraud", files)
        assert caught.value.code == "storage_failure"
        assert reg.list_models().items == []  # nothing half-made


def test_a_missing_bucket_says_so(moto_server, monkeypatch):
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    store = open_blob_store("s3://no-such-bucket-here/registry")
    with pytest.raises(StorageFailure, match="does not exist"):
        store.put(io.BytesIO(b"x"))


def test_an_upload_its_owner_finished_since_the_listing_does_not_fail_gc(s3_artifacts):
    """gc lists, then aborts: an upload completed or dropped in between is no failure."""
    bucket, prefix = parse_s3_url(s3_artifacts)
    store = S3BlobStore(bucket, prefix)
    key = store._key("tmp/direct/gone")
    started = store._client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    store._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=started)
    assert store._abort_listed(key, started) == 0
    live = store._client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    assert store._abort_listed(key, live) == 1

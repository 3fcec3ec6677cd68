"""One ``BlobStore`` contract for every backend, plus what only the local folder store promises."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import time
from pathlib import Path

import pytest

from modelreg.errors import (
    BlobNotFound,
    DigestMismatch,
    IntegrityFailure,
    InvalidInput,
    RegistryError,
)
from modelreg.storage import check_digest, copy_verified
from modelreg.storage.base import CHUNK, blob_key
from modelreg.storage.local import LocalBlobStore
from modelreg.storage.memory import MemoryBlobStore
from modelreg.storage.s3 import MIN_PART_SIZE, S3BlobStore

BACKENDS = ["local", "memory", "s3"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


Store = LocalBlobStore | MemoryBlobStore | S3BlobStore


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    if request.param == "s3":
        # The smallest part S3 allows, so that the larger payloads go multipart.
        bucket, prefix = request.getfixturevalue("s3_artifacts")[5:].split("/", 1)
        return S3BlobStore(bucket, prefix, part_size=MIN_PART_SIZE)
    return MemoryBlobStore()


def read_all(store: Store, digest: str) -> bytes:
    with store.open(digest) as fh:
        return fh.read()


def read_or_refuse(store: LocalBlobStore, digest: str) -> bytes | None:
    """The blob's bytes, or None when the store refuses to open it."""
    try:
        with store.open(digest) as fh:
            return fh.read()
    except (OSError, RegistryError):
        return None


def tamper(store: Store, digest: str, data: bytes) -> None:
    if isinstance(store, LocalBlobStore):
        path = store.root / blob_key(digest)
        os.chmod(path, 0o644)
        path.write_bytes(data)
    elif isinstance(store, S3BlobStore):
        store._client.put_object(Bucket=store.bucket, Key=store.key(digest), Body=data)
    else:
        store.corrupt(digest, data)


def verify(store: Store, digest: str, size: int, **kw) -> bytes:
    target = io.BytesIO()
    with store.open(digest) as source:
        copy_verified(source, target, sha256=digest, size=size, what="model.bin", **kw)
    return target.getvalue()


class TrickleStream(io.RawIOBase):
    """A stream that hands out at most ``step`` bytes per read, like a socket."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        n = self._step if size < 0 else min(size, self._step)
        chunk = bytes(self._data[self._pos : self._pos + n])
        self._pos += len(chunk)
        return chunk


class FailingStream(io.RawIOBase):
    """Yields one chunk, then the connection drops."""

    def __init__(self) -> None:
        self._sent = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._sent:
            self._sent = True
            return b"partial upload"
        raise OSError("connection reset")


PAYLOADS = [
    pytest.param(b"", id="empty"),
    pytest.param(b"x", id="one-byte"),
    pytest.param(b"hello world\n", id="text"),
    pytest.param(bytes(range(256)) * 64, id="binary-16k"),
    pytest.param(b"\x00" * (CHUNK + 1), id="chunk-plus-one"),
]

VALID = sha(b"some bytes")

INVALID_DIGESTS = [
    pytest.param("../../etc/passwd", id="traversal"),
    pytest.param("sha256:../../etc/passwd", id="prefixed-traversal"),
    pytest.param("../" + "a" * 61, id="traversal-64-chars"),
    pytest.param(VALID.upper(), id="uppercase-hex"),
    pytest.param(VALID[:63], id="63-chars"),
    pytest.param(VALID + "a", id="65-chars"),
    pytest.param("", id="empty"),
    pytest.param("sha256:", id="prefix-only"),
    pytest.param("g" * 64, id="not-hex"),
    pytest.param("sha512:" + VALID, id="other-algorithm"),
    pytest.param(" " + VALID[1:], id="leading-space"),
    pytest.param("/" + VALID[1:], id="absolute"),
    pytest.param(VALID[:32] + "/" + VALID[33:], id="slash-inside"),
    pytest.param(None, id="none"),
]

# ``expected=None`` means "no declared digest", so it is not an invalid declaration.
INVALID_EXPECTED = [p for p in INVALID_DIGESTS if p.values[0] is not None]


class TestPut:
    @pytest.mark.parametrize("data", PAYLOADS)
    def test_put_returns_digest_size_and_created(self, store, data):
        info = store.put(io.BytesIO(data))
        assert info.sha256 == sha(data)
        assert info.size == len(data)
        assert info.created is True

    def test_identical_bytes_are_stored_once(self, store):
        first = store.put(io.BytesIO(b"same bytes"))
        second = store.put(io.BytesIO(b"same bytes"))
        assert first.created is True
        assert second.created is False
        assert second.sha256 == first.sha256
        assert second.size == first.size == len(b"same bytes")
        assert [d for d, _ in store.iter_blobs()] == [sha(b"same bytes")]

    def test_different_bytes_are_stored_apart(self, store):
        store.put(io.BytesIO(b"one"))
        store.put(io.BytesIO(b"two"))
        assert sorted(d for d, _ in store.iter_blobs()) == sorted([sha(b"one"), sha(b"two")])

    @pytest.mark.parametrize("prefix", ["", "sha256:"])
    def test_matching_expected_digest_is_accepted(self, store, prefix):
        data = b"declared bytes"
        info = store.put(io.BytesIO(data), expected=prefix + sha(data))
        assert info.sha256 == sha(data)
        assert info.created is True
        assert read_all(store, info.sha256) == data

    def test_expected_mismatch_raises_and_stores_nothing(self, store):
        data = b"actual bytes"
        declared = sha(b"other bytes")
        with pytest.raises(DigestMismatch) as info:
            store.put(io.BytesIO(data), expected=declared)
        assert info.value.detail == {"expected": declared, "actual": sha(data)}
        assert list(store.iter_blobs()) == []
        assert store.exists(sha(data)) is False
        assert store.exists(declared) is False

    def test_expected_mismatch_does_not_touch_an_existing_blob(self, store):
        stored = store.put(io.BytesIO(b"keep me"))
        with pytest.raises(DigestMismatch):
            store.put(io.BytesIO(b"intruder"), expected=stored.sha256)
        assert read_all(store, stored.sha256) == b"keep me"
        assert [d for d, _ in store.iter_blobs()] == [stored.sha256]

    @pytest.mark.parametrize("digest", INVALID_EXPECTED)
    def test_invalid_expected_digest_is_invalid_input(self, store, digest):
        with pytest.raises(InvalidInput) as info:
            store.put(io.BytesIO(b"data"), expected=digest)
        assert not isinstance(info.value, DigestMismatch)
        assert list(store.iter_blobs()) == []

    def test_progress_sums_to_the_size(self, store):
        data = os.urandom(CHUNK * 2 + 17)
        seen: list[int] = []
        info = store.put(io.BytesIO(data), progress=seen.append)
        assert sum(seen) == info.size == len(data)
        assert len(seen) == 3
        assert all(0 < n <= CHUNK for n in seen)

    def test_progress_is_not_called_for_empty_blob(self, store):
        seen: list[int] = []
        store.put(io.BytesIO(b""), progress=seen.append)
        assert seen == []

    def test_five_megabytes_streamed_in_chunks(self, store):
        data = os.urandom(5 * 1024 * 1024)
        seen: list[int] = []
        info = store.put(io.BytesIO(data), expected=sha(data), progress=seen.append)
        assert (info.sha256, info.size, info.created) == (sha(data), len(data), True)
        assert seen == [CHUNK] * 5
        hasher = hashlib.sha256()
        total = 0
        with store.open(info.sha256) as fh:
            while chunk := fh.read(256 * 1024):
                hasher.update(chunk)
                total += len(chunk)
        assert hasher.hexdigest() == sha(data)
        assert total == len(data)

    def test_short_reads_are_assembled(self, store):
        data = os.urandom(300_000)
        stream = TrickleStream(data, step=7_000)
        seen: list[int] = []
        info = store.put(stream, progress=seen.append)
        assert info.sha256 == sha(data)
        assert info.size == len(data)
        assert sum(seen) == len(data)
        assert stream.reads > len(data) // 7_000
        assert read_all(store, info.sha256) == data

    def test_a_failing_stream_stores_nothing(self, store):
        with pytest.raises(OSError, match="connection reset"):
            store.put(FailingStream())
        assert list(store.iter_blobs()) == []
        assert store.exists(sha(b"partial upload")) is False


class TestWriter:
    """``writer()``: the blob ``put`` would store, fed piece by piece (as the server does)."""

    def test_pieces_become_the_blob_put_would_store(self, store):
        data = os.urandom(3 * CHUNK + 17)
        writer = store.writer(expected=sha(data))
        for i in range(0, len(data), 100_000):
            writer.write(data[i : i + 100_000])
        info = writer.commit()
        writer.abort()  # after commit: nothing to drop
        assert (info.sha256, info.size, info.created) == (sha(data), len(data), True)
        assert read_all(store, info.sha256) == data
        assert store.put(io.BytesIO(data)).created is False

    def test_an_aborted_writer_leaves_nothing(self, store):
        writer = store.writer()
        writer.write(b"half of a blob")
        writer.abort()
        writer.abort()
        assert list(store.iter_blobs()) == []
        assert not store.exists(sha(b"half of a blob"))
        assert store.clean_temporary(older_than=time.time() + 60) == 0

    def test_a_mismatch_at_commit_stores_nothing(self, store):
        writer = store.writer(expected=sha(b"declared"))
        writer.write(b"sent")
        with pytest.raises(DigestMismatch):
            writer.commit()
        assert list(store.iter_blobs()) == []
        assert store.clean_temporary(older_than=time.time() + 60) == 0


class TestRead:
    @pytest.mark.parametrize("data", PAYLOADS)
    def test_exists_size_open_round_trip(self, store, data):
        digest = store.put(io.BytesIO(data)).sha256
        assert store.exists(digest) is True
        assert store.size(digest) == len(data)
        assert read_all(store, digest) == data

    def test_prefixed_digest_is_accepted_everywhere(self, store):
        digest = store.put(io.BytesIO(b"prefixed")).sha256
        prefixed = "sha256:" + digest
        assert store.exists(prefixed) is True
        assert store.size(prefixed) == len(b"prefixed")
        assert read_all(store, prefixed) == b"prefixed"
        assert store.delete(prefixed) is True
        assert store.exists(digest) is False

    def test_missing_blob(self, store):
        missing = sha(b"never stored")
        assert store.exists(missing) is False
        with pytest.raises(BlobNotFound) as size_err:
            store.size(missing)
        with pytest.raises(BlobNotFound) as open_err:
            store.open(missing)
        assert size_err.value.exit_code == open_err.value.exit_code == 2
        assert store.delete(missing) is False

    @pytest.mark.parametrize("method", ["exists", "size", "open", "delete"])
    @pytest.mark.parametrize("digest", INVALID_DIGESTS)
    def test_invalid_digest_is_invalid_input(self, store, method, digest):
        with pytest.raises(InvalidInput) as info:
            getattr(store, method)(digest)
        assert info.value.code == "invalid_input"

    def test_iter_blobs_yields_digest_and_mtime(self, store):
        before = time.time() - 5
        digest = store.put(io.BytesIO(b"timed")).sha256
        after = time.time() + 5
        [(found, mtime)] = list(store.iter_blobs())
        assert found == digest
        assert isinstance(mtime, float)
        assert before <= mtime <= after

    def test_empty_store_has_no_blobs(self, store):
        assert list(store.iter_blobs()) == []

    def test_clean_temporary_on_a_clean_store_removes_nothing(self, store):
        store.put(io.BytesIO(b"done"))
        assert store.clean_temporary(older_than=time.time() + 60) == 0
        assert store.exists(sha(b"done")) is True


class TestDelete:
    def test_delete_removes_the_blob(self, store):
        keep = store.put(io.BytesIO(b"keep")).sha256
        gone = store.put(io.BytesIO(b"gone")).sha256
        assert store.delete(gone) is True
        assert store.exists(gone) is False
        with pytest.raises(BlobNotFound):
            store.open(gone)
        assert [d for d, _ in store.iter_blobs()] == [keep]

    def test_second_delete_reports_false(self, store):
        digest = store.put(io.BytesIO(b"once")).sha256
        assert store.delete(digest) is True
        assert store.delete(digest) is False

    def test_put_after_delete_creates_again(self, store):
        digest = store.put(io.BytesIO(b"again")).sha256
        store.delete(digest)
        info = store.put(io.BytesIO(b"again"))
        assert info.created is True
        assert read_all(store, digest) == b"again"


class TestCopyVerified:
    def test_intact_blob_is_copied(self, store):
        data = os.urandom(CHUNK + 5)
        info = store.put(io.BytesIO(data))
        seen: list[int] = []
        assert verify(store, info.sha256, info.size, progress=seen.append) == data
        assert sum(seen) == len(data)

    @pytest.mark.parametrize(
        "replacement",
        [
            pytest.param(b"evil model!", id="same-size"),
            pytest.param(b"evil", id="shorter"),
            pytest.param(b"genuine model plus a payload", id="longer"),
            pytest.param(b"", id="emptied"),
        ],
    )
    def test_tampered_blob_raises_integrity_failure(self, store, replacement):
        data = b"good model!"
        info = store.put(io.BytesIO(data))
        tamper(store, info.sha256, replacement)
        with pytest.raises(IntegrityFailure) as err:
            verify(store, info.sha256, info.size)
        assert err.value.detail["expected"] == info.sha256
        assert err.value.detail["actual"] == sha(replacement)
        assert err.value.detail["size"] == len(replacement)
        assert err.value.detail["path"] == "model.bin"

    def test_wrong_promised_size_raises_integrity_failure(self, store):
        info = store.put(io.BytesIO(b"sized"))
        with pytest.raises(IntegrityFailure):
            verify(store, info.sha256, info.size + 1)

    def test_wrong_promised_digest_raises_integrity_failure(self, store):
        info = store.put(io.BytesIO(b"sized"))
        target = io.BytesIO()
        with store.open(info.sha256) as source, pytest.raises(IntegrityFailure):
            copy_verified(source, target, sha256=sha(b"other"), size=info.size, what="x")


class TestCheckDigest:
    @pytest.mark.parametrize(("digest", "expected"), [(VALID, VALID), ("sha256:" + VALID, VALID)])
    def test_accepted(self, digest, expected):
        assert check_digest(digest) == expected

    @pytest.mark.parametrize("digest", INVALID_DIGESTS)
    def test_refused(self, digest):
        with pytest.raises(InvalidInput):
            check_digest(digest)

    def test_blob_key_layout(self):
        assert blob_key("sha256:" + VALID) == f"sha256/{VALID[:2]}/{VALID[2:4]}/{VALID}"


class TestLocalOnly:
    @pytest.fixture
    def local(self, tmp_path: Path) -> LocalBlobStore:
        return LocalBlobStore(tmp_path / "blobs")

    def test_layout_is_sha256_ab_cd_hex(self, local):
        digest = local.put(io.BytesIO(b"laid out")).sha256
        path = local.root / "sha256" / digest[:2] / digest[2:4] / digest
        assert path.is_file()
        assert path.read_bytes() == b"laid out"
        blobs = [p for p in (local.root / "sha256").rglob("*") if p.is_file()]
        assert blobs == [path]

    def test_root_is_absolute(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        assert LocalBlobStore("relative").root == tmp_path / "relative"

    def test_blob_files_are_read_only(self, local):
        digest = local.put(io.BytesIO(b"frozen")).sha256
        mode = stat.S_IMODE(os.stat(local.root / blob_key(digest)).st_mode)
        assert mode == 0o444

    def test_blobs_survive_a_new_store_instance(self, local):
        digest = local.put(io.BytesIO(b"durable")).sha256
        reopened = LocalBlobStore(local.root)
        assert reopened.exists(digest) is True
        assert read_all(reopened, digest) == b"durable"
        assert reopened.put(io.BytesIO(b"durable")).created is False

    @pytest.mark.parametrize("where", ["outside-root", "inside-root"])
    def test_planted_symlink_is_not_followed_by_open(self, local, tmp_path, where):
        secret = b"root:x:0:0:secret"
        if where == "outside-root":
            target = tmp_path / "secret.txt"
        else:
            (local.root).mkdir(parents=True, exist_ok=True)
            target = local.root / "secret.txt"
        target.write_bytes(secret)
        digest = sha(b"planted")
        path = local.root / blob_key(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
        leaked = read_or_refuse(local, digest)
        assert leaked is None, f"open followed the planted link and returned {leaked!r}"

    def test_symlink_to_a_directory_outside_is_refused(self, local, tmp_path):
        outside = tmp_path / "outside"
        outside.mkdir()
        (local.root / "sha256").mkdir(parents=True)
        digest = sha(b"dir-link")
        (local.root / "sha256" / digest[:2]).symlink_to(outside, target_is_directory=True)
        (outside / digest[2:4]).mkdir()
        (outside / digest[2:4] / digest).write_bytes(b"planted via a dir link")
        leaked = read_or_refuse(local, digest)
        assert leaked is None, f"open followed the planted link and returned {leaked!r}"

    def test_clean_temporary_removes_old_and_keeps_fresh(self, local):
        tmp = local.root / "tmp"
        tmp.mkdir(parents=True)
        now = time.time()
        old = tmp / "upload-old"
        fresh = tmp / "upload-fresh"
        old.write_bytes(b"abandoned")
        fresh.write_bytes(b"in progress")
        os.utime(old, (now - 7200, now - 7200))
        os.utime(fresh, (now, now))
        assert local.clean_temporary(older_than=now - 3600) == 1
        assert not old.exists()
        assert fresh.exists()

    def test_clean_temporary_leaves_blobs_and_subfolders(self, local):
        digest = local.put(io.BytesIO(b"finished")).sha256
        blob = local.root / blob_key(digest)
        os.utime(blob, (0, 0))
        sub = local.root / "tmp" / "subdir"
        sub.mkdir(parents=True)
        os.utime(sub, (0, 0))
        assert local.clean_temporary(older_than=time.time()) == 0
        assert blob.exists()
        assert sub.is_dir()

    def test_clean_temporary_without_tmp_folder(self, local):
        assert not (local.root / "tmp").exists()
        assert local.clean_temporary(older_than=time.time()) == 0

    def test_no_temp_file_remains_after_digest_mismatch(self, local):
        with pytest.raises(DigestMismatch):
            local.put(io.BytesIO(b"wrong"), expected=sha(b"right"))
        assert list((local.root / "tmp").iterdir()) == []
        assert not (local.root / "sha256").exists()

    def test_no_temp_file_remains_after_success_or_duplicate(self, local):
        local.put(io.BytesIO(b"twice"))
        local.put(io.BytesIO(b"twice"))
        assert list((local.root / "tmp").iterdir()) == []

    def test_no_temp_file_remains_after_a_failing_stream(self, local):
        with pytest.raises(OSError, match="connection reset"):
            local.put(FailingStream())
        assert list((local.root / "tmp").iterdir()) == []

    def test_iter_blobs_skips_stray_files(self, local):
        digest = local.put(io.BytesIO(b"real")).sha256
        folder = local.root / blob_key(digest)
        (folder.parent / "notes.txt").write_text("stray")
        other = sha(b"misplaced")
        (folder.parent / other).write_bytes(b"misplaced")  # wrong ab/cd folder for its name
        (local.root / "sha256" / "README").write_text("stray")
        assert [d for d, _ in local.iter_blobs()] == [digest]

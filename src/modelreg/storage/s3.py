"""``S3BlobStore``: blobs in any S3-compatible bucket, verified on the way in and out.

Endpoint, region and credentials come from boto3's own resolution (``AWS_ENDPOINT_URL``,
``AWS_PROFILE``, ``~/.aws/config``, instance and container roles); nothing here reads a secret.

How a blob is written, and why a bad upload never reaches its final key:

* The bytes are hashed (SHA-256) as they arrive; that digest, computed here, names the blob.
* A blob smaller than one part is held in memory and sent with one ``PutObject`` to its final
  key only once its digest is known (and matches the declared one), with ``ChecksumSHA256``
  so that a store which checks it (AWS S3 does) refuses bytes damaged on the way.
* A larger blob is streamed part by part (one part sent while the next fills) into a
  multipart upload under ``PREFIX/tmp/``; when the last part is in and the digest matches,
  the upload is completed there and copied server-side to its final key (no bytes pass
  through modelreg again), then the temporary object is deleted. On a mismatch or any
  failure the multipart upload is aborted: nothing appears under ``PREFIX/sha256/``.

The temporary key names its writer (host, process id and start time, as the local store's
temp files do), so ``clean_temporary`` aborts the uploads of dead writers at once, never one a
live writer on this host owns, and those of other hosts by age only. An abort the bucket was
out of reach for is remembered and retried once it answers again (after the next stored blob,
and by ``clean_temporary``): a long-running server does not leave its failed uploads' parts in
the bucket for as long as it lives. Parts travel with the SDK's default transport checksum
(CRC32), which the store verifies.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO, NoReturn, cast

from modelreg.errors import BlobNotFound, DigestMismatch, InvalidInput, StorageFailure
from modelreg.storage.base import (
    CHUNK,
    BlobInfo,
    Progress,
    blob_key,
    check_by_reading,
    check_digest,
)
from modelreg.storage.local import _owner_prefix, _writer_alive
from modelreg.storage.s3_client import ObjectReader, make_client, parse_s3_url

PART_SIZE = 16 * 1024 * 1024
"""Bytes per multipart part (and the most an upload holds in memory). 16 MiB × S3's 10,000
parts allows blobs of 160 GiB, above the server's default upload limit."""

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part (all but the last)
_COPY_IN_ONE = 512 * 1024**2  # above, a multipart copy of _COPY_PART parts
_COPY_PART = 128 * 1024**2
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class S3BlobStore:
    """A content-addressed store in an S3 bucket: ``PREFIX/sha256/ab/cd/<hex>``.

    Usage::

        store = S3BlobStore("models", "registry")   # or open_blob_store("s3://models/registry")
        info = store.put(open("model.onnx", "rb"))
    """

    def __init__(
        self, bucket: str, prefix: str = "", *, part_size: int = PART_SIZE, client: Any = None
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise InvalidInput(f"part size must be at least {MIN_PART_SIZE} bytes", detail={})
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = part_size
        self._client = client if client is not None else make_client()
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        # (temp key, upload id or None) of this process's aborts that failed: retried later.
        self._unaborted: list[tuple[str, str | None]] = []
        self._unaborted_lock = threading.Lock()

    @classmethod
    def from_url(cls, location: str) -> S3BlobStore:
        """The store at ``s3://BUCKET/PREFIX``."""
        bucket, prefix = parse_s3_url(location)
        return cls(bucket, prefix)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def key(self, digest: str) -> str:
        """The object key of a blob: ``PREFIX/sha256/ab/cd/<hex>``."""
        return self._key(blob_key(digest))

    # -- errors ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def failures(self, action: str) -> Iterator[None]:
        """Turn the SDK's errors into ``StorageFailure`` naming the store and what failed."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            self._raise_client_error(action, exc)
        except BotoCoreError as exc:
            raise StorageFailure(
                f"cannot {action} the artifact store {self.url}: {exc}",
                detail={"store": self.url, "error": type(exc).__name__},
            ) from None

    def _raise_client_error(self, action: str, exc: Any) -> NoReturn:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        hint = ""
        if code == "NoSuchBucket":
            hint = f": the bucket {self.bucket!r} does not exist (create it first)"
        elif code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            hint = ": check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, the instance role)"
        raise StorageFailure(
            f"cannot {action} the artifact store {self.url}: {code} "
            f"{error.get('Message', '')}{hint}".rstrip(),
            detail={"store": self.url, "error": code},
        ) from None

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        with self.failures("read"):
            try:
                return cast("dict[str, Any]", self._client.head_object(Bucket=self.bucket, Key=key))
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in _NOT_FOUND:
                    return None
                raise

    # -- writing --------------------------------------------------------------------------

    def put(
        self, stream: BinaryIO, *, expected: str | None = None, progress: Progress | None = None
    ) -> BlobInfo:
        """Stream ``stream`` into the bucket while hashing it (see the module's docstring)."""
        writer = self.writer(expected=expected)
        try:
            while chunk := stream.read(CHUNK):
                writer.write(chunk)
                if progress is not None:
                    progress(len(chunk))
            return writer.commit()
        finally:
            writer.abort()

    def writer(self, *, expected: str | None = None) -> _S3Writer:
        """A blob fed piece by piece: one part buffered, larger blobs sent as a multipart."""
        want = check_digest(expected) if expected is not None else None
        return _S3Writer(self, want)

    def _finish(self, digest: str, size: int, body: bytes | None, temp: str | None) -> BlobInfo:
        """Store verified bytes under their final key (from memory, or copied from ``temp``).

        An existing copy is replaced: the new bytes are verified and the old may be damaged,
        and the fresh write renews the blob's age, which garbage collection goes by.
        """
        final = self.key(digest)
        existed = self._head(final) is not None
        with self.failures("write to"):
            if body is not None:
                sha = base64.b64encode(bytes.fromhex(digest)).decode()
                self._client.put_object(
                    Bucket=self.bucket, Key=final, Body=body, ChecksumSHA256=sha
                )
            else:
                self._copy(cast("str", temp), final)
        stored = self._head(final)
        if stored is None or int(stored["ContentLength"]) != size:
            raise StorageFailure(
                f"the artifact store {self.url} did not keep sha256:{digest} "
                f"({size} bytes written, {stored and stored['ContentLength']} stored)",
                detail={"store": self.url, "digest": digest},
            )
        if self._unaborted:  # the bucket answers again: what it did not take before
            self._retry_aborts()
        return BlobInfo(digest, size, created=not existed)

    def _copy(self, source: str, target: str) -> None:
        """A server-side copy: one request for a small blob, parallel part copies above.

        One ``CopyObject`` of several GiB can take a minute on S3; copied as 128 MiB parts,
        eight at a time, it takes seconds (and ``CopyObject`` stops at 5 GiB anyway).
        """
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=_COPY_IN_ONE, multipart_chunksize=_COPY_PART, max_concurrency=8
        )
        self._client.copy(
            {"Bucket": self.bucket, "Key": source}, self.bucket, target, Config=config
        )

    # -- reading --------------------------------------------------------------------------

    def exists(self, digest: str) -> bool:
        """Whether the blob is stored (one ``HeadObject``)."""
        return self._head(self.key(digest)) is not None

    def size(self, digest: str) -> int:
        """The blob's size; raises ``BlobNotFound``."""
        head = self._head(self.key(digest))
        if head is None:
            raise self._not_found(digest)
        return int(head["ContentLength"])

    def local_path(self, digest: str) -> None:
        """Objects in a bucket have no local path: servers stream them."""
        check_digest(digest)

    def open(self, digest: str) -> BinaryIO:
        """A stream of the blob's bytes read from the bucket as they are consumed."""
        from botocore.exceptions import ClientError

        key = self.key(digest)
        with self.failures("read"):
            try:
                answer = self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in _NOT_FOUND:
                    raise self._not_found(digest) from None
                raise
        raw = ObjectReader(self, answer["Body"], str(answer.get("ETag", "")))
        return cast("BinaryIO", io.BufferedReader(raw, buffer_size=CHUNK))

    def _not_found(self, digest: str) -> BlobNotFound:
        value = check_digest(digest)
        if self.quarantined(value):
            return BlobNotFound(
                f"blob sha256:{value} is damaged: its stored copy failed verification and was "
                f"set aside under {self._key('damaged/')}; upload the right bytes again "
                "(register the same files) or run `modelreg fsck --repair --from DIR`",
                detail={"digest": value, "damaged": True},
            )
        return BlobNotFound(
            f"blob sha256:{value} is missing from the artifact store {self.url}",
            detail={"digest": value},
        )

    def check(self, digest: str, size: int, progress: Progress | None = None) -> str | None:
        """What is wrong with the stored blob, or None: read back and hashed (``fsck``)."""
        return check_by_reading(self, digest, size, progress)

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        """Every well-formed blob key under ``PREFIX/sha256/`` with its last-modified time."""
        base = self._key("sha256/")
        for entry in self._list(base):
            name = entry["Key"][len(base) :]
            parts = name.split("/")
            well_formed = len(parts) == 3 and re.fullmatch(r"[0-9a-f]{64}", parts[2])
            if well_formed and parts[2][:2] == parts[0] and parts[2][2:4] == parts[1]:
                yield parts[2], entry["LastModified"].timestamp()

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        with self.failures("list"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                yield from page.get("Contents", [])

    # -- removing -------------------------------------------------------------------------

    def delete(self, digest: str) -> bool:
        """Remove one blob (garbage collection only); False when it was not there."""
        key = self.key(digest)
        if self._head(key) is None:
            return False
        with self.failures("delete from"):
            self._client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def clean_temporary(self, *, older_than: float) -> int:
        """Abort the multipart uploads and drop the temp objects of dead or stale writers.

        A writer on this host that is alive is never touched; one that died goes at once;
        one of another host (or an unrecognised name) goes once started before ``older_than``.
        A multipart copy (a blob above 512 MiB to its final key, a quarantine) uploads to its
        target key itself: one whose process died leaves parts there, under a key that names
        no writer, so those go by age too.
        """
        base = self._key("tmp/")
        removed = 0
        for under in (base, self._key("sha256/"), self._key("damaged/")):
            with self.failures("clean"):
                pages = self._client.get_paginator("list_multipart_uploads").paginate(
                    Bucket=self.bucket, Prefix=under
                )
                for page in pages:
                    for upload in page.get("Uploads", []):
                        started = upload["Initiated"].timestamp()
                        if _abandoned(upload["Key"], under, started, older_than):
                            removed += self._abort_listed(upload["Key"], upload["UploadId"])
        for entry in self._list(base):
            if _abandoned(entry["Key"], base, entry["LastModified"].timestamp(), older_than):
                with self.failures("clean"):
                    self._client.delete_object(Bucket=self.bucket, Key=entry["Key"])
                removed += 1
        return removed + self._retry_aborts()

    def _abort_listed(self, key: str, upload: str) -> int:
        """Abort an upload gc listed: 1, or 0 when its owner finished or dropped it since."""
        try:
            with self.failures("clean"):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
        except StorageFailure as exc:
            if exc.detail.get("error") != "NoSuchUpload":
                raise
            return 0  # a race with its owner, not a failure of the whole collection
        return 1

    def _drop_temporary(self, key: str, upload: str | None) -> None:
        """Abort the multipart upload ``upload`` (None: delete the temp object ``key``).

        When the bucket cannot be reached the pair is remembered for ``_retry_aborts``: the key
        names this live process, so ``clean_temporary`` alone would never take it.
        """
        try:
            with self.failures("clean"):
                if upload is not None:
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload
                    )
                else:
                    self._client.delete_object(Bucket=self.bucket, Key=key)
        except StorageFailure as exc:
            if exc.detail.get("error") != "NoSuchUpload":  # that one is gone already
                with self._unaborted_lock:
                    self._unaborted.append((key, upload))
            raise

    def _retry_aborts(self) -> int:
        """Retry the aborts that failed earlier; how many went through now."""
        with self._unaborted_lock:
            pending, self._unaborted = self._unaborted, []
        done = 0
        for key, upload in pending:
            with contextlib.suppress(StorageFailure):  # remembered again for the next try
                self._drop_temporary(key, upload)
                done += 1
        return done

    def quarantine(self, digest: str, read: BinaryIO | None = None) -> bool:
        """Move the stored copy to ``PREFIX/damaged/<hex>.<time>``: kept, no longer served.

        With ``read``, only if the object still has the ETag that stream read (a copy
        repaired meanwhile stays).
        """
        value = check_digest(digest)
        key = self.key(value)
        head = self._head(key)
        if head is None:
            return False
        raw = getattr(read, "raw", read)
        seen = getattr(raw, "etag", None)
        if read is not None and seen != head.get("ETag"):
            return False
        aside = self._key(f"damaged/{value}.{time.time_ns()}")
        with self.failures("set aside a blob in"):
            self._copy(key, aside)
            self._client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def quarantined(self, digest: str) -> bool:
        """Whether a damaged copy of ``digest`` was set aside under ``PREFIX/damaged/``."""
        with self.failures("list"):
            answer = self._client.list_objects_v2(
                Bucket=self.bucket, Prefix=self._key(f"damaged/{check_digest(digest)}."), MaxKeys=1
            )
        return bool(answer.get("KeyCount"))


def _abandoned(key: str, base: str, started: float, older_than: float) -> bool:
    alive = _writer_alive(key[len(base) :])
    return alive is False or (alive is None and started < older_than)


class _S3Writer:
    """One upload: hashed as written, one part held; ``commit`` stores it only on a match."""

    def __init__(self, store: S3BlobStore, want: str | None) -> None:
        self._store = store
        self._want = want
        self._hasher = hashlib.sha256()
        self._buffer = bytearray()
        self._size = 0
        self._temp: str | None = None
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._sending: Future[dict[str, Any]] | None = None
        self._done = False

    def write(self, data: bytes) -> None:
        if self._done:
            raise ValueError("write to a finished blob writer")
        self._hasher.update(data)
        self._size += len(data)
        self._buffer += data
        while len(self._buffer) >= self._store.part_size:
            part = bytes(self._buffer[: self._store.part_size])
            del self._buffer[: self._store.part_size]
            self._send_part(part)

    def _send_part(self, part: bytes) -> None:
        """Send ``part`` in the background; wait first for the one before it, if still going.

        So the next part fills while this one travels, and at most two are in memory.
        """
        store = self._store
        if self._upload_id is None:
            self._temp = store._key(f"tmp/{_owner_prefix()}{uuid.uuid4().hex}")
            with store.failures("write to"):
                answer = store._client.create_multipart_upload(Bucket=store.bucket, Key=self._temp)
            self._upload_id = answer["UploadId"]
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="modelreg-s3-part")
        self._wait_for_parts()
        number = len(self._parts) + 1
        assert self._pool is not None
        self._sending = self._pool.submit(self._upload_part, number, part)

    def _upload_part(self, number: int, part: bytes) -> dict[str, Any]:
        store = self._store
        with store.failures("write to"):
            answer = store._client.upload_part(
                Bucket=store.bucket,
                Key=self._temp,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=part,
            )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _wait_for_parts(self) -> None:
        sending, self._sending = self._sending, None
        if sending is not None:
            self._parts.append(sending.result())  # a failed part raises here

    def commit(self) -> BlobInfo:
        if self._done:
            raise ValueError("commit of a finished blob writer")
        try:
            digest = self._hasher.hexdigest()
            if self._want is not None and not hmac.compare_digest(digest, self._want):
                raise DigestMismatch(
                    f"uploaded bytes hash to {digest}, not the declared {self._want}",
                    detail={"expected": self._want, "actual": digest},
                )
            store = self._store
            if self._upload_id is None:
                return store._finish(digest, self._size, bytes(self._buffer), None)
            if self._buffer:
                self._send_part(bytes(self._buffer))
                self._buffer = bytearray()
            self._wait_for_parts()
            with store.failures("write to"):
                store._client.complete_multipart_upload(
                    Bucket=store.bucket,
                    Key=self._temp,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
            self._upload_id = None  # completed: only the temp object remains to drop
            return store._finish(digest, self._size, None, self._temp)
        finally:
            self.abort()

    def abort(self) -> None:
        self._done = True
        self._buffer = bytearray()
        if self._pool is not None:
            # A part still travelling would outlive the abort of its upload: let it land.
            self._pool.shutdown(wait=True)
            self._pool, self._sending = None, None
        store = self._store
        upload, self._upload_id = self._upload_id, None
        temp, self._temp = self._temp, None
        # Best effort: what a failure here leaves is retried while this process lives and
        # removed by clean_temporary once it is gone (the key names this process).
        if temp is not None:
            with contextlib.suppress(StorageFailure):
                store._drop_temporary(temp, upload)


__all__ = ["PART_SIZE", "S3BlobStore", "parse_s3_url"]

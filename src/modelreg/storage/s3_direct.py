"""Direct transfers for ``S3BlobStore``: clients move bytes to and from the bucket themselves.

The server hands out short-lived presigned URLs and keeps every decision:

* An upload is a multipart upload under ``PREFIX/tmp/direct/OWNER/DIGEST.SIZE.PART/ID``: the
  key is derived by the server from who asks, the declared digest and size, and a random id.
  A client never names a key, and a URL is only ever signed for a part of such an upload or
  for a final blob key (``PREFIX/sha256/…``), never for anything else.
* The bucket itself holds the upload's state (no table, any server can continue it): asking to
  upload the same digest again finds the upload already started and lists the parts it holds,
  so a client that lost its connection, or died, resends only the parts that are missing.
* ``complete`` joins the parts into the temporary object, then reads it back and hashes it.
  Only when the bytes hash to the declared digest are they copied to their final key; on a
  mismatch the temporary object is deleted and nothing appears under ``PREFIX/sha256/``.

Uploads that are never completed are removed by ``gc`` once older than its grace (their keys
name no local writer, so they are not cut short while a client may still resume them).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import math
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelreg.errors import DigestMismatch, InvalidInput, NotFound, StorageFailure
from modelreg.storage.base import CHUNK, BlobInfo, check_digest
from modelreg.storage.s3_client import make_client

if TYPE_CHECKING:
    from modelreg.storage.s3 import S3BlobStore

MAX_PARTS = 10_000  # S3's limit
_MIB = 1024 * 1024
_UPLOAD_ID = re.compile(r"^([0-9]{1,15})\.([0-9]{1,12})\.([0-9a-f]{32})$")


@dataclass(frozen=True, slots=True)
class DirectUpload:
    """One direct upload: where its parts go, and which are in the bucket already."""

    digest: str
    size: int
    part_size: int
    token: str
    key: str
    upload_id: str

    @property
    def id(self) -> str:
        """What the client names the upload by: ``SIZE.PART_SIZE.TOKEN``."""
        return f"{self.size}.{self.part_size}.{self.token}"

    @property
    def part_count(self) -> int:
        """How many parts the blob is cut into (all ``part_size`` but the last)."""
        return max(1, math.ceil(self.size / self.part_size))

    def part_length(self, number: int) -> int:
        """The exact size part ``number`` must have."""
        if number < self.part_count:
            return self.part_size
        return self.size - (self.part_count - 1) * self.part_size


def part_size_for(size: int, preferred: int) -> int:
    """``preferred``, or larger (whole MiB) when the blob would need more than 10,000 parts."""
    least = math.ceil(size / MAX_PARTS)
    return max(preferred, math.ceil(least / _MIB) * _MIB)


def _owner(principal: str) -> str:
    # A fixed-length tag: a principal's name never becomes part of a key as it is.
    return hashlib.sha256(principal.encode()).hexdigest()[:24]


def _base(store: S3BlobStore, principal: str, digest: str, size: int, part_size: int) -> str:
    return store._key(f"tmp/direct/{_owner(principal)}/{digest}.{size}.{part_size}/")


def _uploads(store: S3BlobStore, prefix: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    with store.failures("list"):
        pages = store._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=store.bucket, Prefix=prefix
        )
        for page in pages:
            found += page.get("Uploads", [])
    return found


def start(store: S3BlobStore, principal: str, digest: str, size: int) -> DirectUpload:
    """The caller's unfinished upload of ``digest`` (to resume), or a new one."""
    value = check_digest(digest)
    if size < 1:
        raise InvalidInput("a direct upload needs a size of at least 1 byte", detail={})
    part_size = part_size_for(size, store.part_size)
    base = _base(store, principal, value, size, part_size)
    running = sorted(_uploads(store, base), key=lambda u: u["Initiated"])
    if running:
        key = running[-1]["Key"]
        return DirectUpload(value, size, part_size, key[len(base) :], key, running[-1]["UploadId"])
    token = uuid.uuid4().hex
    with store.failures("write to"):
        answer = store._client.create_multipart_upload(Bucket=store.bucket, Key=base + token)
    return DirectUpload(value, size, part_size, token, base + token, answer["UploadId"])


def find(store: S3BlobStore, principal: str, digest: str, upload: str) -> DirectUpload:
    """The caller's upload named ``upload``; raises ``NotFound`` when there is none."""
    value = check_digest(digest)
    match = _UPLOAD_ID.fullmatch(upload)
    if match is not None:
        size, part_size, token = int(match[1]), int(match[2]), match[3]
        base = _base(store, principal, value, size, part_size)
        for entry in _uploads(store, base + token):
            if entry["Key"] == base + token:
                return DirectUpload(value, size, part_size, token, entry["Key"], entry["UploadId"])
    raise NotFound(
        f"no unfinished upload {upload!r} of sha256:{value} (finished, aborted or removed by "
        "gc): start a new one",
        detail={"upload": upload, "digest": value},
    )


def parts(store: S3BlobStore, up: DirectUpload) -> dict[int, dict[str, Any]]:
    """The parts in the bucket: number -> ``{"size", "etag"}`` (ListParts)."""
    found: dict[int, dict[str, Any]] = {}
    with store.failures("list"):
        pages = store._client.get_paginator("list_parts").paginate(
            Bucket=store.bucket, Key=up.key, UploadId=up.upload_id
        )
        for page in pages:
            for part in page.get("Parts", []):
                found[int(part["PartNumber"])] = {"size": int(part["Size"]), "etag": part["ETag"]}
    return found


@functools.lru_cache(maxsize=4)
def _client_at(endpoint: str) -> Any:
    return make_client(endpoint)


def _signer(store: S3BlobStore, endpoint: str) -> Any:
    """The client that signs URLs: the store's, or one for the address clients reach."""
    return _client_at(endpoint) if endpoint else store._client


def presign_parts(
    store: S3BlobStore, up: DirectUpload, numbers: list[int], expires: int, endpoint: str = ""
) -> dict[int, str]:
    """A presigned ``PUT`` URL for each part number (each checked against the part count)."""
    bad = [n for n in numbers if not 1 <= n <= up.part_count]
    if bad:
        raise InvalidInput(
            f"part numbers run from 1 to {up.part_count} for this upload, not {bad[0]}",
            detail={"part_count": up.part_count},
        )
    urls: dict[int, str] = {}
    with store.failures("sign for"):
        for number in numbers:
            urls[number] = _signer(store, endpoint).generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": store.bucket,
                    "Key": up.key,
                    "UploadId": up.upload_id,
                    "PartNumber": number,
                    # Signed: the bucket takes exactly this part's length, so a caller cannot
                    # park gigabytes under a part of an upload that declared a few bytes.
                    "ContentLength": up.part_length(number),
                },
                ExpiresIn=expires,
            )
    return urls


def complete(store: S3BlobStore, up: DirectUpload) -> BlobInfo:
    """Join the parts, hash what landed and, on a match only, store it under its final key.

    Raises:
        InvalidInput: parts are missing or of the wrong size; the upload stays, to resume.
        DigestMismatch: the bytes hash to another digest; the upload is removed whole.
    """
    held = parts(store, up)
    wrong = [
        n for n in range(1, up.part_count + 1) if held.get(n, {}).get("size") != up.part_length(n)
    ]
    if wrong:
        raise InvalidInput(
            f"the upload lacks {len(wrong)} of its {up.part_count} parts (or holds them at the "
            f"wrong size), first part {wrong[0]}: send them, then complete it",
            detail={"missing_parts": wrong[:100], "part_count": up.part_count},
        )
    listed = [{"PartNumber": n, "ETag": held[n]["etag"]} for n in range(1, up.part_count + 1)]
    with store.failures("write to"):
        store._client.complete_multipart_upload(
            Bucket=store.bucket,
            Key=up.key,
            UploadId=up.upload_id,
            MultipartUpload={"Parts": listed},
        )
    try:
        actual, size = _hash_object(store, up.key)
        if size != up.size or not hmac.compare_digest(actual, up.digest):
            raise DigestMismatch(
                f"the uploaded parts hash to {actual} ({size} bytes), not the declared "
                f"{up.digest} ({up.size} bytes); nothing was stored",
                detail={"expected": up.digest, "actual": actual},
            )
        return store._finish(up.digest, size, None, up.key)
    finally:
        # A failed delete must not replace the answer (a stored blob, or the mismatch): the
        # store remembers it and retries once the bucket answers (``_drop_temporary``).
        with contextlib.suppress(StorageFailure):
            store._drop_temporary(up.key, None)


def _hash_object(store: S3BlobStore, key: str) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with store.failures("read"):
        body = store._client.get_object(Bucket=store.bucket, Key=key)["Body"]
        try:
            while chunk := body.read(CHUNK):
                hasher.update(chunk)
                size += len(chunk)
        finally:
            body.close()
    return hasher.hexdigest(), size


def abort(store: S3BlobStore, up: DirectUpload) -> None:
    """Drop an unfinished upload and the parts it holds."""
    with store.failures("clean"):
        store._client.abort_multipart_upload(Bucket=store.bucket, Key=up.key, UploadId=up.upload_id)


def presign_get(
    store: S3BlobStore, digest: str, expires: int, endpoint: str = ""
) -> tuple[str, int]:
    """A presigned ``GET`` URL of a stored blob's final key, and its size."""
    value = check_digest(digest)
    head = store._head(store.key(value))
    if head is None:
        raise store._not_found(value)
    with store.failures("sign for"):
        url = _signer(store, endpoint).generate_presigned_url(
            "get_object",
            Params={
                "Bucket": store.bucket,
                "Key": store.key(value),
                # Served as a download, never rendered (SECURITY.md rule 6).
                "ResponseContentType": "application/octet-stream",
                "ResponseContentDisposition": "attachment",
            },
            ExpiresIn=expires,
        )
    return str(url), int(head["ContentLength"])


__all__ = [
    "MAX_PARTS",
    "DirectUpload",
    "abort",
    "complete",
    "find",
    "part_size_for",
    "parts",
    "presign_get",
    "presign_parts",
    "start",
]

"""The ``BlobStore`` protocol, digests, and the verified copy every download goes through."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from modelreg.digest import CHUNK, Progress, copy_verified
from modelreg.errors import IntegrityFailure, InvalidInput

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def check_digest(digest: str) -> str:
    """Return ``digest`` (64 lower-case hex characters, an optional ``sha256:`` prefix dropped)."""
    value = digest.removeprefix("sha256:") if isinstance(digest, str) else ""
    if not _HEX64.fullmatch(value):
        raise InvalidInput(
            f"invalid SHA-256 digest {digest!r}: expected 64 lower-case hex characters",
            detail={"digest": digest},
        )
    return value


def blob_key(digest: str) -> str:
    """Where a blob lives inside a store: ``sha256/ab/cd/<hex>``."""
    value = check_digest(digest)
    return f"sha256/{value[:2]}/{value[2:4]}/{value}"


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What a ``put`` stored: the digest, the size, and whether the bytes were new."""

    sha256: str
    size: int
    created: bool


class BlobWriter(Protocol):
    """One blob being stored, fed by its caller a piece at a time (``BlobStore.writer``).

    A server receiving an upload calls ``write`` only when bytes have arrived, so no thread
    waits on a slow client. ``commit`` or ``abort`` must end every writer; after ``commit``,
    ``abort`` does nothing, so ``try: … commit() finally: abort()`` is the way to use it.
    """

    def write(self, data: bytes) -> None:
        """Hash and store the next bytes."""
        ...

    def commit(self) -> BlobInfo:
        """Make the bytes a blob (atomically); raises ``DigestMismatch`` like ``put``."""
        ...

    def abort(self) -> None:
        """Drop everything written so far; nothing of it stays in the store."""
        ...


class BlobStore(Protocol):
    """Immutable blobs named by the SHA-256 of their bytes.

    Implementations must write atomically (a reader never sees a partial blob), hash on the way
    in, and treat re-storing identical bytes as a no-op.
    """

    def put(
        self, stream: BinaryIO, *, expected: str | None = None, progress: Progress | None = None
    ) -> BlobInfo:
        """Store the bytes read from ``stream`` and return their digest.

        Raises:
            DigestMismatch: ``expected`` was given and the bytes hash to something else; nothing
                is stored.
        """
        ...

    def writer(self, *, expected: str | None = None) -> BlobWriter:
        """Start storing a blob whose bytes the caller hands over with ``write``.

        ``put`` is this with a loop that reads ``stream``.
        """
        ...

    def exists(self, digest: str) -> bool:
        """Whether the store holds this blob."""
        ...

    def size(self, digest: str) -> int:
        """The blob's size in bytes; raises ``BlobNotFound``."""
        ...

    def open(self, digest: str) -> BinaryIO:
        """A binary stream of the blob's bytes, unverified; raises ``BlobNotFound``."""
        ...

    def local_path(self, digest: str) -> Path | None:
        """The blob's file when the store is a local folder (servers send it by path)."""
        ...

    def delete(self, digest: str) -> bool:
        """Remove a blob; False when it was not there. Only garbage collection calls this."""
        ...

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        """Every stored blob as ``(digest, modified-time)``."""
        ...

    def clean_temporary(self, *, older_than: float) -> int:
        """Remove unfinished uploads last touched before ``older_than`` (epoch seconds).

        Uploads whose writer has died are removed whatever their age; one a live writer owns
        never is.
        """
        ...

    def quarantine(self, digest: str, read: BinaryIO | None = None) -> bool:
        """Set the stored copy of ``digest`` aside as damaged (kept, never deleted).

        Afterwards the blob counts as missing, so the next upload of the right bytes stores it
        again. With ``read`` (a stream from ``open``), only if the stored copy is still the one
        that stream read: a copy repaired meanwhile stays. False when nothing was set aside.
        """
        ...

    def quarantined(self, digest: str) -> bool:
        """Whether a damaged copy of ``digest`` was ever set aside."""
        ...

    def check(self, digest: str, size: int, progress: Progress | None = None) -> str | None:
        """What is wrong with the stored blob (``fsck``), or None when it is whole.

        ``missing``, ``size N, expected M`` or ``hash mismatch``; a store that keeps its own
        checksums may answer without reading every byte (``check_by_reading`` does).
        """
        ...


def check_by_reading(
    store: BlobStore, digest: str, size: int, progress: Progress | None = None
) -> str | None:
    """``BlobStore.check`` for a store that must read the bytes: size first, then the hash."""
    if not store.exists(digest):
        return "missing (damaged copy set aside)" if store.quarantined(digest) else "missing"
    stored = store.size(digest)
    if stored != size:
        if progress is not None:
            progress(size)
        return f"size {stored}, expected {size}"
    return None if verify_blob(store, digest, progress) else "hash mismatch"


def verified_chunks(handle: BinaryIO, digest: str, size: int | None = None) -> Iterator[bytes]:
    """The bytes of ``handle`` a chunk at a time, the last one only once they hash to ``digest``.

    A reader that sends each chunk on (a download) thus never completes a response with bad
    bytes: on a mismatch the last chunk is withheld and ``IntegrityFailure`` raised instead.
    """
    hasher = hashlib.sha256()
    total = 0
    held = handle.read(CHUNK)
    while held:
        hasher.update(held)
        total += len(held)
        following = handle.read(CHUNK)
        if not following:
            break
        yield held
        held = following
    actual = hasher.hexdigest()
    if not hmac.compare_digest(actual, digest) or (size is not None and total != size):
        raise IntegrityFailure(
            f"stored blob sha256:{digest} is damaged: its {total} bytes hash to {actual}",
            detail={"digest": digest, "actual": actual, "size": total},
        )
    if held:
        yield held


def verify_blob(store: BlobStore, digest: str, progress: Progress | None = None) -> bool:
    """Whether the stored blob hashes to its digest (streamed); raises ``BlobNotFound``."""
    with store.open(digest) as handle:
        hasher = hashlib.sha256()
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return hmac.compare_digest(hasher.hexdigest(), check_digest(digest))


__all__ = [
    "CHUNK",
    "BlobInfo",
    "BlobStore",
    "BlobWriter",
    "Progress",
    "blob_key",
    "check_by_reading",
    "check_digest",
    "copy_verified",
    "verified_chunks",
    "verify_blob",
]

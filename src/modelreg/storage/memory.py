"""``MemoryBlobStore``: the same contract in a dict, for tests and dry runs."""

from __future__ import annotations

import hashlib
import hmac
import io
import time
from collections.abc import Iterator
from typing import BinaryIO

from modelreg.errors import BlobNotFound, DigestMismatch
from modelreg.storage.base import CHUNK, BlobInfo, Progress, check_by_reading, check_digest


class MemoryBlobStore:
    """Blobs kept in memory; behaves like ``LocalBlobStore`` minus durability."""

    def __init__(self) -> None:
        self._blobs: dict[str, tuple[bytes, float]] = {}
        self._damaged: dict[str, bytes] = {}

    def put(
        self, stream: BinaryIO, *, expected: str | None = None, progress: Progress | None = None
    ) -> BlobInfo:
        """Read ``stream`` fully, hash it, and keep it under its digest."""
        writer = self.writer(expected=expected)
        while chunk := stream.read(CHUNK):
            writer.write(chunk)
            if progress is not None:
                progress(len(chunk))
        return writer.commit()

    def writer(self, *, expected: str | None = None) -> _MemoryWriter:
        """A blob fed piece by piece, kept when committed."""
        return _MemoryWriter(self._blobs, check_digest(expected) if expected is not None else None)

    def exists(self, digest: str) -> bool:
        """Whether the blob is held."""
        return check_digest(digest) in self._blobs

    def size(self, digest: str) -> int:
        """The blob's size; raises ``BlobNotFound``."""
        return len(self._get(digest))

    def local_path(self, digest: str) -> None:
        """Memory blobs have no path."""
        check_digest(digest)

    def open(self, digest: str) -> BinaryIO:
        """A stream over the blob's bytes."""
        return io.BytesIO(self._get(digest))

    def delete(self, digest: str) -> bool:
        """Forget a blob."""
        return self._blobs.pop(check_digest(digest), None) is not None

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        """Every blob with the time it was stored."""
        for digest, (_, at) in sorted(self._blobs.items()):
            yield digest, at

    def clean_temporary(self, *, older_than: float) -> int:
        """Nothing is ever half-written in memory."""
        return 0

    def quarantine(self, digest: str, read: BinaryIO | None = None) -> bool:
        """Set the held copy aside as damaged (``read`` is not checked: nothing repairs here)."""
        held = self._blobs.pop(check_digest(digest), None)
        if held is None:
            return False
        self._damaged[check_digest(digest)] = held[0]
        return True

    def check(self, digest: str, size: int, progress: Progress | None = None) -> str | None:
        """What is wrong with the stored blob, or None (read and hashed)."""
        return check_by_reading(self, digest, size, progress)

    def quarantined(self, digest: str) -> bool:
        """Whether a damaged copy was set aside."""
        return check_digest(digest) in self._damaged

    def _get(self, digest: str) -> bytes:
        try:
            return self._blobs[check_digest(digest)][0]
        except KeyError:
            damaged = " (damaged: its copy was set aside)" if self.quarantined(digest) else ""
            raise BlobNotFound(
                f"blob sha256:{digest} is not stored{damaged}", detail={"digest": digest}
            ) from None

    def corrupt(self, digest: str, data: bytes) -> None:
        """Replace a blob's bytes behind the store's back (for integrity tests)."""
        self._blobs[check_digest(digest)] = (data, time.time())


class _MemoryWriter:
    def __init__(self, blobs: dict[str, tuple[bytes, float]], want: str | None) -> None:
        self._blobs = blobs
        self._want = want
        self._hasher = hashlib.sha256()
        self._buffer = io.BytesIO()

    def write(self, data: bytes) -> None:
        self._hasher.update(data)
        self._buffer.write(data)

    def commit(self) -> BlobInfo:
        digest = self._hasher.hexdigest()
        data = self._buffer.getvalue()
        self.abort()
        if self._want is not None and not hmac.compare_digest(digest, self._want):
            raise DigestMismatch(
                f"uploaded bytes hash to {digest}, not the declared {self._want}",
                detail={"expected": self._want, "actual": digest},
            )
        # The verified bytes replace a held copy, repairing a damaged one.
        created = digest not in self._blobs
        self._blobs[digest] = (data, time.time())
        return BlobInfo(digest, len(data), created=created)

    def abort(self) -> None:
        self._buffer = io.BytesIO()


__all__ = ["MemoryBlobStore"]

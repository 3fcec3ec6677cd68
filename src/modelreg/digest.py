"""Hashing helpers shared by the client and the stores: the verified copy every download uses."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import BinaryIO, Protocol

from modelreg.errors import IntegrityFailure

CHUNK = 1024 * 1024

Progress = Callable[[int], None]
"""Called with the number of bytes just moved; how it is shown is the caller's business."""


class Readable(Protocol):
    """Anything with ``read(size)``: a file, a socket stream, an upload body."""

    def read(self, size: int = -1, /) -> bytes: ...


def sha256_of(source: Readable, progress: Progress | None = None) -> tuple[str, int]:
    """The hex SHA-256 and size of everything ``source`` yields."""
    hasher = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        hasher.update(chunk)
        size += len(chunk)
        if progress is not None:
            progress(len(chunk))
    return hasher.hexdigest(), size


def copy_verified(
    source: Readable,
    target: BinaryIO,
    *,
    sha256: str,
    size: int,
    what: str,
    progress: Progress | None = None,
) -> None:
    """Copy ``source`` to ``target`` and fail unless the bytes match ``sha256`` and ``size``.

    Raises:
        IntegrityFailure: the stored bytes are not what the manifest promised; the caller must
            discard whatever was written to ``target``.
    """
    hasher = hashlib.sha256()
    copied = 0
    while chunk := source.read(CHUNK):
        hasher.update(chunk)
        target.write(chunk)
        copied += len(chunk)
        if progress is not None:
            progress(len(chunk))
    actual = hasher.hexdigest()
    if copied != size or not hmac.compare_digest(actual, sha256):
        raise IntegrityFailure(
            f"{what}: stored bytes do not match the manifest (expected sha256 {sha256}, "
            f"{size} bytes; found {actual}, {copied} bytes); refusing to return them",
            detail={"path": what, "expected": sha256, "actual": actual, "size": copied},
        )

"""``LocalBlobStore``: blobs in a folder, written atomically and never followed through links."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import hmac
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, cast

from modelreg.errors import BlobNotFound, DigestMismatch, InvalidInput, StorageFailure
from modelreg.storage.base import (
    CHUNK,
    BlobInfo,
    Progress,
    blob_key,
    check_by_reading,
    check_digest,
)


class LocalBlobStore:
    """A content-addressed store in ``root``: ``root/sha256/ab/cd/<hex>`` plus ``root/tmp``.

    Usage::

        store = LocalBlobStore("/var/lib/modelreg/blobs")
        info = store.put(open("model.onnx", "rb"))
        with store.open(info.sha256) as fh: ...
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self._tmp = self.root / "tmp"
        self._damaged = self.root / "damaged"

    def _path(self, digest: str) -> Path:
        path = self.root / blob_key(digest)
        # The key is built from a validated hex digest, so this cannot fail unless someone
        # planted a symlink inside the store; check anyway (SECURITY.md rule 2).
        if not path.resolve(strict=False).is_relative_to(self.root.resolve()):
            raise InvalidInput("blob path escapes the store", detail={"digest": digest})
        return path

    def put(
        self, stream: BinaryIO, *, expected: str | None = None, progress: Progress | None = None
    ) -> BlobInfo:
        """Stream to a temp file while hashing, fsync, then rename into place."""
        source = _Source(stream)
        writer = self.writer(expected=expected)
        try:
            while chunk := source.read(CHUNK):
                writer.write(chunk)
                if progress is not None:
                    progress(len(chunk))
            return writer.commit()
        except _SourceError as exc:
            # The bytes' source failed (a reset upload, an unreadable file): that is the
            # caller's error to report, not the store's.
            raise exc.original from None
        finally:
            writer.abort()

    def writer(self, *, expected: str | None = None) -> _LocalWriter:
        """A temp file in ``root/tmp`` fed piece by piece; ``commit`` renames it into place."""
        want = check_digest(expected) if expected is not None else None
        with self._failures():
            self._tmp.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix=_owner_prefix())
        return _LocalWriter(self, fd, tmp_name, want)

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            if isinstance(exc, _SourceError):
                raise
            raise StorageFailure(
                f"cannot write to the artifact store {self.root}: {exc.strerror or exc}",
                detail={"root": str(self.root), "errno": exc.errno},
            ) from None

    def _place(self, tmp_name: str, digest: str, size: int) -> BlobInfo:
        final = self._path(digest)
        existed = final.is_file()
        # The new bytes are verified; the stored copy may not be (a flipped byte, a truncated
        # file). Replacing it costs a rename, hashing it a read: so the verified copy always
        # takes its place, which repairs a damaged one atomically and, as a fresh file,
        # refreshes the blob's age (garbage collection spares young blobs, and this one is
        # about to be referenced by a registration that has not committed yet).
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp_name, 0o444)
        os.replace(tmp_name, final)
        _fsync_dir(final.parent)
        return BlobInfo(digest, size, created=not existed)

    def exists(self, digest: str) -> bool:
        """Whether the blob is stored."""
        path = self._path(digest)
        # A planted symlink is not a blob: open() refuses to follow it, so exists() agrees.
        return path.is_file() and not path.is_symlink()

    def size(self, digest: str) -> int:
        """The blob's size; raises ``BlobNotFound``."""
        path = self._path(digest)
        try:
            if path.is_symlink():
                raise FileNotFoundError(path)
            return path.stat().st_size
        except FileNotFoundError:
            raise self._not_found(digest) from None

    def local_path(self, digest: str) -> Path | None:
        """Where the blob lives on disk, for servers that send files by path."""
        return self._path(digest)

    def open(self, digest: str) -> BinaryIO:
        """Open the blob for reading, refusing to follow a symlink."""
        path = self._path(digest)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise self._not_found(digest) from None
        return os.fdopen(fd, "rb")

    def _not_found(self, digest: str) -> BlobNotFound:
        value = check_digest(digest)
        if self.quarantined(value):
            return BlobNotFound(
                f"blob sha256:{value} is damaged: its stored copy failed verification and was "
                f"set aside in {self._damaged}; upload the right bytes again (register the "
                "same files) or run `modelreg fsck --repair --from DIR` to restore it",
                detail={"digest": value, "damaged": True},
            )
        return BlobNotFound(
            f"blob sha256:{value} is missing from the artifact store", detail={"digest": value}
        )

    def quarantine(self, digest: str, read: BinaryIO | None = None) -> bool:
        """Move the stored copy to ``root/damaged/<hex>.<time>``: kept, no longer served."""
        path = self._path(digest)
        try:
            current = os.stat(path, follow_symlinks=False)
            if read is not None:
                seen = os.fstat(read.fileno())
                if (seen.st_dev, seen.st_ino) != (current.st_dev, current.st_ino):
                    return False  # repaired since it was read
            self._damaged.mkdir(parents=True, exist_ok=True)
            os.replace(path, self._damaged / f"{check_digest(digest)}.{time.time_ns()}")
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True

    def check(self, digest: str, size: int, progress: Progress | None = None) -> str | None:
        """What is wrong with the stored blob, or None (read and hashed)."""
        return check_by_reading(self, digest, size, progress)

    def quarantined(self, digest: str) -> bool:
        """Whether a damaged copy of ``digest`` lies in ``root/damaged``."""
        value = check_digest(digest)
        return self._damaged.is_dir() and any(self._damaged.glob(f"{value}.*"))

    def delete(self, digest: str) -> bool:
        """Remove one blob (garbage collection only)."""
        try:
            self._path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        """Walk ``sha256/`` and yield every well-formed blob with its mtime."""
        base = self.root / "sha256"
        if not base.is_dir():
            return
        for first in sorted(base.iterdir()):
            for second in sorted(first.iterdir()) if first.is_dir() else []:
                for blob in sorted(second.iterdir()) if second.is_dir() else []:
                    name = blob.name
                    if len(name) == 64 and name[:2] == first.name and name[2:4] == second.name:
                        yield name, blob.stat().st_mtime

    def clean_temporary(self, *, older_than: float) -> int:
        """Remove uploads abandoned by killed processes.

        A temp file's name says which process on which host writes it: one whose writer is
        dead goes at once, one whose writer lives stays however old; a file of another host
        (a shared folder) or of an older release goes once untouched since ``older_than``.
        """
        removed = 0
        if not self._tmp.is_dir():
            return 0
        for entry in self._tmp.iterdir():
            try:
                alive = _writer_alive(entry.name)
                stale = alive is None and entry.stat().st_mtime < older_than
                if entry.is_file() and (alive is False or stale):
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:  # pragma: no cover - raced with another cleaner
                continue
        return removed


_WRITEBACK_EVERY = 16 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # pragma: no cover - a libc without it
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return cast("Callable[[int, int, int, int], int]", function)


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range of ``fd`` to disk, without waiting for it.

    Otherwise the page cache holds the whole blob until the final fsync, which then waits
    for all of it (0.5 s for 1 GiB here); started as the bytes arrive, the disk writes
    alongside the upload and the fsync finds almost nothing left. Durability still comes
    from that fsync: this is only a head start, so its result is ignored, and platforms
    without ``sync_file_range`` (Linux's, as PostgreSQL's ``*_flush_after`` settings use)
    simply skip it.
    """
    function = _sync_file_range()
    if function is not None:
        function(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


class _LocalWriter:
    """One upload in ``root/tmp``: hashed as written, fsynced and renamed by ``commit``."""

    def __init__(self, store: LocalBlobStore, fd: int, tmp_name: str, want: str | None) -> None:
        self._store = store
        self._tmp_name = tmp_name
        self._want = want
        self._out: BinaryIO | None = os.fdopen(fd, "wb")
        self._hasher = hashlib.sha256()
        self._size = 0
        self._started = 0

    def write(self, data: bytes) -> None:
        if self._out is None:
            raise ValueError("write to a finished blob writer")
        with self._store._failures():
            self._hasher.update(data)
            self._out.write(data)
            self._size += len(data)
            if self._size - self._started >= _WRITEBACK_EVERY:
                _start_writeback(self._out.fileno(), self._started, self._size - self._started)
                self._started = self._size

    def commit(self) -> BlobInfo:
        if self._out is None:
            raise ValueError("commit of a finished blob writer")
        try:
            with self._store._failures():
                out, self._out = self._out, None
                with out:
                    out.flush()
                    os.fsync(out.fileno())
                digest = self._hasher.hexdigest()
                if self._want is not None and not hmac.compare_digest(digest, self._want):
                    raise DigestMismatch(
                        f"uploaded bytes hash to {digest}, not the declared {self._want}",
                        detail={"expected": self._want, "actual": digest},
                    )
                return self._store._place(self._tmp_name, digest, self._size)
        finally:
            self.abort()

    def abort(self) -> None:
        out, self._out = self._out, None
        if out is not None:
            # Closing flushes, which can fail on a full disk; the bytes are being dropped.
            with contextlib.suppress(OSError):
                out.close()
        # Gone already when renamed; otherwise this was a duplicate or a failure.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp_name)


class _SourceError(OSError):
    def __init__(self, original: OSError) -> None:
        super().__init__(str(original))
        self.original = original


class _Source:
    """Marks read errors of the incoming stream, to tell them apart from the store's own."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except OSError as exc:
            raise _SourceError(exc) from exc


@functools.cache
def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), None when there is no such one.

    With the pid it names a process for good: a pid reused by a later process has another
    start time. Linux only (``/proc``); elsewhere None, and uploads are judged by age.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_prefix() -> str:
    # Looked up for each upload (a read of /proc): forked workers have pids of their own.
    pid = os.getpid()
    return f"upload.{_host_tag()}.{pid}.{_start_time(pid) or '0'}."


def _writer_alive(name: str) -> bool | None:
    """Whether the writer of temp file ``name`` lives; None when that cannot be told here."""
    parts = name.split(".")
    if len(parts) != 5 or parts[0] != "upload" or parts[1] != _host_tag() or parts[3] == "0":
        return None
    if not sys.platform.startswith("linux") or not parts[2].isdigit():
        return None
    return _start_time(int(parts[2])) == parts[3]


def _fsync_dir(path: Path) -> None:
    # Without this a crash right after rename can lose the directory entry on some filesystems.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["LocalBlobStore"]

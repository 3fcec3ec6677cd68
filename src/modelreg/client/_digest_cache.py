"""The client's digest cache: a file's SHA-256 remembered by its ``stat``, as git's index does.

Registering a file needs its digest before the client can ask the server whether it already
has the blob, and hashing 1 GiB takes most of a second. The cache maps ``(real path, device,
inode, size, mtime, ctime)`` to the SHA-256, in a small SQLite file under the user's cache
folder, so re-registering an unchanged file reads none of it. ``MODELREG_DIGEST_CACHE`` names
another file, or turns the cache off (``0``, ``off``, ``false``, ``no``).

A hit needs the whole stat tuple to match. The ctime is in it because no user call can set it:
``touch -d``, ``cp -p`` and ``rsync -t`` restore an mtime, but every one of them moves the
ctime. Nothing the cache does can break a registration: a corrupt, locked, unwritable or
foreign cache file only means the file is hashed, and the server still hashes every byte it
receives. The cache is used only in a folder that is the user's and that no one else can write.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from modelreg.digest import sha256_of

ENV = "MODELREG_DIGEST_CACHE"
_OFF = {"0", "off", "false", "no"}
MIN_SIZE = 1024 * 1024
"""Smaller files are hashed: that is quicker than a lookup."""
MAX_ENTRIES = 20_000
"""Past this, the least recently used tenth is dropped (an entry is ~200 bytes)."""
RACY_MARGIN_NS = 2_000_000_000
"""How much older than the start of hashing a file's mtime and ctime must be to be recorded.

Git's "racy git" problem: file timestamps are coarse (Linux stamps them from a clock that
advances once per scheduler tick, 1–10 ms; FAT counts in 2 s steps), so a file written again
within the same tick after we hashed it keeps the same size, mtime and ctime, and a later
lookup would return the old digest. A file whose timestamps are well before the moment
hashing began cannot have been written since without the timestamps moving. Two seconds also
covers FAT and a network filesystem whose server clock lags ours by a little; a file that is
too young is simply hashed again next time, when it will be old enough.
"""
_HEX64 = re.compile(r"[0-9a-f]{64}")
_REFRESH_NS = 3600 * 1_000_000_000
"""A hit rewrites its ``used_at`` at most this often, so lookups rarely need a write lock."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS digests (
    path TEXT PRIMARY KEY,
    stat TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    used_at INTEGER NOT NULL
)
"""


def default_path() -> Path | None:
    """The cache file ``MODELREG_DIGEST_CACHE`` names, the user's default, or ``None`` (off)."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in _OFF:
        return None
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("modelreg", appauthor=False)) / "digests.sqlite"


def _require_private(path: Path) -> None:
    """Raise ``PermissionError`` unless ``path`` is this user's and only they can write it."""
    info = os.stat(path)
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
        raise PermissionError(f"{path} is not private to this user")


def _signature(info: os.stat_result) -> str:
    # Text, not integers: inode and device numbers can pass SQLite's signed 64-bit range.
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"


@dataclass(frozen=True, slots=True)
class FileDigest:
    """A file's SHA-256 and size, and whether they came from the cache without reading it."""

    sha256: str
    size: int
    cached: bool


class DigestCache:
    """SHA-256 of local files, remembered across processes by their stat.

    Usage::

        with DigestCache(default_path()) as cache:
            found = cache.digest(Path("model.safetensors"))

    New entries are written when the cache is closed, in one transaction.

    Args:
        path: the SQLite file; ``None`` turns the cache off (every call hashes).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        min_size: int = MIN_SIZE,
        max_entries: int = MAX_ENTRIES,
        margin_ns: int = RACY_MARGIN_NS,
    ) -> None:
        # ctime means "inode changed" only on POSIX systems; on Windows it is the creation
        # time, which would let an edit that restores the mtime go unnoticed.
        self.path = path if os.name == "posix" else None
        self.min_size = min_size
        self.max_entries = max_entries
        self.margin_ns = margin_ns
        self._db: sqlite3.Connection | None = None
        self._broken = False
        self._pending: dict[str, tuple[str, str]] = {}

    def __enter__(self) -> DigestCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def digest(self, source: Path) -> FileDigest:
        """The SHA-256 and size of ``source``: from the cache when its stat is unchanged.

        Raises:
            OSError: ``source`` cannot be read (the cache never raises).
        """
        info = os.stat(source)
        use = self.path is not None and info.st_size >= self.min_size
        key = os.path.realpath(source) if use else ""
        if use:
            hit = self._lookup(key, _signature(info))
            if hit is not None:
                return FileDigest(hit, info.st_size, cached=True)
        started = time.time_ns()
        with open(source, "rb") as fh:
            before = os.fstat(fh.fileno())
            sha256, size = sha256_of(fh)
            after = os.fstat(fh.fileno())
        signature = _signature(before)
        newest = max(before.st_mtime_ns, before.st_ctime_ns)
        if (
            use
            and signature == _signature(after)
            and size == before.st_size
            and newest < started - self.margin_ns
        ):
            self._pending[key] = (signature, sha256)
        return FileDigest(sha256, size, cached=False)

    def forget(self, source: Path) -> None:
        """Drop what is known of ``source`` (its cached digest proved wrong)."""
        key = os.path.realpath(source)
        self._pending.pop(key, None)
        db = self._connect()
        if db is None:
            return
        try:
            db.execute("DELETE FROM digests WHERE path = ?", (key,))
        except sqlite3.Error:
            self._give_up()

    def close(self) -> None:
        """Write the entries recorded since opening, then release the file."""
        try:
            if self._pending:
                self._write()
        finally:
            self._pending.clear()
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None

    # -- the file ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is not None or self._broken or self.path is None:
            return self._db
        try:
            self._db = self._open(self.path)
        except (OSError, sqlite3.Error):
            self._give_up()
        return self._db

    def _open(self, path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Whoever can write the cache chooses the digests this client registers; so does
        # whoever can write its folder: SQLite plays back a "-journal" file it finds there.
        _require_private(path.parent)
        # Created private: it lists paths of the user's files.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        _require_private(path)
        # Autocommit; a writer holding the lock (another process) is waited for briefly,
        # then the cache is skipped rather than the registration delayed.
        db = sqlite3.connect(path, timeout=1.0, isolation_level=None)
        try:
            db.execute(_SCHEMA)
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _give_up(self) -> None:
        self._broken = True
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def _lookup(self, key: str, signature: str) -> str | None:
        db = self._connect()
        if db is None:
            return None
        try:
            row = db.execute(
                "SELECT stat, sha256, used_at FROM digests WHERE path = ?", (key,)
            ).fetchone()
            if row is None or row[0] != signature:
                return None
            now = time.time_ns()
            if row[2] < now - _REFRESH_NS:
                db.execute("UPDATE digests SET used_at = ? WHERE path = ?", (now, key))
        except sqlite3.Error:
            self._give_up()
            return None
        sha256 = row[1]
        return sha256 if isinstance(sha256, str) and _HEX64.fullmatch(sha256) else None

    def _write(self) -> None:
        db = self._connect()
        if db is None:
            return
        now = time.time_ns()
        rows = [(key, sig, sha, now) for key, (sig, sha) in self._pending.items()]
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO digests (path, stat, sha256, used_at) "
                    "VALUES (?, ?, ?, ?)",
                    rows,
                )
                (count,) = db.execute("SELECT count(*) FROM digests").fetchone()
                if count > self.max_entries:
                    excess = count - self.max_entries + self.max_entries // 10
                    db.execute(
                        "DELETE FROM digests WHERE path IN "
                        "(SELECT path FROM digests ORDER BY used_at LIMIT ?)",
                        (excess,),
                    )
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error:
            self._give_up()

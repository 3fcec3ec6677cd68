"""A registry-wide change stamp, and a cache that stays correct across processes by it.

Every change to a registry appends an audit event in the same transaction (SECURITY.md rule
12), and appending bumps the audit head's sequence number. So that number is a change stamp:
while it stands still, nothing any process could read has changed. A cached answer stored
with the stamp it was computed under is served only while the stamp is the same, which keeps
many stateless workers correct with no cross-process invalidation at all. Reading the stamp is
one primary-key lookup, far cheaper than the queries it saves.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, select
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.orm import Session

from modelreg.db.tables import AuditHead


def current(session: Session) -> int:
    """The registry's change stamp: the audit log's last sequence number.

    Read it *before* the data a cached answer is built from, so an answer is never stored
    under a stamp newer than the data it saw.
    """
    return int(session.scalar(select(AuditHead.last_seq).where(AuditHead.id == 1)) or 0)


class StampedCache:
    """A bounded LRU of answers, each valid only under the stamp it was computed at.

    Bounded by entries and by the bytes of the answers' bodies: the keys include request
    query strings, so a client sending endless distinct searches must only churn the cache,
    never grow the server past its budget.
    """

    def __init__(self, size: int = 4096, max_bytes: int = 32 * 2**20) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict[Hashable, tuple[int, Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, stamp: int) -> Any | None:
        """The answer cached for ``key`` under ``stamp``, or ``None``."""
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] != stamp:
                return None
            self._items.move_to_end(key)
            return item[1]

    def peek(self, key: Hashable) -> Any | None:
        """The answer cached for ``key`` under any stamp (to skip work when there is none)."""
        item = self._items.get(key)
        return None if item is None else item[1]

    def put(self, key: Hashable, stamp: int, value: Any, nbytes: int = 0) -> None:
        """Remember ``value`` (``nbytes`` large) for ``key`` as computed under ``stamp``."""
        if nbytes > self._max_bytes // 8:
            return  # one answer may not push out most of the others
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            self._items[key] = (stamp, value, nbytes)
            self._bytes += nbytes
            while len(self._items) > self._size or self._bytes > self._max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted[2]

    @property
    def nbytes(self) -> int:
        """The bytes of the answers held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)


class SqliteStampReader:
    """Read a SQLite registry's change stamp in microseconds, on whatever thread asks.

    The server's cached-read fast path (``api.answers``) reads the stamp on the event loop, so
    it must never wait: each thread gets its own autocommit connection, outside the engine's
    pool (a pool whose connections are all lent to worker threads would block the loop). In
    WAL mode a reader never waits for a writer, and every statement sees the last commit.
    """

    # The same statement as ``current``, compiled once for SQLite.
    SQL = str(
        select(AuditHead.last_seq)
        .where(AuditHead.id == 1)
        .compile(dialect=sqlite_dialect(), compile_kwargs={"literal_binds": True})
    )

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    @classmethod
    def for_engine(cls, engine: Engine) -> SqliteStampReader | None:
        """A reader for ``engine``'s database file, or ``None`` (not SQLite, or in memory)."""
        url = engine.url
        if url.get_backend_name() != "sqlite" or url.query:
            return None
        if url.database in (None, "", ":memory:"):
            return None
        return cls(str(url.database))

    def read(self) -> int | None:
        """The stamp, or ``None`` when it cannot be read now (the caller takes the slow path)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        try:
            if conn is None:
                # timeout=0: never sleep on the loop; a busy database means the slow path.
                # mode=rw: a database file that went away is an error here, never a new file.
                conn = sqlite3.connect(
                    f"file:{quote(self.path)}?mode=rw",
                    uri=True,
                    timeout=0,
                    isolation_level=None,
                    check_same_thread=True,
                )
                conn.execute("PRAGMA query_only = 1")
                self._local.conn = conn
            row = conn.execute(self.SQL).fetchone()
        except sqlite3.Error:
            self.close()
            return None
        return int(row[0]) if row and row[0] is not None else 0

    def close(self) -> None:
        """Close this thread's connection (the next read opens another)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

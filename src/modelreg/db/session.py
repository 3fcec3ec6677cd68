"""Engines and transactions: SQLite tuned for many writers, PostgreSQL as it comes."""

from __future__ import annotations

import functools
import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from modelreg.db import disk, stamp

# Writers wait this long for SQLite's lock before failing; 30 processes registering at once
# queue for well under a second each, so a minute is generous without hanging forever.
SQLITE_BUSY_TIMEOUT_MS = 60_000


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the pragmas and begin-mode modelreg relies on.

    Every committed write to a registry table moves the change stamp (``db.stamp.watch``). On
    SQLite: WAL, ``busy_timeout``, foreign keys on, and write transactions opened with
    ``BEGIN IMMEDIATE`` (SECURITY.md rule 8) so two writers never both read-then-upgrade.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)
        _tune_sqlite(engine)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **kwargs)
    stamp.watch(engine)
    disk.watch(engine)
    return engine


@functools.lru_cache(maxsize=256)
def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = ("." if ch == "_" else ".*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.DOTALL)


def like_matches(value: str | None, pattern: str | None) -> bool | None:
    """SQL ``LIKE`` with case kept, as SQLite's under ``PRAGMA case_sensitive_like``.

    ``%`` is any run of characters, ``_`` one character, there is no escape; NULL gives NULL.
    """
    if value is None or pattern is None:
        return None
    return _like_regex(str(pattern)).fullmatch(str(value)) is not None


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling would open deferred transactions behind our
        # back; turn it off and issue BEGIN ourselves below.
        dbapi_conn.isolation_level = None
        # MLflow's LIKE is case-sensitive; SQLite's is not, and PRAGMA case_sensitive_like
        # would change /api/v1's LIKE too. The MLflow door calls this function instead.
        dbapi_conn.create_function("modelreg_like", 2, like_matches, deterministic=True)
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            # WAL with synchronous=FULL keeps a committed row durable across power loss.
            cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("modelreg_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose sessions never expire objects on commit."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any exception.

    ``write=True`` takes SQLite's write lock up front, which is what makes version allocation
    and the audit chain race-free across processes.
    """
    if not write:
        with Session(bind=engine, expire_on_commit=False) as session, session.begin():
            yield session
        return
    bind = engine.execution_options(modelreg_write=True)
    # SQLite admits one writer; threads of one process queue on a lock here instead of in
    # SQLite's busy handler, whose growing sleeps gave concurrent writers a long tail.
    with (
        _writer_lock(engine),
        Session(bind=bind, expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session


_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_WRITER_LOCKS_GUARD = threading.Lock()


@contextmanager
def _writer_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "sqlite":
        yield
        return
    with _WRITER_LOCKS_GUARD:
        lock = _WRITER_LOCKS.setdefault(engine, threading.RLock())
    with lock:
        yield

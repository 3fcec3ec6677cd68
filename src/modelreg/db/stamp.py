"""The registry's change stamp: a counter every committed registry write moves, in the database.

Servers cache answers in memory (``api.answers``) and keep each under the stamp it was computed
at; an answer is served only while the stamp is the same. The stamp lives in the database, so
a write by any process (another server worker, the embedded ``Registry``, a CLI on the same
database) ends every process's cached answers with no cross-process messages at all.

The stamp is moved by the engine, not by the code that writes: ``watch`` listens to every
statement a connection sends, notes a write to a stamped table, and bumps the counter in the
same transaction just before it commits. ORM flushes, bulk statements and raw SQL all pass
through there, so no write path can forget it; a rolled-back transaction bumps nothing.

Stamped tables are all tables but ``alembic_version``, the counter itself, and the MLflow
door's tracking scratch state (``mlflow_*``: experiments, runs, logged models, their
artifacts), which no cached answer reads. A metric logged every second by a training job
therefore leaves served answers cached. A cached answer that comes to read an ``mlflow_*``
table must take it out of ``UNSTAMPED_PREFIXES`` first.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from sqlalchemy import BigInteger, CheckConstraint, Connection, Engine, Integer, event, select
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import TextClause

from modelreg.db.base import Base


class ChangeStamp(Base):
    """The single row holding the change stamp."""

    __tablename__ = "change_stamp"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)


# The read and the bump as plain SQL: the same text on SQLite and PostgreSQL, and the read is
# what ``api.cache.StampReader`` sends on its own SQLite connections.
READ_SQL = "SELECT value FROM change_stamp WHERE id = 1"
BUMP_SQL = "UPDATE change_stamp SET value = value + 1 WHERE id = 1 RETURNING value"
# On PostgreSQL the bump also tells every process that LISTENs on ``NOTIFY_CHANNEL`` (the event
# stream's waiters, ``db.changes``): the notice is sent only if the transaction commits, and
# carries the new stamp. One round trip, as the bump alone was.
NOTIFY_CHANNEL = "modelreg_events"
BUMP_NOTIFY_SQL = (
    "WITH bumped AS (UPDATE change_stamp SET value = value + 1 WHERE id = 1 RETURNING value) "
    "SELECT value, pg_notify('modelreg_events', value::text) FROM bumped"
)
_READ = select(ChangeStamp.value).where(ChangeStamp.id == 1)

# Writes to these tables leave the stamp alone (see the module docstring).
UNSTAMPED_PREFIXES = ("mlflow_",)
# Sign-ins and sign-outs change no answer a server caches; stamping them would flush every
# worker's cache on each one.
# Likewise notifications: no cached answer reads them, and the delivery worker writes its
# bookkeeping (cursors, deliveries, attempts, its lease) on every try of every webhook.
UNSTAMPED_TABLES = frozenset(
    {
        ChangeStamp.__tablename__,
        "alembic_version",
        "web_sessions",
        "webhooks",
        "webhook_deliveries",
        "delivery_attempts",
        "worker_leases",
        # Serve processes' heartbeats (every few seconds each); the scan cache per digest
        # (a version's own ``scan`` column carries the answer and is stamped).
        "deployments",
        "blob_scans",
    }
)

_WROTE = "modelreg_stamp_wrote"  # on the connection's info: a stamped table changed
_DDL = "modelreg_stamp_ddl"  # the schema changed: a migration, which bumps nothing
_BUMPED = "modelreg_stamp_bumped"  # the stamp this transaction committed, until check-in

# Statements that change no rows; anything not recognised counts as a write (a needless bump
# costs a cache miss, a missed one a stale answer).
_NOT_A_WRITE = re.compile(
    r"\s*(?:SELECT|BEGIN|SAVEPOINT|RELEASE|ROLLBACK|COMMIT|PRAGMA|SHOW|SET|EXPLAIN|VALUES)\b",
    re.IGNORECASE,
)
_SCHEMA = re.compile(r"\s*(?:CREATE|DROP|ALTER)\b", re.IGNORECASE)
_WRITE_TO = re.compile(
    r"\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)"
    r'\s+"?(\w+)',
    re.IGNORECASE,
)


def current(session: Session) -> int:
    """The registry's change stamp.

    Read it *before* the data a cached answer is built from, so an answer is never stored
    under a stamp newer than the data it saw.
    """
    return int(session.scalar(_READ) or 0)


def is_stamped(table: str) -> bool:
    """Whether a write to ``table`` moves the change stamp."""
    return table not in UNSTAMPED_TABLES and not table.startswith(UNSTAMPED_PREFIXES)


def _changes_stamped_rows(statement: str, context: DefaultExecutionContext | None) -> bool:
    compiled = getattr(context, "compiled", None)
    if compiled is not None and not isinstance(compiled.statement, TextClause):
        # Built by SQLAlchemy (ORM flushes included): its kind and table are known exactly.
        assert context is not None
        if context.isinsert or context.isupdate or context.isdelete:
            return is_stamped(compiled.statement.table.name)
        if not context.isddl:
            return False
    if _NOT_A_WRITE.match(statement):
        return False
    target = _WRITE_TO.match(statement)
    return target is None or is_stamped(target[1])


def watch(engine: Engine) -> None:
    """Make every committed transaction of ``engine`` that wrote a stamped table move the stamp.

    Called by ``session.make_engine`` for every engine modelreg opens. Once the commit is
    done, the new stamp goes to the engine's ``on_commit`` listeners.
    """
    bump = BUMP_NOTIFY_SQL if engine.dialect.name == "postgresql" else BUMP_SQL

    @event.listens_for(engine, "before_cursor_execute")
    def _note(
        conn: Connection,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        context: DefaultExecutionContext | None,
        _executemany: bool,
    ) -> None:
        info = conn.info
        if (context is not None and context.isddl) or _SCHEMA.match(statement):
            info[_DDL] = True
        elif not info.get(_WROTE) and _changes_stamped_rows(statement, context):
            info[_WROTE] = True

    @event.listens_for(engine, "commit")
    def _bump(conn: Connection) -> None:
        info = conn.info
        # A migration may have just created or dropped the counter; servers check the
        # schema's revision when they start, so it has no cached answers to end.
        if info.pop(_WROTE, False) and not info.pop(_DDL, False):
            value = conn.exec_driver_sql(bump).scalar()
            # The "commit" event comes before the commit itself: the listeners hear of it when
            # the connection goes back to the pool, after the commit succeeded.
            info[_BUMPED] = int(value or 0)
        info.pop(_WROTE, None)
        info.pop(_DDL, None)

    @event.listens_for(engine, "begin")
    @event.listens_for(engine, "rollback")
    def _forget(conn: Connection) -> None:
        # The flags live on the pooled DBAPI connection: clear them for its next transaction.
        info = conn.info
        info.pop(_WROTE, None)
        info.pop(_DDL, None)
        info.pop(_BUMPED, None)

    @event.listens_for(engine, "checkin")
    def _committed(dbapi_conn: Any, record: Any) -> None:
        value = record.info.pop(_BUMPED, None)
        if value is not None and dbapi_conn is not None:
            for listener in list(_LISTENERS.get(engine, ())):
                listener(value)


_LISTENERS: weakref.WeakKeyDictionary[Engine, list[Callable[[int], None]]] = (
    weakref.WeakKeyDictionary()
)
_LISTENERS_GUARD = threading.Lock()


def on_commit(engine: Engine, listener: Callable[[int], None]) -> Callable[[], None]:
    """Call ``listener(stamp)`` after each commit of ``engine`` that moved the stamp.

    It runs on the committing thread, so it must only hand the news on. Returns the function
    that removes it.
    """
    with _LISTENERS_GUARD:
        _LISTENERS.setdefault(engine, []).append(listener)

    def remove() -> None:
        with _LISTENERS_GUARD:
            listeners = _LISTENERS.get(engine, [])
            if listener in listeners:
                listeners.remove(listener)

    return remove


class SqliteStampReader:
    """Read a SQLite registry's change stamp in microseconds, on whatever thread asks.

    The server's cached-read fast path (``api.answers``) reads the stamp on the event loop, so
    it must never wait: each thread gets its own autocommit connection, outside the engine's
    pool (a pool whose connections are all lent to worker threads would block the loop). In
    WAL mode a reader never waits for a writer, and every statement sees the last commit.
    """

    SQL = READ_SQL  # what ``db.stamp.current`` reads

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

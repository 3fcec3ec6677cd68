"""News of registry changes for whoever waits on them: one ``ChangeFeed`` per engine and process.

The event stream's long-poll (``api.events_hub``, ``Registry.events``) parks until the registry
changes, without asking the database on behalf of each waiter. The feed knows the newest change
stamp (``db.stamp``) it has heard of, from three sources:

- commits of this process, told by the engine once they are done (``stamp.on_commit``);
- on PostgreSQL (psycopg), the notice each committed stamp bump sends
  (``pg_notify``, channel ``stamp.NOTIFY_CHANNEL``), heard by one ``LISTEN`` connection;
- elsewhere (SQLite, another driver), one thread reading the stamp every ``interval`` while
  anyone waits: microseconds on a SQLite file (``stamp.SqliteStampReader``).

A waiter passes the stamp it read with its data and waits for a newer one. Stamps are absolute,
so news that arrived before the waiter started waiting still counts: none can be missed
between reading and waiting. The listener and the poller report the stamp they read as they
start, which covers commits made before they were listening.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Engine

from modelreg.db import stamp

log = logging.getLogger("modelreg.changes")

# How often the poller reads the stamp while someone waits: a commit in another process wakes
# waiters within this (plus their query), and an idle registry costs nothing between waits.
POLL_INTERVAL = 0.025
# How long the listener blocks per round, so that ``close`` is heard within it.
LISTEN_ROUND = 0.5
RECONNECT_BACKOFF = (0.1, 5.0)


class ChangeFeed:
    """The newest change stamp this process knows of, and ways to wait for a newer one.

    ``wait`` blocks a thread (the embedded backend); ``subscribe`` hands each newer stamp to
    a callback (the server's ``EventHub``, which wakes its coroutines). Cross-process sources
    run only once someone has waited (``watching``): a server nobody follows opens no
    listening connection and polls nothing.
    """

    def __init__(self, engine: Engine, *, interval: float = POLL_INTERVAL) -> None:
        self.engine = engine
        self.interval = interval
        self.latest = 0
        self._cond = threading.Condition()
        self._subscribers: list[Callable[[int], None]] = []
        self._watchers = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._remove = stamp.on_commit(engine, self.note)

    def note(self, value: int) -> None:
        """Learn of stamp ``value``; waiters wake if it is newer than any before."""
        with self._cond:
            if value <= self.latest:
                return
            self.latest = value
            self._cond.notify_all()
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(value)

    def subscribe(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(stamp)`` (on any thread) whenever a newer stamp is heard of."""
        with self._cond:
            self._subscribers.append(callback)

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Keep the cross-process source running while the block runs (the poller stops after)."""
        with self._cond:
            self._watchers += 1
            if self._thread is None and not self._closed:
                target = self._listen if self._listens() else self._poll
                thread = threading.Thread(target=target, name="modelreg-change-feed", daemon=True)
                # Kept only once started: a Ctrl-C that lands inside ``start`` must not leave
                # ``close`` a thread it cannot join (seen in CI as "cannot join thread before
                # it is started" from a CLI following events).
                thread.start()
                self._thread = thread
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._watchers -= 1

    def wait(self, after: int, timeout: float) -> bool:
        """Block until a stamp newer than ``after`` is heard of (``True``), or ``timeout`` ends."""
        with self.watching(), self._cond:
            self._cond.wait_for(lambda: self.latest > after or self._closed, timeout)
            return self.latest > after

    def close(self) -> None:
        """Stop the listener or poller and forget the engine's commits."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        self._remove()
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=LISTEN_ROUND * 4)

    # -- sources -------------------------------------------------------------------------

    def _listens(self) -> bool:
        return self.engine.dialect.name == "postgresql" and self.engine.dialect.driver == "psycopg"

    def _poll(self) -> None:
        sqlite = stamp.SqliteStampReader.for_engine(self.engine)
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._closed or self._watchers > 0)
                    if self._closed:
                        return
                value = sqlite.read() if sqlite is not None else self._read_with_engine()
                if value is not None:
                    self.note(value)
                time.sleep(self.interval)
        finally:
            if sqlite is not None:
                sqlite.close()

    def _read_with_engine(self) -> int | None:
        try:
            with self.engine.connect() as conn:
                return int(conn.exec_driver_sql(stamp.READ_SQL).scalar() or 0)
        except Exception:  # a database that is down now: the next round tries again
            log.debug("reading the change stamp failed", exc_info=True)
            return None

    def _listen(self) -> None:
        delay = RECONNECT_BACKOFF[0]
        while not self._closed:
            try:
                self._listen_once()
                delay = RECONNECT_BACKOFF[0]
            except Exception as exc:  # the connection dropped: listen again on a new one
                log.warning("listening for registry changes failed (%s); retrying", exc)
                time.sleep(delay)
                delay = min(delay * 2, RECONNECT_BACKOFF[1])

    def _listen_once(self) -> None:
        raw = self.engine.raw_connection()
        conn: Any = raw.driver_connection  # before detaching, which forgets it here
        raw.detach()  # its own connection for good: never back to the pool, never counted
        try:
            conn.rollback()
            conn.autocommit = True
            conn.execute(f"LISTEN {stamp.NOTIFY_CHANNEL}")
            # Commits made before LISTEN took effect sent their notice to nobody.
            self.note(int(conn.execute(stamp.READ_SQL).fetchone()[0] or 0))
            while not self._closed:
                for notice in conn.notifies(timeout=LISTEN_ROUND):
                    with contextlib.suppress(ValueError):
                        self.note(int(notice.payload))
        finally:
            raw.close()

"""The delivery worker: one active across every process sharing the database.

A process works only while it holds the ``WorkerLease`` row ``delivery``; it renews the lease
every few seconds and another process takes over once it has expired (a killed worker is
replaced within one lease period; at most the delivery it was sending goes out twice). Each
pass fans new events out to deliveries, then sends, per subscription, only its oldest pending
delivery, so each subscription receives its events in order while a slow one holds up no other.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, event, func, select, update
from sqlalchemy.exc import IntegrityError

from modelreg.config import Settings
from modelreg.db.base import utcnow
from modelreg.db.session import transaction
from modelreg.db.tables.notify import DeliveryState, Webhook, WebhookDelivery, WorkerLease
from modelreg.services.delivery import fanout, send
from modelreg.services.delivery.attempt import Delivered, prepare_and_send, record_attempt
from modelreg.services.secrets import Sealer

__all__ = ["LEASE_NAME", "Backoff", "DeliveryWorker", "acquire_lease", "release_lease"]

log = logging.getLogger("modelreg.delivery")

LEASE_NAME = "delivery"
_EVENT_WRITTEN = "modelreg_delivery_event_written"  # on a connection's info, until its commit


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry timing: exponential with full jitter, ``Retry-After`` honoured.

    A delivery is given up after ``give_up`` seconds (a day: about 30 tries by default).
    """

    base: float = 10.0
    cap: float = 3600.0
    give_up: float = 86400.0
    timeout: float = 10.0  # one attempt, per phase (connect, each read)

    def delay(self, attempts: int, retry_after: float | None) -> float:
        """Seconds until the next try after ``attempts`` failed ones."""
        ceiling = min(self.cap, self.base * 2 ** min(attempts, 30))
        wait = random.uniform(0, ceiling)  # noqa: S311 (jitter, not a secret)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.give_up))
        return wait


def acquire_lease(engine: Engine, holder: str, seconds: float) -> bool:
    """Take or renew the delivery lease for ``holder``; whether it holds it now."""
    now = utcnow()
    try:
        with transaction(engine, write=True) as session:
            lease = session.scalars(
                select(WorkerLease).where(WorkerLease.name == LEASE_NAME).with_for_update()
            ).one_or_none()
            if lease is None:
                lease = WorkerLease(name=LEASE_NAME, holder=holder, expires_at=now)
                session.add(lease)
            elif lease.holder != holder and lease.expires_at > now:
                return False
            lease.holder = holder
            lease.expires_at = now + timedelta(seconds=seconds)
    except IntegrityError:  # another process inserted the row first: it holds the lease
        return False
    return True


def release_lease(engine: Engine, holder: str) -> None:
    """Give the lease up (on a clean stop) so another process takes over at once."""
    with transaction(engine, write=True) as session:
        session.execute(
            update(WorkerLease)
            .where(WorkerLease.name == LEASE_NAME, WorkerLease.holder == holder)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


class DeliveryWorker:
    """Fans out and sends.

    ``run_once`` serves ``modelreg deliver --once``; ``start``/``stop`` a server's thread and
    ``modelreg deliver``.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        backoff: Backoff | None = None,
        poll: float = 1.0,
        lease_seconds: float = 15.0,
        concurrency: int = 8,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.backoff = backoff or Backoff()
        self.poll = poll
        self.lease_seconds = lease_seconds
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._sealer: Sealer | None = None  # made on first send: it may create secret.key
        self.client = send.http_client()
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="modelreg-deliver")
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._renewed_at: datetime | None = None

    def _holds_lease(self) -> bool:
        now = utcnow()
        renew_every = timedelta(seconds=self.lease_seconds / 3)
        if self._renewed_at is not None and now - self._renewed_at < renew_every:
            return True
        with transaction(self.engine, write=False) as session:
            if not fanout.work_waiting(session):
                held = session.get(WorkerLease, LEASE_NAME)
                if held is None or held.holder != self.holder:
                    return False  # nothing to do: do not take a write lock for the lease
        if acquire_lease(self.engine, self.holder, self.lease_seconds):
            self._renewed_at = now
            return True
        self._renewed_at = None
        return False

    def _due(self, busy: set[uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Each enabled subscription's oldest pending delivery, if it is due now."""
        with transaction(self.engine, write=False) as session:
            heads = (
                select(WebhookDelivery.webhook_id, func.min(WebhookDelivery.event_seq).label("s"))
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(
                    WebhookDelivery.state == DeliveryState.PENDING, Webhook.disabled_at.is_(None)
                )
                .group_by(WebhookDelivery.webhook_id)
                .subquery()
            )
            rows = session.execute(
                select(WebhookDelivery.id, WebhookDelivery.webhook_id)
                .join(
                    heads,
                    (heads.c.webhook_id == WebhookDelivery.webhook_id)
                    & (heads.c.s == WebhookDelivery.event_seq),
                )
                .where(
                    WebhookDelivery.state == DeliveryState.PENDING,
                    WebhookDelivery.next_attempt_at <= utcnow(),
                )
            ).all()
        return [(row.id, row.webhook_id) for row in rows if row.webhook_id not in busy]

    def _fan_out(self) -> None:
        # Look first: the write transaction takes SQLite's writer lock, registrations' too.
        with transaction(self.engine, write=False) as session:
            if not fanout.events_waiting(session):
                return
        with transaction(self.engine, write=True) as session:
            fanout.fan_out(session)

    @property
    def sealer(self) -> Sealer:
        """Opens the stored signing secrets (the server's key)."""
        if self._sealer is None:
            self._sealer = Sealer(self.settings.sealing_key())
        return self._sealer

    def _deliver(self, delivery_id: uuid.UUID) -> Delivered | None:
        outcome = prepare_and_send(
            self.engine, self.settings, self.sealer, self.client, delivery_id, self.backoff
        )
        if outcome is None:
            return None
        return record_attempt(self.engine, delivery_id, outcome, self.backoff)

    def run_once(self) -> int:
        """Deliver everything due now, if this process holds the lease; how many attempts."""
        if not self._holds_lease():
            return 0
        self._fan_out()
        total = 0
        while not self._stop.is_set():
            due = self._due(set())
            if not due:
                break
            list(self.pool.map(self._deliver, [delivery_id for delivery_id, _ in due]))
            total += len(due)
            if not self._holds_lease():
                break
            self._fan_out()
        return total

    def _loop(self) -> None:
        flying: dict[uuid.UUID, Future[Delivered | None]] = {}
        while not self._stop.is_set():
            try:
                flying = {k: f for k, f in flying.items() if not f.done()}
                if self._holds_lease():
                    self._fan_out()
                    for delivery_id, webhook_id in self._due(set(flying)):
                        future = self.pool.submit(self._deliver, delivery_id)
                        future.add_done_callback(lambda _f: self._wake.set())
                        flying[webhook_id] = future
            except Exception:  # the worker must outlive a database hiccup
                log.exception("delivery pass failed; retrying")
            self._wake.wait(self.poll)
            self._wake.clear()

    def wake(self) -> None:
        """Look for work now rather than at the next poll (after a commit, say)."""
        self._wake.set()

    def _on_execute(self, conn: Connection, *args: Any) -> None:
        context = args[-2]  # (cursor, statement, parameters, context, executemany)
        compiled = getattr(context, "compiled", None)
        table = getattr(getattr(compiled, "statement", None), "table", None)
        if getattr(context, "isinsert", False) and getattr(table, "name", None) == "audit_events":
            conn.info[_EVENT_WRITTEN] = True

    def _on_checkin(self, _dbapi_conn: Any, record: Any) -> None:
        # A connection whose transaction wrote an audit event (a change, not one of the
        # worker's own writes) is back in the pool: its commit is done and visible now. (The
        # engine's "commit" event comes before the commit itself: too early to look.)
        if record is not None and record.info.pop(_EVENT_WRITTEN, False):
            self._wake.set()

    def _on_rollback(self, conn: Connection) -> None:
        conn.info.pop(_EVENT_WRITTEN, None)

    def start(self) -> DeliveryWorker:
        """Run in a daemon thread until ``stop``.

        A change committed through this process's engine (served here) wakes it; changes
        made by other processes are seen at the next poll (every second).
        """
        event.listen(self.engine, "before_cursor_execute", self._on_execute)
        event.listen(self.engine, "rollback", self._on_rollback)
        event.listen(self.engine.pool, "checkin", self._on_checkin)
        self._thread = threading.Thread(target=self._loop, name="modelreg-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop, wait a little for sends in flight, give the lease up."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            event.remove(self.engine, "before_cursor_execute", self._on_execute)
            event.remove(self.engine, "rollback", self._on_rollback)
            event.remove(self.engine.pool, "checkin", self._on_checkin)
            self._thread.join(timeout)
        self.pool.shutdown(wait=False, cancel_futures=True)
        try:
            release_lease(self.engine, self.holder)
        except Exception:  # shutting down: the lease simply expires
            log.warning("could not release the delivery lease; it expires by itself")
        self.client.close()

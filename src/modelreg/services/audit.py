"""The tamper-evident audit log: event tags, append-in-the-same-transaction, and verification."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import AuditEvent, AuditHead
from modelreg.services.actor import Actor, Permission

__all__ = [
    "GENESIS",
    "Actor",
    "EventTag",
    "VerifyResult",
    "event_hash",
    "list_events",
    "record",
    "verify",
]

GENESIS = "0" * 64


class EventTag(StrEnum):
    """Audit actions, valued ``source:subject:action`` (one verb per use-case, STYLE.md §5)."""

    MODEL_CREATE = "registry:model:create"
    MODEL_UPDATE = "registry:model:update"
    MODEL_TAG = "registry:model:tag"
    MODEL_DELETE = "registry:model:delete"
    VERSION_REGISTER = "registry:version:register"
    VERSION_UPDATE = "registry:version:update"
    VERSION_TAG = "registry:version:tag"
    VERSION_DELETE = "registry:version:delete"
    ALIAS_SET = "registry:alias:set"
    ALIAS_DELETE = "registry:alias:delete"
    VERSION_STAGE = "registry:version:stage"
    STAGE_ROLLBACK = "registry:stage:rollback"
    PROMOTION_REQUEST = "registry:promotion:request"
    PROMOTION_APPROVE = "registry:promotion:approve"
    PROMOTION_REJECT = "registry:promotion:reject"
    PROMOTION_REFUSE = "registry:promotion:refuse"
    POLICY_SET = "registry:policy:set"
    POLICY_DELETE = "registry:policy:delete"
    BLOB_COLLECT = "registry:blob:collect"
    PRINCIPAL_CREATE = "auth:principal:create"
    TOKEN_CREATE = "auth:token:create"  # noqa: S105 (an event name, not a secret)
    TOKEN_REVOKE = "auth:token:revoke"  # noqa: S105
    ROLE_GRANT = "auth:role:grant"


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: AuditEvent) -> str:
    """The SHA-256 that chains ``event`` to its predecessor."""
    fields = {
        "seq": event.seq,
        "at": event.at.isoformat(timespec="microseconds"),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "model_key": event.model_key,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
        "prev_hash": event.prev_hash,
    }
    return hashlib.sha256(_canonical(fields)).hexdigest()


def record(
    session: Session,
    tag: EventTag,
    *,
    actor: Actor,
    target: str,
    model_key: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    Locks the chain's head row, so appends are serialised and sequence numbers gap-free; a
    rolled-back action takes its event with it.
    """
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    # JSON round-trips floats and keys the same on both databases, so hash what will be read.
    event = AuditEvent(
        seq=head.last_seq + 1,
        at=utcnow(),
        actor=actor.name,
        action=tag.value,
        target=target,
        model_key=model_key,
        before=_jsonable(before),
        after=_jsonable(after),
        reason=reason or "",
        prev_hash=head.last_hash,
    )
    event.hash = event_hash(event)
    session.add(event)
    head.last_seq = event.seq
    head.last_hash = event.hash
    session.flush()
    return event


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    loaded: dict[str, Any] = json.loads(json.dumps(value, sort_keys=True, default=str))
    return loaded


def list_events(
    session: Session,
    *,
    actor: Actor,
    model_id: Any = None,
    model_key: str | None = None,
    after_seq: int = 0,
    limit: int = 100,
    descending: bool = False,
) -> list[AuditEvent]:
    """Events in sequence order, optionally for one model (its id and normalised name).

    The whole log needs registry-wide read access; one model's events need read access to it.
    """
    actor.require(Permission.AUDIT_READ, model_id if model_key is not None else None)
    query = select(AuditEvent)
    if model_key is not None:
        query = query.where(AuditEvent.model_key == model_key)
    if descending:
        if after_seq:
            query = query.where(AuditEvent.seq < after_seq)
        query = query.order_by(AuditEvent.seq.desc())
    else:
        query = query.where(AuditEvent.seq > after_seq).order_by(AuditEvent.seq)
    return list(session.scalars(query.limit(limit)))


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of checking the chain: ``ok``, how many events, and the first bad one."""

    ok: bool
    events: int
    first_bad_seq: int | None = None
    problem: str | None = None
    last_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """As JSON."""
        return {
            "ok": self.ok,
            "events": self.events,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "last_hash": self.last_hash,
        }


def verify(session: Session, *, actor: Actor, batch: int = 5000) -> VerifyResult:
    """Walk the whole chain and report the first event that was edited, removed or reordered.

    Also compares the end of the chain with the head row, which catches events cut off the end.
    """
    actor.require(Permission.AUDIT_READ)
    expected_seq = 1
    prev = GENESIS
    count = 0
    last_seen = 0
    while True:
        rows = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.seq > last_seen)
                .order_by(AuditEvent.seq)
                .limit(batch)
            )
        )
        if not rows:
            break
        for event in rows:
            if event.seq != expected_seq:
                return VerifyResult(False, count, expected_seq, f"event {expected_seq} is missing")
            if event.prev_hash != prev:
                return VerifyResult(
                    False,
                    count,
                    event.seq,
                    f"event {event.seq} does not follow event {event.seq - 1}",
                )
            if event_hash(event) != event.hash:
                return VerifyResult(
                    False, count, event.seq, f"event {event.seq} was altered after it was written"
                )
            prev = event.hash
            expected_seq += 1
            count += 1
            last_seen = event.seq
    head = session.get(AuditHead, 1)
    if head is not None and (head.last_seq != count or head.last_hash != prev):
        return VerifyResult(
            False,
            count,
            count + 1,
            f"the log ends at event {count} but the head records event {head.last_seq}",
        )
    return VerifyResult(True, count, None, None, prev)


def event_to_dict(event: AuditEvent) -> dict[str, Any]:
    """An audit event in the JSON shape of DESIGN.md §5."""
    return {
        "seq": event.seq,
        "at": _iso(event.at),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
        "hash": event.hash,
        "prev_hash": event.prev_hash,
    }


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")

"""The tamper-evident audit log: event tags, append-in-the-same-transaction, and verification."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import AuditEvent, AuditHead, Model
from modelreg.errors import IntegrityFailure, InvalidInput
from modelreg.services.actor import Actor, Permission

__all__ = [
    "GENESIS",
    "RENAMED",
    "Actor",
    "Anchor",
    "EventTag",
    "VerifyResult",
    "VerifyStep",
    "current_action",
    "event_hash",
    "head",
    "list_events",
    "record",
    "verify",
    "verify_after",
]

GENESIS = "0" * 64


class EventTag(StrEnum):
    """Audit actions, valued ``source:noun:verb``: one name per use-case (docs/cli.md).

    The noun is the OpenAPI tag's (singular) and the verb the operation id's, so
    ``registry:model:describe`` is ``modelreg describe`` / ``models-describe``. An event that
    is the consequence of a use-case rather than one (a stage move, a refusal) has its own verb.
    Actions written before a rename keep their stored string (the hash chain covers it):
    ``RENAMED`` maps them and ``current_action`` reads either.
    """

    MODEL_CREATE = "registry:model:create"
    MODEL_DESCRIBE = "registry:model:describe"
    MODEL_RENAME = "registry:model:rename"
    MODEL_TAG = "registry:model:tag"
    MODEL_DELETE = "registry:model:delete"
    MODEL_ROLLBACK = "registry:model:rollback"
    VERSION_REGISTER = "registry:version:register"
    VERSION_DESCRIBE = "registry:version:describe"
    VERSION_TAG = "registry:version:tag"
    VERSION_DELETE = "registry:version:delete"
    VERSION_STAGE = "registry:version:stage"
    VERSION_SCAN = "registry:version:scan"
    SIGNATURE_SIGN = "registry:signature:sign"
    ALIAS_SET = "registry:alias:set"
    ALIAS_DELETE = "registry:alias:delete"
    PROMOTION_PROMOTE = "registry:promotion:promote"
    PROMOTION_APPROVE = "registry:promotion:approve"
    PROMOTION_REJECT = "registry:promotion:reject"
    PROMOTION_REFUSE = "registry:promotion:refuse"
    POLICY_SET = "registry:policy:set"
    POLICY_DELETE = "registry:policy:delete"
    BLOB_GC = "registry:blob:gc"
    KEY_ADD = "registry:key:add"
    KEY_REVOKE = "registry:key:revoke"
    SOURCE_ALLOW = "registry:source:allow"
    SOURCE_REMOVE = "registry:source:remove"
    SOURCE_COPY = "registry:source:copy"
    USER_CREATE = "auth:user:create"
    USER_DISABLE = "auth:user:disable"
    USER_ENABLE = "auth:user:enable"
    TOKEN_CREATE = "auth:token:create"  # noqa: S105 (an event name, not a secret)
    TOKEN_REVOKE = "auth:token:revoke"  # noqa: S105
    ROLE_GRANT = "auth:role:grant"
    ROLE_REVOKE = "auth:role:revoke"
    WEBHOOK_CREATE = "notify:webhook:create"
    WEBHOOK_REMOVE = "notify:webhook:remove"
    WEBHOOK_ROTATE = "notify:webhook:rotate"
    DELIVERY_REDELIVER = "notify:delivery:redeliver"
    # A serve process's first report (it started) and its end; heartbeats are not audited.
    DEPLOYMENT_REPORT = "registry:deployment:report"
    DEPLOYMENT_END = "registry:deployment:end"


# Stored actions of events written before issue 20 gave each use-case one name, and what they
# are called now. ``registry:model:update`` was both a description change and a rename: the
# event's ``before`` tells them apart (``current_action``).
RENAMED: dict[str, EventTag] = {
    "auth:principal:create": EventTag.USER_CREATE,
    "auth:principal:disable": EventTag.USER_DISABLE,
    "auth:principal:enable": EventTag.USER_ENABLE,
    "registry:blob:collect": EventTag.BLOB_GC,
    "registry:model:update": EventTag.MODEL_DESCRIBE,
    "registry:promotion:request": EventTag.PROMOTION_PROMOTE,
    "registry:stage:rollback": EventTag.MODEL_ROLLBACK,
    "registry:version:update": EventTag.VERSION_DESCRIBE,
}


def current_action(action: str, before: dict[str, Any] | None = None) -> str:
    """The action an event's stored ``action`` is called now (itself unless renamed).

    Readers that match on actions call this, so events written under an old name count.
    """
    if action == "registry:model:update" and before is not None and "name" in before:
        return EventTag.MODEL_RENAME.value
    renamed = RENAMED.get(action)
    return renamed.value if renamed is not None else action


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: AuditEvent) -> str:
    """The SHA-256 that chains ``event`` to its predecessor.

    ``model_id`` is not covered: it indexes what the covered ``model_key`` names, and leaving
    it out keeps the hash of every event, old or new, the same across schema revisions (a
    downgraded registry still verifies).
    """
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
    model: Model | None = None,
    model_key: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    ``model`` is the model the event is about: its id keys the event (``audit --model``) and
    its name is kept as ``model_key``. ``model_key`` alone names a model that does not exist
    (a policy rule written before its model); such an event appears in the full log only.

    Locks the chain's head row, so appends are serialised and sequence numbers gap-free; a
    rolled-back action takes its event with it.
    """
    if model is not None:
        model_key = model.normalized_name
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
        model_id=model.id if model is not None else None,
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


def adopt_policy_events(session: Session, model: Model) -> None:
    """Give a new model the events of policy rules written for its name before it existed.

    Rules are written by name and may come before their model (policy as code); their events
    are that model's history. Rules written while another model held the name were that
    model's events and keep its id.
    """
    session.execute(
        update(AuditEvent)
        .where(
            AuditEvent.model_key == model.normalized_name,
            AuditEvent.model_id.is_(None),
            AuditEvent.action.in_([EventTag.POLICY_SET.value, EventTag.POLICY_DELETE.value]),
        )
        .values(model_id=model.id)
        .execution_options(synchronize_session=False)
    )


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    loaded: dict[str, Any] = json.loads(json.dumps(value, sort_keys=True, default=str))
    return loaded


def list_events(
    session: Session,
    *,
    actor: Actor,
    model: Model | None = None,
    after_seq: int = 0,
    limit: int = 100,
    descending: bool = False,
    target: str | None = None,
    by: str | None = None,
) -> list[AuditEvent]:
    """Events in sequence order, optionally of one model: the events keyed by its id.

    ``target`` keeps the events naming exactly that target (``NAME:N`` is a version's own
    events); it needs ``model``, whose index it rides on. ``by`` keeps one actor's events.

    A model's events include those from before a rename; a model that took a name another
    model held sees none of that other model's events (SECURITY.md rule 14). The whole log
    needs registry-wide read access; one model's events need read access to that model.
    """
    actor.require(Permission.AUDIT_READ, model.id if model is not None else None)
    query = select(AuditEvent)
    if model is not None:
        query = query.where(AuditEvent.model_id == model.id)
    if target is not None:
        if model is None:
            raise InvalidInput("events of a target are read with its model", detail={})
        query = query.where(AuditEvent.target == target)
    if by is not None:
        query = query.where(AuditEvent.actor == by)
    if descending:
        if after_seq:
            query = query.where(AuditEvent.seq < after_seq)
        query = query.order_by(AuditEvent.seq.desc())
    else:
        query = query.where(AuditEvent.seq > after_seq).order_by(AuditEvent.seq)
    return list(session.scalars(query.limit(limit)))


_ANCHOR_RE = re.compile(r"([0-9]{1,18}):([0-9a-f]{64})")


@dataclass(frozen=True, slots=True)
class Anchor:
    """One point of the chain, ``SEQ:HASH``, kept outside the database to check it against.

    The chain proves its events were not edited in place, but whoever can write the database
    can cut events off its end and move the head back, or rewrite the chain from some event
    on; an anchor taken earlier and kept elsewhere shows both.
    """

    seq: int
    hash: str
    at: datetime | None = None

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """An anchor from ``SEQ:HASH`` (what ``modelreg audit anchor`` prints)."""
        match = _ANCHOR_RE.fullmatch(text.strip().lower()) if isinstance(text, str) else None
        if match is None:
            raise InvalidInput(
                f"an audit anchor is SEQ:HASH (64 hex digits), not {str(text)[:100]!r}",
                detail={"anchor": str(text)[:100]},
            )
        return cls(int(match[1]), match[2])

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    def to_dict(self) -> dict[str, Any]:
        """As JSON: ``{seq, hash, at, anchor}``."""
        return {
            "seq": self.seq,
            "hash": self.hash,
            "at": _iso(self.at) if self.at is not None else None,
            "anchor": str(self),
        }


def head(session: Session, *, actor: Actor) -> Anchor:
    """The chain's head (last sequence number, its hash and time), to keep as an anchor.

    Raises:
        IntegrityFailure: the head row is missing.
    """
    actor.require(Permission.AUDIT_READ)
    row = session.get(AuditHead, 1)
    if row is None:
        raise IntegrityFailure("the audit log's head row is missing", detail={})
    at = session.scalar(select(AuditEvent.at).where(AuditEvent.seq == row.last_seq))
    return Anchor(row.last_seq, row.last_hash, at)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of checking the chain: ``ok``, how many events, and the first bad one."""

    ok: bool
    events: int
    first_bad_seq: int | None = None
    problem: str | None = None
    last_hash: str | None = None
    anchors: int = 0

    def to_dict(self) -> dict[str, Any]:
        """As JSON."""
        return {
            "ok": self.ok,
            "events": self.events,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "last_hash": self.last_hash,
            "anchors": self.anchors,
        }


def verify(
    session: Session, *, actor: Actor, anchors: Sequence[Anchor] = (), batch: int = 5000
) -> VerifyResult:
    """Walk the whole chain and report the first event that was edited, removed or reordered.

    The end of the chain must match the head row (sequence number and hash), and the head row
    must exist, which catches events cut off the end unless the head was moved back with
    them. Each of ``anchors`` (points kept elsewhere) must still be in the chain, which
    catches that too, and a rewrite of the chain from before the anchor.
    """
    actor.require(Permission.AUDIT_READ)
    pending = {a.seq: a for a in anchors if a.seq > 0}
    bad_genesis = next((a for a in anchors if a.seq == 0 and a.hash != GENESIS), None)
    if bad_genesis is not None:
        return VerifyResult(False, 0, 0, "anchor 0 must name the genesis hash (64 zeros)")
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
            anchor = pending.pop(event.seq, None)
            if anchor is not None and anchor.hash != event.hash:
                return VerifyResult(
                    False,
                    count,
                    event.seq,
                    f"event {event.seq} is not the one anchored as {anchor}: "
                    "the log was rewritten from there or before",
                )
            prev = event.hash
            expected_seq += 1
            count += 1
            last_seen = event.seq
    if pending:
        lost = min(pending)
        return VerifyResult(
            False,
            count,
            count + 1,
            f"the log ends at event {count} but an anchor names event {lost}: "
            "events were cut off the end",
        )
    row = session.get(AuditHead, 1)
    if row is None:
        return VerifyResult(False, count, count + 1, "the head row of the audit log is missing")
    if row.last_seq != count:
        return VerifyResult(
            False,
            count,
            min(count, row.last_seq) + 1,
            f"the log ends at event {count} but the head records event {row.last_seq}",
        )
    if row.last_hash != prev:
        return VerifyResult(
            False, count, count, f"the head's hash is not the hash of event {count}"
        )
    return VerifyResult(True, count, None, None, prev, len(anchors))


@dataclass(frozen=True, slots=True)
class VerifyStep:
    """One step of an incremental check: the prefix verified so far, or where the chain breaks.

    ``anchor`` is the last event known good (``seq`` 0 and ``GENESIS`` before the first);
    ``complete`` says it is the head. When ``ok`` is false, ``first_bad_seq`` and ``problem``
    say what is wrong, and ``anchor`` stays where the good prefix ends.
    """

    anchor: Anchor
    ok: bool
    complete: bool
    head_seq: int
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_after(session: Session, *, actor: Actor, anchor: Anchor, limit: int) -> VerifyStep:
    """Extend a verified prefix of the chain, ending at ``anchor``, by at most ``limit`` events.

    Each step costs ``limit`` rows, so a page can show how far the chain is verified without a
    full walk per request. The anchored event is read again (an edit of it shows); events the
    prefix already covered are not, which only a full ``verify`` rechecks. Reaching the head,
    the head row must name the last event's hash.
    """
    actor.require(Permission.AUDIT_READ)
    row = session.get(AuditHead, 1)
    if row is None:
        return VerifyStep(anchor, False, False, 0, anchor.seq + 1, "the head row is missing")
    head_seq = row.last_seq

    def broken(seq: int, problem: str, good: Anchor = anchor) -> VerifyStep:
        return VerifyStep(good, False, False, head_seq, seq, problem)

    if anchor.seq > head_seq:
        return broken(
            head_seq + 1,
            f"the head records event {head_seq} but event {anchor.seq} was verified: "
            "events were cut off the end",
            Anchor(0, GENESIS),
        )
    if anchor.seq > 0:
        mark = session.scalar(select(AuditEvent).where(AuditEvent.seq == anchor.seq))
        if mark is None or mark.hash != anchor.hash or event_hash(mark) != mark.hash:
            return broken(anchor.seq, f"event {anchor.seq} changed after it was verified")
    rows = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.seq > anchor.seq, AuditEvent.seq <= head_seq)
        .order_by(AuditEvent.seq)
        .limit(max(1, limit))
    )
    good = anchor
    for event in rows:
        if event.seq != good.seq + 1:
            return broken(good.seq + 1, f"event {good.seq + 1} is missing", good)
        if event.prev_hash != good.hash:
            return broken(event.seq, f"event {event.seq} does not follow event {good.seq}", good)
        if event_hash(event) != event.hash:
            return broken(event.seq, f"event {event.seq} was altered after it was written", good)
        good = Anchor(event.seq, event.hash, event.at)
    if good.seq < head_seq:
        if good.seq - anchor.seq < max(1, limit):
            return broken(good.seq + 1, f"event {good.seq + 1} is missing", good)
        return VerifyStep(good, True, False, head_seq)
    if good.seq > head_seq or good.hash != row.last_hash:
        return broken(head_seq, f"the head's hash is not the hash of event {head_seq}", good)
    return VerifyStep(good, True, True, head_seq)


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

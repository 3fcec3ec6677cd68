"""From the audit log to deliveries: each subscription's matching events after its cursor.

The audit log is the outbox (db/tables/notify.py): a change and its event commit together,
and sequence numbers become visible in order (appends lock the chain's head), so reading
``seq > cursor_seq`` never skips an event that commits later.
"""

from __future__ import annotations

import fnmatch
import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import AuditEvent, Grant, Principal, Role
from modelreg.db.tables.notify import DeliveryState, Webhook, WebhookDelivery
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import current_action

__all__ = [
    "events_waiting",
    "fan_out",
    "matches",
    "new_delivery_id",
    "subscriber",
    "work_waiting",
]

BATCH = 500  # events read per subscription per pass


def new_delivery_id() -> uuid.UUID:
    """A delivery's id; ``msg_<hex>`` of it is the ``webhook-id`` header."""
    return uuid.uuid4()


def subscriber(session: Session, name: str) -> Actor | None:
    """The actor a subscription reads events as: its creator, with today's roles.

    ``None`` when the creator is gone or disabled (it then receives nothing). A registry
    without users has only its owner, who reads everything.
    """
    principal = session.scalars(select(Principal).where(Principal.name == name)).one_or_none()
    if principal is None:
        has_users = session.scalar(select(Principal.id).limit(1)) is not None
        return None if has_users else Actor(name)
    if principal.disabled:
        return None
    roles: dict[uuid.UUID | None, Role] = {}
    for grant in session.scalars(select(Grant).where(Grant.principal_id == principal.id)):
        held = roles.get(grant.model_id)
        if held is None or grant.role.rank > held.rank:
            roles[grant.model_id] = grant.role
    return Actor(name, source="webhook", superuser=False, principal_id=principal.id, grants=roles)


def matches(webhook: Webhook, event: AuditEvent, reader: Actor | None) -> bool:
    """Whether ``event`` goes to ``webhook``.

    It must match the subscription's patterns and model, and its creator must be allowed to
    read it (the audit log's own rule).
    """
    if reader is None or not reader.can(Permission.AUDIT_READ, event.model_id):
        return False
    if webhook.model_id is not None and event.model_id != webhook.model_id:
        return False
    glob = (webhook.model_glob or "*").lower()
    if glob != "*" and (
        event.model_key is None or not fnmatch.fnmatchcase(event.model_key.lower(), glob)
    ):
        return False
    action = current_action(event.action, event.before)
    patterns = webhook.events or ["*"]
    return any(fnmatch.fnmatchcase(action, pattern) for pattern in patterns)


def events_waiting(session: Session) -> bool:
    """Whether an enabled subscription has events after its cursor (a read)."""
    enabled = Webhook.disabled_at.is_(None)
    lowest = session.scalar(select(func.min(Webhook.cursor_seq)).where(enabled))
    if lowest is None:
        return False
    return (session.scalar(select(func.max(AuditEvent.seq))) or 0) > lowest


def work_waiting(session: Session) -> bool:
    """Whether an enabled subscription has events to consider or deliveries pending (a read)."""
    if events_waiting(session):
        return True
    pending = select(WebhookDelivery.id).where(WebhookDelivery.state == DeliveryState.PENDING)
    return session.scalar(pending.limit(1)) is not None


def fan_out(session: Session, *, now: datetime | None = None) -> int:
    """Write the deliveries of new matching events and move each subscription's cursor.

    Every enabled subscription gets a pending delivery per matching event after its cursor;
    runs in the caller's (write) transaction.

    Returns how many deliveries were written.
    """
    now = now or utcnow()
    last = session.scalar(select(func.max(AuditEvent.seq))) or 0
    written = 0
    hooks = session.scalars(
        select(Webhook).where(Webhook.disabled_at.is_(None), Webhook.cursor_seq < last)
    ).all()
    for webhook in hooks:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.seq > webhook.cursor_seq)
            .order_by(AuditEvent.seq)
            .limit(BATCH)
        ).all()
        if not events:
            continue
        reader = subscriber(session, webhook.created_by)
        for event in events:
            if matches(webhook, event, reader):
                session.add(
                    WebhookDelivery(
                        id=new_delivery_id(),
                        webhook_id=webhook.id,
                        event_seq=event.seq,
                        state=DeliveryState.PENDING,
                        attempts=0,
                        next_attempt_at=now,
                    )
                )
                written += 1
        webhook.cursor_seq = events[-1].seq
    session.flush()
    return written

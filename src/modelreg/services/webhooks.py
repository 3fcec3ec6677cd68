"""Subscriptions to registry events: create, list, remove, rotate; test messages, redelivery.

Who administers a subscription: a registry-wide admin any of them; a model admin (the admin role
granted on one model) those limited to that model (``model_id`` set). Anyone else is refused
(403) before anything is looked up; a subscription the caller does not administer answers
exactly like one that does not exist (404), so ids cannot be probed (SECURITY.md rule 14).

A signing secret (kind ``webhook``) is returned once, by ``create`` and ``rotate_secret``, and
stored sealed with the server's key (``services.secrets``). Nothing else ever shows it: not the
listings, not the audit log (whose events name the subscription by id), not a log line. A
subscription's URL is shown with its credentials masked (``display_url``): a Slack incoming
webhook's URL is itself a secret, and query strings often carry tokens. So a Slack URL is
stored sealed too, in ``secret_enc`` (Slack checks no signature, so that column is free), and
its ``url`` column keeps only the masked form.

The delivery worker (``services.delivery``) sends; this module only writes pending
``WebhookDelivery`` rows for a test message or a redelivery.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import AuditEvent, Model, Role
from modelreg.db.tables.notify import DeliveryState, Webhook, WebhookDelivery, WebhookKind
from modelreg.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from modelreg.services import models
from modelreg.services.actor import Actor
from modelreg.services.audit import EventTag, record
from modelreg.services.pages import Page, paginate
from modelreg.services.secrets import Sealer, new_webhook_secret
from modelreg.services.webhook_checks import (
    check_email,
    check_patterns,
    check_url,
    display_url,
)

TEST_EVENT = "modelreg:test"
DEFAULT_OVERLAP_HOURS = 24
MAX_OVERLAP_HOURS = 24 * 30
MESSAGE_PREFIX = "msg_"
_GLOB_CHARS = frozenset("*?[")
_MODEL_GLOB_RE = re.compile(r"[A-Za-z0-9_.*?/\-]{1,200}")


@dataclass(frozen=True, slots=True)
class NewWebhook:
    """What ``create`` takes: where to send, which events, for which models."""

    kind: WebhookKind | str = WebhookKind.WEBHOOK
    url: str = ""
    to: str = ""
    events: tuple[str, ...] = ("*",)
    model: str = "*"
    description: str = ""


# -- permission --------------------------------------------------------------------------------


def admin_models(actor: Actor) -> set[uuid.UUID] | None:
    """The model ids whose subscriptions ``actor`` administers; ``None``: every subscription."""
    if actor.superuser or actor.has_role(Role.ADMIN, None):
        return None
    return {m for m, role in actor.grants.items() if m is not None and role == Role.ADMIN}


def may_administer(actor: Actor) -> bool:
    """Whether ``actor`` administers any subscription at all (an admin, or a model admin)."""
    models_ = admin_models(actor)
    return models_ is None or bool(models_)


def _require_some(actor: Actor) -> set[uuid.UUID] | None:
    scope = admin_models(actor)
    if scope is not None and not scope:
        raise PermissionDenied(
            f"{actor.name} may not manage subscriptions: it needs the admin role, registry-wide "
            "or on a model",
            detail={"permission": "notify:webhook", "role_needed": Role.ADMIN.value},
        )
    return scope


def _administers(scope: set[uuid.UUID] | None, hook: Webhook) -> bool:
    return scope is None or (hook.model_id is not None and hook.model_id in scope)


# -- the model a subscription covers ----------------------------------------------------


def _target_of(session: Session, actor: Actor, glob: str) -> tuple[str, Model | None]:
    """The subscription's model glob, and the model it is limited to (no wildcard)."""
    if not isinstance(glob, str) or not _MODEL_GLOB_RE.fullmatch(glob):
        raise InvalidInput(
            f"invalid model pattern {str(glob)[:100]!r}: a model name, or a glob such as "
            "fraud-* or team/*",
            detail={"model": str(glob)[:100]},
        )
    scope = admin_models(actor)
    if _GLOB_CHARS & set(glob):
        if scope is not None:
            raise PermissionDenied(
                f"{actor.name} may not subscribe to {glob!r}: every model or a pattern of models "
                "needs the registry-wide admin role; a model's admin names that model "
                "(--model NAME)",
                detail={"permission": "notify:webhook", "role_needed": Role.ADMIN.value},
            )
        return glob, None
    if scope is None:
        model = models.find_model(session, glob)
        return (model.name, model) if model is not None else (glob, None)
    model = models.get_model(session, glob, actor=actor)
    if model.id not in scope:
        raise PermissionDenied(
            f"{actor.name} may not manage subscriptions of {model.name}: it needs the admin role "
            "on it",
            detail={"permission": "notify:webhook", "role_needed": Role.ADMIN.value},
        )
    return model.name, model


# -- subscriptions -----------------------------------------------------------------------------


def create(
    session: Session,
    spec: NewWebhook,
    *,
    actor: Actor,
    sealer: Sealer,
    allow_private: bool = False,
) -> tuple[Webhook, str | None]:
    """Create a subscription: the row, and its signing secret (kind ``webhook``; else None).

    Raises:
        PermissionDenied: the caller administers no subscription, or not this model's.
        InvalidInput: a bad kind, URL, address, event pattern or model pattern.
        ModelNotFound: a model admin named a model they cannot read.
    """
    _require_some(actor)
    kind = _kind(spec.kind)
    url, to = spec.url or "", spec.to or ""
    if kind == WebhookKind.EMAIL:
        if url:
            raise InvalidInput("an email subscription takes --to ADDRESS, not a URL", detail={})
        check_email(to)
    else:
        if to:
            raise InvalidInput(f"a {kind.value} subscription takes a URL, not --to", detail={})
        check_url(url, allow_private=allow_private)
    events = check_patterns(spec.events)
    if len(spec.description or "") > 500:
        raise InvalidInput("a description is at most 500 characters", detail={})
    glob, model = _target_of(session, actor, spec.model or "*")
    secret = new_webhook_secret() if kind == WebhookKind.WEBHOOK else None
    hook = Webhook(
        kind=kind,
        url=display_url(url, kind) if kind == WebhookKind.SLACK else url,
        to_address=to,
        events=events,
        model_glob=glob,
        model_id=model.id if model is not None else None,
        description=spec.description or "",
        secret_enc=_sealed_secret(sealer, kind, url, secret),
        created_by=actor.name,
    )
    session.add(hook)
    session.flush()
    created = record(
        session,
        EventTag.WEBHOOK_CREATE,
        actor=actor,
        target=f"webhook:{hook.id}",
        model=model,
        after=_audited(hook),
    )
    # The cursor starts at the log's end, past the subscription's own creation: it hears of
    # what happens next. (Writing it after the audit record leaves the hash untouched: the
    # cursor is not an audited field.)
    hook.cursor_seq = created.seq
    session.flush()
    return hook, secret


def _sealed_secret(sealer: Sealer, kind: WebhookKind, url: str, secret: str | None) -> str:
    """What ``secret_enc`` keeps: the signing secret, or a Slack subscription's whole URL."""
    if kind == WebhookKind.SLACK:
        return sealer.seal(url)
    return sealer.seal(secret) if secret else ""


def _kind(kind: WebhookKind | str) -> WebhookKind:
    try:
        return WebhookKind(kind)
    except ValueError:
        raise InvalidInput(
            f"unknown kind {str(kind)[:40]!r}: webhook, slack or email", detail={"kind": str(kind)}
        ) from None


def _model_of(session: Session, hook: Webhook) -> Model | None:
    """The model a subscription is limited to (its events are that model's too)."""
    return session.get(Model, hook.model_id) if hook.model_id is not None else None


def list_webhooks(session: Session, *, actor: Actor) -> list[Webhook]:
    """The subscriptions ``actor`` administers, oldest first."""
    scope = _require_some(actor)
    query = select(Webhook).order_by(Webhook.created_at, Webhook.id)
    if scope is not None:
        query = query.where(Webhook.model_id.in_(list(scope)))
    return list(session.scalars(query))


def get(session: Session, webhook_id: str, *, actor: Actor) -> Webhook:
    """One subscription ``actor`` administers; raises ``NotFound`` (``InvalidInput`` bad id)."""
    scope = _require_some(actor)
    key = _uuid(webhook_id, "subscription")
    hook = session.get(Webhook, key)
    if hook is None or not _administers(scope, hook):
        raise NotFound(f"no subscription with id {key}", detail={"id": str(key)})
    return hook


def _uuid(text: str, what: str) -> uuid.UUID:
    raw = text[len(MESSAGE_PREFIX) :] if isinstance(text, str) and text.startswith("msg_") else text
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise InvalidInput(f"invalid {what} id {str(text)[:80]!r}", detail={}) from None


def remove(session: Session, webhook_id: str, *, actor: Actor) -> dict[str, Any]:
    """Delete a subscription and its deliveries: what it was (``to_dict``)."""
    hook = get(session, webhook_id, actor=actor)
    shown = to_dict(hook)
    record(
        session,
        EventTag.WEBHOOK_REMOVE,
        actor=actor,
        target=f"webhook:{hook.id}",
        model=_model_of(session, hook),
        before=_audited(hook),
    )
    session.delete(hook)
    session.flush()
    return shown


def rotate_secret(
    session: Session,
    webhook_id: str,
    *,
    actor: Actor,
    sealer: Sealer,
    overlap_hours: int = DEFAULT_OVERLAP_HOURS,
) -> tuple[Webhook, str]:
    """A new signing secret; the previous one keeps signing for ``overlap_hours`` (0: stops now).

    Messages carry both signatures meanwhile, so receivers can switch at their own pace.
    """
    if isinstance(overlap_hours, bool) or not isinstance(overlap_hours, int):
        raise InvalidInput("the overlap is a whole number of hours", detail={})
    if not 0 <= overlap_hours <= MAX_OVERLAP_HOURS:
        raise InvalidInput(
            f"the overlap is 0 to {MAX_OVERLAP_HOURS} hours",
            detail={"overlap_hours": overlap_hours},
        )
    hook = get(session, webhook_id, actor=actor)
    if hook.kind != WebhookKind.WEBHOOK:
        raise InvalidInput(
            f"a {hook.kind.value} subscription has no signing secret to rotate", detail={}
        )
    secret = new_webhook_secret()
    if overlap_hours:
        hook.previous_secret_enc = hook.secret_enc
        hook.previous_expires_at = utcnow() + timedelta(hours=overlap_hours)
    else:
        hook.previous_secret_enc, hook.previous_expires_at = None, None
    hook.secret_enc = sealer.seal(secret)
    session.flush()
    after = {"overlap_hours": overlap_hours, "previous_expires_at": _iso(hook.previous_expires_at)}
    record(
        session,
        EventTag.WEBHOOK_ROTATE,
        actor=actor,
        target=f"webhook:{hook.id}",
        model=_model_of(session, hook),
        after=after,
    )
    return hook, secret


# -- deliveries --------------------------------------------------------------------------------


def enqueue_test(session: Session, webhook_id: str, *, actor: Actor) -> WebhookDelivery:
    """A pending test message (``modelreg:test``, event_seq 0) for the delivery worker."""
    hook = get(session, webhook_id, actor=actor)
    _require_enabled(hook)
    now = utcnow()
    delivery = WebhookDelivery(
        webhook_id=hook.id,
        event_seq=0,
        payload={
            "event": TEST_EVENT,
            "seq": 0,
            "at": _iso(now),
            "actor": actor.name,
            "model": None,
            "version": None,
            "target": f"webhook:{hook.id}",
            "reason": "a test message (modelreg webhooks test)",
            "before": None,
            "after": None,
            "url": None,
        },
        state=DeliveryState.PENDING,
        next_attempt_at=now,
    )
    # One test message per subscription at a time (unique webhook_id, event_seq 0): a pending
    # one is simply sent; a finished one makes room for the new, which has its own id.
    old = session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.webhook_id == hook.id, WebhookDelivery.event_seq == 0
        )
    ).one_or_none()
    if old is not None and old.state == DeliveryState.PENDING:
        old.next_attempt_at = now
        session.flush()
        return old
    if old is not None:
        session.delete(old)
        session.flush()
    session.add(delivery)
    session.flush()
    return delivery


def _require_enabled(hook: Webhook) -> None:
    """Refuse to queue for a disabled subscription: the worker would never send it."""
    if hook.disabled_at is not None:
        raise Conflict(
            f"subscription {hook.id} is disabled ({hook.disabled_reason or 'no reason given'}): "
            "nothing is sent to it; remove it and add it again once its target is back",
            detail={"id": str(hook.id), "disabled_reason": hook.disabled_reason},
        )


def list_deliveries(
    session: Session,
    *,
    actor: Actor,
    webhook_id: str | None = None,
    failed_only: bool = False,
    page_size: int = 50,
    page_token: str | None = None,
) -> Page[tuple[WebhookDelivery, str, str]]:
    """Deliveries of the subscriptions ``actor`` administers, newest first (keyset pages).

    Each item is ``(delivery, event name, target)``, read from its audit event.
    """
    scope = _require_some(actor)
    query = select(WebhookDelivery.id).join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
    if webhook_id is not None:
        query = query.where(WebhookDelivery.webhook_id == get(session, webhook_id, actor=actor).id)
    elif scope is not None:
        query = query.where(Webhook.model_id.in_(list(scope)))
    if failed_only:
        query = query.where(WebhookDelivery.state == DeliveryState.FAILED)
    context = f"deliveries:{webhook_id}:{failed_only}"
    order = [(WebhookDelivery.created_at, True), (WebhookDelivery.id, True)]
    found = paginate(
        session,
        query,
        order=order,
        page_size=page_size,
        page_token=page_token,
        context=context,
        load=WebhookDelivery,
    )
    seqs = {d.event_seq for d in found if d.event_seq}
    events = {
        seq: (action, target)
        for seq, action, target in session.execute(
            select(AuditEvent.seq, AuditEvent.action, AuditEvent.target).where(
                AuditEvent.seq.in_(seqs)
            )
        )
    }
    items = [(d, *_event_of(d, events)) for d in found]
    return Page(items, found.next_page_token)


def _event_of(delivery: WebhookDelivery, events: dict[int, tuple[str, str]]) -> tuple[str, str]:
    if delivery.event_seq == 0:
        payload = delivery.payload or {}
        return str(payload.get("event", TEST_EVENT)), str(payload.get("target", ""))
    return events.get(delivery.event_seq, ("", ""))


def event_of(session: Session, delivery: WebhookDelivery) -> tuple[str, str]:
    """The event name and target a delivery carries."""
    events: dict[int, tuple[str, str]] = {}
    if delivery.event_seq:
        row = session.execute(
            select(AuditEvent.action, AuditEvent.target).where(AuditEvent.seq == delivery.event_seq)
        ).one_or_none()
        if row is not None:
            events[delivery.event_seq] = (row[0], row[1])
    return _event_of(delivery, events)


def get_delivery(
    session: Session, delivery_id: str, *, actor: Actor
) -> tuple[WebhookDelivery, Webhook]:
    """One delivery of a subscription ``actor`` administers, and it; raises ``NotFound``."""
    scope = _require_some(actor)
    key = _uuid(delivery_id, "delivery")
    delivery = session.get(WebhookDelivery, key)
    hook = session.get(Webhook, delivery.webhook_id) if delivery is not None else None
    if delivery is None or hook is None or not _administers(scope, hook):
        shown = MESSAGE_PREFIX + key.hex
        raise NotFound(f"no delivery with id {shown}", detail={"id": shown})
    return delivery, hook


def redeliver(session: Session, delivery_id: str, *, actor: Actor) -> WebhookDelivery:
    """Send a delivery again: it becomes pending and due now, its retry schedule restarted.

    Its earlier attempts stay on record (``DeliveryAttempt``); ``attempts`` counts from 0
    again. The receiver sees the same ``webhook-id`` (Standard Webhooks: a message sent again
    keeps its id), so it can tell a redelivery from a new event.
    """
    delivery, hook = get_delivery(session, delivery_id, actor=actor)
    _require_enabled(hook)
    before = {"state": delivery.state.value, "attempts": delivery.attempts}
    delivery.state = DeliveryState.PENDING
    delivery.attempts = 0
    # The worker gives up a day after ``created_at``: a redelivery gets a day of its own.
    delivery.created_at = utcnow()
    delivery.next_attempt_at = utcnow()
    delivery.finished_at = None
    session.flush()
    record(
        session,
        EventTag.DELIVERY_REDELIVER,
        actor=actor,
        target=f"webhook:{hook.id}",
        model=_model_of(session, hook),
        before={"delivery": MESSAGE_PREFIX + delivery.id.hex, **before},
        after={"state": DeliveryState.PENDING.value},
    )
    return delivery


# -- shapes ------------------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def to_dict(hook: Webhook, secret: str | None = None) -> dict[str, Any]:
    """A subscription as JSON, its URL masked; ``secret`` only when it was just made."""
    data: dict[str, Any] = {
        "id": str(hook.id),
        "kind": hook.kind.value,
        "url": display_url(hook.url, hook.kind) if hook.url else None,
        "to": hook.to_address or None,
        "events": list(hook.events),
        "model": hook.model_glob,
        "model_only": hook.model_id is not None,
        "description": hook.description,
        "created_by": hook.created_by,
        "created_at": _iso(hook.created_at),
        "disabled_at": _iso(hook.disabled_at),
        "disabled_reason": hook.disabled_reason or None,
        "previous_secret_expires_at": _iso(hook.previous_expires_at),
    }
    if secret is not None:
        data["secret"] = secret
    return data


def _audited(hook: Webhook) -> dict[str, Any]:
    """What the audit log keeps of a subscription: where and what, never a secret."""
    shown = to_dict(hook)
    return {k: shown[k] for k in ("kind", "url", "to", "events", "model", "description")}


def delivery_to_dict(delivery: WebhookDelivery, event: str, target: str) -> dict[str, Any]:
    """A delivery as JSON (``id`` is the message's ``webhook-id``)."""
    return {
        "id": MESSAGE_PREFIX + delivery.id.hex,
        "webhook": str(delivery.webhook_id),
        "event_seq": delivery.event_seq,
        "event": event,
        "target": target,
        "state": delivery.state.value,
        "attempts": delivery.attempts,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error or None,
        "created_at": _iso(delivery.created_at),
        "next_attempt_at": _iso(delivery.next_attempt_at)
        if delivery.state == DeliveryState.PENDING
        else None,
        "finished_at": _iso(delivery.finished_at),
    }

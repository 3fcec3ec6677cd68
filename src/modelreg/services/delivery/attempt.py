"""One attempt: build the message for a delivery, send it, and record what happened."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, update

from modelreg.config import Settings
from modelreg.db.base import utcnow
from modelreg.db.session import transaction
from modelreg.db.tables import AuditEvent
from modelreg.db.tables.notify import (
    DeliveryAttempt,
    DeliveryState,
    Webhook,
    WebhookDelivery,
    WebhookKind,
)
from modelreg.errors import InvalidInput, RegistryError
from modelreg.services.delivery import formats, send
from modelreg.services.events import event_to_dict
from modelreg.services.secrets import Sealer

if TYPE_CHECKING:
    import httpx

    from modelreg.services.delivery.worker import Backoff

__all__ = ["Delivered", "prepare_and_send", "record_attempt"]

log = logging.getLogger("modelreg.delivery")


@dataclass(frozen=True, slots=True)
class Delivered:
    """Where a delivery stands after an attempt."""

    state: DeliveryState
    status: int | None


def msg_id(delivery_id: uuid.UUID) -> str:
    """The ``webhook-id`` header of a delivery: the same on every retry (receivers dedupe)."""
    return f"msg_{delivery_id.hex}"


def _event(session: Any, delivery: WebhookDelivery, settings: Settings) -> dict[str, Any]:
    if delivery.event_seq == 0 or delivery.payload is not None:
        return dict(delivery.payload or {})
    event = session.get(AuditEvent, delivery.event_seq)
    if event is None:
        raise InvalidInput(f"audit event {delivery.event_seq} is gone", detail={})
    public_url = settings.public_url or None
    return event_to_dict(event, public_url)


def prepare_and_send(
    engine: Engine,
    settings: Settings,
    sealer: Sealer,
    client: httpx.Client,
    delivery_id: uuid.UUID,
    backoff: Backoff,
) -> send.Outcome | None:
    """Send delivery ``delivery_id`` once; ``None`` if it is no longer pending."""
    with transaction(engine, write=False) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.state is not DeliveryState.PENDING:
            return None
        webhook = session.get(Webhook, delivery.webhook_id)
        if webhook is None or webhook.disabled_at is not None:
            return None
        kind, url, to = webhook.kind, webhook.url, webhook.to_address
        try:
            event = _event(session, delivery, settings)
            secrets = _secrets(webhook, sealer)
            if kind is WebhookKind.SLACK:
                # Stored sealed: ``url`` holds only its masked form (services.webhooks).
                url = sealer.open(webhook.secret_enc)
        except RegistryError as exc:
            return send.Outcome(None, 0.0, error=exc.message[:1000])
    allow = settings.webhook_allow_private
    if kind is WebhookKind.EMAIL:
        if not settings.smtp_url or not settings.smtp_from:
            return send.Outcome(None, 0.0, error="MODELREG_SMTP_URL and MODELREG_SMTP_FROM unset")
        try:
            config = send.SmtpConfig.parse(settings.smtp_url)
        except InvalidInput as exc:
            return send.Outcome(None, 0.0, error=exc.message)
        message = formats.email_message(event, sender=settings.smtp_from, to=to)
        message["Message-ID"] = f"<{msg_id(delivery_id)}@modelreg>"
        return send.send_email(config, message, timeout=backoff.timeout)
    if kind is WebhookKind.SLACK:
        body = formats.webhook_body(formats.slack_message(event))
        headers = {"content-type": "application/json"}
    else:
        body = formats.webhook_body(event)
        timestamp = int(utcnow().timestamp())
        headers = formats.webhook_headers(secrets, msg_id(delivery_id), timestamp, body)
    return send.post(client, url, body, headers, allow_private=allow, timeout=backoff.timeout)


def _secrets(webhook: Webhook, sealer: Sealer) -> list[str]:
    """The secrets that sign now: the current one, and the previous until it expires."""
    if webhook.kind is not WebhookKind.WEBHOOK:
        return []
    secrets = [sealer.open(webhook.secret_enc)]
    expires = webhook.previous_expires_at
    if webhook.previous_secret_enc and expires is not None and expires > utcnow():
        secrets.append(sealer.open(webhook.previous_secret_enc))
    return secrets


def record_attempt(
    engine: Engine, delivery_id: uuid.UUID, outcome: send.Outcome, backoff: Backoff
) -> Delivered | None:
    """Write the attempt and the delivery's new state; a 410 disables the subscription."""
    now = utcnow()
    with transaction(engine, write=True) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.state is not DeliveryState.PENDING:
            return None  # removed or redelivered meanwhile
        session.add(
            DeliveryAttempt(
                id=uuid.uuid4(),
                delivery_id=delivery.id,
                at=now,
                status=outcome.status,
                duration_ms=round(outcome.duration_ms, 3),
                response_excerpt=outcome.excerpt[:1024],
                error=outcome.error[:1000],
            )
        )
        delivery.attempts += 1
        delivery.last_status = outcome.status
        delivery.last_error = outcome.error[:1000]
        webhook = session.get(Webhook, delivery.webhook_id)
        if outcome.ok:
            delivery.state = DeliveryState.DELIVERED
            delivery.finished_at = now
        elif outcome.status == 410 and webhook is not None and webhook.kind != WebhookKind.EMAIL:
            _disable(session, webhook, now)
        else:
            wait = backoff.delay(delivery.attempts, outcome.retry_after)
            if (now - delivery.created_at).total_seconds() + wait > backoff.give_up:
                delivery.state = DeliveryState.FAILED
                delivery.finished_at = now
            else:
                delivery.next_attempt_at = now + timedelta(seconds=wait)
        state = delivery.state
    if state is not DeliveryState.DELIVERED:
        log.info("delivery %s: %s (%s)", msg_id(delivery_id), state.value, outcome.status)
    return Delivered(state, outcome.status)


def _disable(session: Any, webhook: Webhook, now: Any) -> None:
    """410 Gone: the receiver asks us to stop; its pending deliveries fail."""
    webhook.disabled_at = now
    webhook.disabled_reason = "the target answered 410 Gone"
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.webhook_id == webhook.id,
            WebhookDelivery.state == DeliveryState.PENDING,
        )
        .values(state=DeliveryState.FAILED, finished_at=now, last_error="subscription disabled")
        .execution_options(synchronize_session=False)
    )
    session.flush()
    session.expire_all()

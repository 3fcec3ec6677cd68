"""Notifications: webhook subscriptions, their deliveries and attempts, the worker's lease.

The audit log is the outbox: every change writes its audit event in its own transaction, so
an event exists exactly when its change committed. The delivery worker reads events after
each subscription's ``cursor_seq``, writes one ``WebhookDelivery`` per matching event, and
sends them in order; every try is a ``DeliveryAttempt``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from modelreg.db.base import Base, UTCDateTime, created_at, string_enum, uuid_pk


class WebhookKind(StrEnum):
    """How a subscription is delivered."""

    WEBHOOK = "webhook"  # Standard Webhooks: a signed JSON POST
    SLACK = "slack"  # a Slack incoming-webhook message
    EMAIL = "email"  # a message through the server's SMTP relay


class DeliveryState(StrEnum):
    """Where one event's delivery to one subscription stands."""

    PENDING = "pending"  # waiting for its turn or its next try
    DELIVERED = "delivered"  # the target answered 2xx
    FAILED = "failed"  # gave up (retries exhausted, or the subscription was disabled)


class Webhook(Base):
    """A subscription: which events (``events`` patterns, ``model_glob``) go where.

    ``model_id`` is set when a model admin created it for their model (it then matches that
    model only); registry-wide subscriptions are an admin's. Secrets are stored encrypted with
    the server's key (``services.secrets``); ``previous_secret_enc`` signs too until
    ``previous_expires_at``, so receivers can roll over.
    """

    __tablename__ = "webhooks"

    id: Mapped[uuid_pk]
    kind: Mapped[WebhookKind] = mapped_column(string_enum(WebhookKind, "webhook_kind"))
    url: Mapped[str] = mapped_column(String(2048), default="")
    to_address: Mapped[str] = mapped_column(String(320), default="")
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    model_glob: Mapped[str] = mapped_column(String(256), default="*")
    model_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("models.id", ondelete="CASCADE"), index=True
    )
    description: Mapped[str] = mapped_column(String(500), default="")
    secret_enc: Mapped[str] = mapped_column(Text, default="")
    previous_secret_enc: Mapped[str | None] = mapped_column(Text)
    previous_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[created_at]
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str] = mapped_column(String(500), default="")
    # The last audit event the worker has considered for this subscription.
    cursor_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookDelivery(Base):
    """One event for one subscription; ``id`` is the ``webhook-id`` header (``msg_…``)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_seq"),
        Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
        # The deliveries listing, newest first: all of them, or one subscription's.
        Index("ix_webhook_deliveries_created_at_id", "created_at", "id"),
        Index("ix_webhook_deliveries_webhook_id_created_at_id", "webhook_id", "created_at", "id"),
    )

    id: Mapped[uuid_pk]
    webhook_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhooks.id", ondelete="CASCADE")
    )
    # 0 for a test message (``modelreg webhooks test``), which no audit event stands behind;
    # its ``payload`` is then the message itself (otherwise the event is read at send time).
    event_seq: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[DeliveryState] = mapped_column(string_enum(DeliveryState, "delivery_state"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[created_at]
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(String(1000), default="")


class DeliveryAttempt(Base):
    """One try of a delivery: what the target answered, and how long it took."""

    __tablename__ = "delivery_attempts"

    id: Mapped[uuid_pk]
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[created_at]
    status: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    response_excerpt: Mapped[str] = mapped_column(String(1024), default="")
    error: Mapped[str] = mapped_column(String(1000), default="")


class WorkerLease(Base):
    """Who runs a singleton worker now (the delivery worker: exactly one across servers).

    A holder renews its lease well before ``expires_at``; another process takes over only
    after it expired, so a killed worker is replaced within one lease period.
    """

    __tablename__ = "worker_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

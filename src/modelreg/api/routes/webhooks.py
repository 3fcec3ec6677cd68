"""``/api/v1/webhooks`` and ``/api/v1/deliveries``: event subscriptions and their deliveries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.db.tables.notify import WebhookKind
from modelreg.services import webhook_checks, webhooks
from modelreg.services.usecases import notify

router = APIRouter(prefix="/api/v1", route_class=StrictJsonRoute)


class WebhookCreate(BaseModel):
    """Body of ``POST /webhooks``."""

    model_config = ConfigDict(extra="forbid")
    kind: WebhookKind = WebhookKind.WEBHOOK
    url: str = Field(default="", max_length=webhook_checks.MAX_URL)
    to: str = Field(default="", max_length=320, description="the address (kind email)")
    events: list[str] = Field(
        default_factory=lambda: ["*"],
        max_length=webhook_checks.MAX_PATTERNS,
        description="patterns on event names (the audit log's actions), e.g. registry:version:*",
    )
    model: str = Field(
        default="*", max_length=200, description="a model name, or a glob (registry admins)"
    )
    description: str = Field(default="", max_length=500)


class RotateBody(BaseModel):
    """Body of ``POST /webhooks/{id}/rotate``."""

    model_config = ConfigDict(extra="forbid")
    overlap_hours: int = Field(
        default=webhooks.DEFAULT_OVERLAP_HOURS,
        ge=0,
        le=webhooks.MAX_OVERLAP_HOURS,
        description="how long the previous secret keeps signing too",
    )


class WebhookRead(BaseModel):
    """A subscription; ``secret`` only in the answers that made it (create, rotate)."""

    id: str
    kind: str
    url: str | None = Field(description="the target, its query and any Slack token masked")
    to: str | None
    events: list[str]
    model: str
    model_only: bool = Field(description="limited to one model (a model admin's)")
    description: str
    created_by: str
    created_at: str
    disabled_at: str | None
    disabled_reason: str | None
    previous_secret_expires_at: str | None
    secret: str | None = Field(default=None, description="whsec_…, shown once")


class WebhookList(BaseModel):
    """Answer of ``GET /webhooks``."""

    items: list[WebhookRead]


class DeliveryRead(BaseModel):
    """One event's delivery to one subscription; ``id`` is its ``webhook-id`` header."""

    id: str
    webhook: str
    event_seq: int
    event: str
    target: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: str
    next_attempt_at: str | None
    finished_at: str | None


class DeliveryPage(BaseModel):
    """Answer of ``GET /deliveries``."""

    items: list[DeliveryRead]
    next_page_token: str | None


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookRead,
    response_model_exclude_unset=True,
    operation_id="webhooks-create",
    tags=["webhooks"],
)
def create_webhook(body: WebhookCreate, registry: RegistryDep, actor: ActorDep) -> Any:
    """Subscribe a URL (webhook, Slack) or an address (email) to events; the secret shows once.

    Admins subscribe registry-wide (``model`` may be a glob); a model's admin subscribes to
    that model only.
    """
    spec = webhooks.NewWebhook(
        kind=body.kind,
        url=body.url,
        to=body.to,
        events=tuple(body.events),
        model=body.model,
        description=body.description,
    )
    return notify.create(
        registry,
        actor,
        notify.sealer_for(registry.settings),
        spec,
        allow_private=registry.settings.webhook_allow_private,
    )


@router.get(
    "/webhooks",
    response_model=WebhookList,
    response_model_exclude_unset=True,
    operation_id="webhooks-list",
    tags=["webhooks"],
)
def list_webhooks(registry: RegistryDep, actor: ActorDep) -> Any:
    """The subscriptions the caller administers (never their secrets)."""
    return {"items": notify.list_webhooks(registry, actor)}


@router.delete(
    "/webhooks/{webhook_id}",
    response_model=WebhookRead,
    response_model_exclude_unset=True,
    operation_id="webhooks-remove",
    tags=["webhooks"],
)
def remove_webhook(webhook_id: str, registry: RegistryDep, actor: ActorDep) -> Any:
    """Remove a subscription and its deliveries."""
    return notify.remove(registry, actor, webhook_id)


@router.post(
    "/webhooks/{webhook_id}/rotate",
    response_model=WebhookRead,
    response_model_exclude_unset=True,
    operation_id="webhooks-rotate",
    tags=["webhooks"],
)
def rotate_webhook(
    webhook_id: str, body: RotateBody, registry: RegistryDep, actor: ActorDep
) -> Any:
    """A new signing secret (shown once); the previous one signs too for ``overlap_hours``."""
    sealer = notify.sealer_for(registry.settings)
    return notify.rotate(registry, actor, sealer, webhook_id, body.overlap_hours)


@router.post(
    "/webhooks/{webhook_id}/test",
    status_code=201,
    response_model=DeliveryRead,
    operation_id="webhooks-test",
    tags=["webhooks"],
)
def test_webhook(webhook_id: str, registry: RegistryDep, actor: ActorDep) -> Any:
    """Queue a ``modelreg:test`` message to the subscription: the pending delivery."""
    return notify.test(registry, actor, webhook_id)


@router.get(
    "/deliveries",
    response_model=DeliveryPage,
    operation_id="deliveries-list",
    tags=["deliveries"],
)
def list_deliveries(
    registry: RegistryDep,
    actor: ActorDep,
    webhook: str | None = Query(default=None, max_length=64),
    failed: bool = False,
    page_size: int = Query(default=50, ge=1, le=1000),
    page_token: str | None = Query(default=None, max_length=4096),
) -> Any:
    """Deliveries newest first: of one subscription, or of all the caller administers."""
    return notify.deliveries(registry, actor, webhook, failed, page_size, page_token)


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryRead,
    operation_id="deliveries-redeliver",
    tags=["deliveries"],
)
def redeliver(delivery_id: str, registry: RegistryDep, actor: ActorDep) -> Any:
    """Send a delivery again: pending, due now, same ``webhook-id``."""
    return notify.redeliver(registry, actor, delivery_id)

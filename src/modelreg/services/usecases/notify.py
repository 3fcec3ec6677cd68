"""Subscriptions and their deliveries (``services.webhooks``), once for every door.

``create`` and ``rotate`` answer the signing secret in their dict (``secret``), and only they:
the doors show it once and keep nothing. The sealer is the door's (``Settings.sealing_key``).
"""

from __future__ import annotations

from typing import Any

from modelreg.config import Settings
from modelreg.services import webhooks
from modelreg.services.actor import Actor
from modelreg.services.secrets import Sealer
from modelreg.services.usecases._handles import Handles, Page, page


def sealer_for(settings: Settings) -> Sealer:
    """The sealer of a registry's stored secrets."""
    return Sealer(settings.sealing_key())


def create(
    h: Handles,
    actor: Actor,
    sealer: Sealer,
    spec: webhooks.NewWebhook,
    *,
    allow_private: bool = False,
) -> dict[str, Any]:
    """Create a subscription: it, with its signing secret (``secret``) this once.

    ``allow_private`` is the server's ``webhook_allow_private``: without it a URL whose host
    is a private or loopback IP address is refused now (host names are checked when sending).
    """
    with h.write() as session:
        hook, secret = webhooks.create(
            session, spec, actor=actor, sealer=sealer, allow_private=allow_private
        )
        return webhooks.to_dict(hook, secret)


def list_webhooks(h: Handles, actor: Actor) -> list[dict[str, Any]]:
    """The subscriptions the caller administers, never a secret."""
    with h.read() as session:
        return [webhooks.to_dict(w) for w in webhooks.list_webhooks(session, actor=actor)]


def remove(h: Handles, actor: Actor, webhook_id: str) -> dict[str, Any]:
    """Remove a subscription and its deliveries: what it was."""
    with h.write() as session:
        return webhooks.remove(session, webhook_id, actor=actor)


def rotate(
    h: Handles, actor: Actor, sealer: Sealer, webhook_id: str, overlap_hours: int
) -> dict[str, Any]:
    """A new signing secret (``secret``, this once); the previous signs for ``overlap_hours``."""
    with h.write() as session:
        hook, secret = webhooks.rotate_secret(
            session, webhook_id, actor=actor, sealer=sealer, overlap_hours=overlap_hours
        )
        return webhooks.to_dict(hook, secret)


def test(h: Handles, actor: Actor, webhook_id: str) -> dict[str, Any]:
    """Queue a test message (``modelreg:test``) to a subscription: the pending delivery."""
    with h.write() as session:
        delivery = webhooks.enqueue_test(session, webhook_id, actor=actor)
        return webhooks.delivery_to_dict(delivery, *webhooks.event_of(session, delivery))


def deliveries(
    h: Handles,
    actor: Actor,
    webhook_id: str | None,
    failed_only: bool,
    page_size: int,
    page_token: str | None,
) -> Page:
    """Deliveries newest first, of one subscription or of all the caller administers."""
    with h.read() as session:
        found = webhooks.list_deliveries(
            session,
            actor=actor,
            webhook_id=webhook_id,
            failed_only=failed_only,
            page_size=page_size,
            page_token=page_token,
        )
        items = [webhooks.delivery_to_dict(d, event, target) for d, event, target in found]
        return page(items, found.next_page_token)


def redeliver(h: Handles, actor: Actor, delivery_id: str) -> dict[str, Any]:
    """Send a delivery again (pending, due now): the delivery."""
    with h.write() as session:
        delivery = webhooks.redeliver(session, delivery_id, actor=actor)
        event, target = webhooks.event_of(session, delivery)
        return webhooks.delivery_to_dict(delivery, event, target)

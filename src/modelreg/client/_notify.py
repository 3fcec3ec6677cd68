"""``Registry``'s verbs for event subscriptions and their deliveries (a mixin of ``Registry``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from modelreg.errors import InvalidInput

if TYPE_CHECKING:
    from modelreg.client._backend import Backend
    from modelreg.types import Delivery, Page, Webhook

KINDS = ("webhook", "slack", "email")


class Notifications:
    """Subscribe URLs (webhooks, Slack) and addresses (email) to registry events."""

    @property
    def backend(self) -> Backend:  # pragma: no cover - ``Registry`` defines it
        raise NotImplementedError

    def create_webhook(
        self,
        url: str | None = None,
        *,
        kind: str = "webhook",
        events: Sequence[str] = (),
        model: str = "*",
        to: str | None = None,
        description: str = "",
    ) -> Webhook:
        """Subscribe ``url`` (or, kind ``email``, the address ``to``) to events.

        ``events`` are patterns on event names (the audit log's actions: ``registry:version:*``;
        none: every event); ``model`` a model name or, for registry admins, a glob. ``.secret``
        (kind ``webhook``) is the signing secret, shown only now.
        """
        if kind not in KINDS:
            raise InvalidInput(
                f"unknown kind {kind!r}: webhook, slack or email", detail={"kind": kind}
            )
        patterns = [events] if isinstance(events, str) else list(events)
        return self.backend.create_webhook(kind, url or "", to or "", patterns, model, description)

    def list_webhooks(self) -> list[Webhook]:
        """The subscriptions you administer (never their secrets)."""
        return self.backend.list_webhooks()

    def remove_webhook(self, webhook_id: str) -> Webhook:
        """Remove a subscription and its deliveries: what it was."""
        return self.backend.remove_webhook(webhook_id)

    def rotate_webhook_secret(self, webhook_id: str, *, overlap_hours: int = 24) -> Webhook:
        """A new signing secret (``.secret``, shown only now).

        The previous one keeps signing for ``overlap_hours`` (messages carry both signatures),
        so receivers can switch without missing one; 0 stops it at once.
        """
        return self.backend.rotate_webhook_secret(webhook_id, overlap_hours)

    def test_webhook(self, webhook_id: str) -> Delivery:
        """Queue a test message (``modelreg:test``) to a subscription: its pending delivery."""
        return self.backend.test_webhook(webhook_id)

    def deliveries(
        self,
        webhook_id: str | None = None,
        *,
        failed: bool = False,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> Page[Delivery]:
        """Deliveries newest first: of one subscription, or of all you administer."""
        return self.backend.list_deliveries(webhook_id, failed, int(page_size), page_token)

    def redeliver(self, delivery_id: str) -> Delivery:
        """Send a delivery again (its retries start over; same ``webhook-id``)."""
        return self.backend.redeliver(delivery_id)

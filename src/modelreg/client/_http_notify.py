"""``HttpBackend``'s verbs for subscriptions and deliveries (``/api/v1/webhooks``, …)."""

from __future__ import annotations

import re
from typing import Any

from modelreg.errors import InvalidInput
from modelreg.types import Delivery, Page, Webhook

API = "/api/v1"


_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _segment(value: str, what: str = "subscription") -> str:
    """An id as one path segment: never a "/", "..", "?" or "#" reaching the URL.

    What is refused here the server refuses alike (``services.webhooks``), with this message.
    """
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise InvalidInput(f"invalid {what} id {str(value)[:80]!r}", detail={})
    return value


class HttpNotifications:
    """A mixin of ``HttpBackend``: each verb is one REST call, its answer the typed result."""

    def _obj(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def _items(self, url: str, **kwargs: Any) -> list[dict[str, Any]]:  # pragma: no cover
        raise NotImplementedError

    def create_webhook(
        self, kind: str, url: str, to: str, events: list[str], model: str, description: str
    ) -> Webhook:
        """Create a subscription; the answer holds its secret this once."""
        body = {
            "kind": kind,
            "url": url,
            "to": to,
            "events": events or ["*"],
            "model": model,
            "description": description,
        }
        return Webhook.from_dict(self._obj("POST", f"{API}/webhooks", json=body))

    def list_webhooks(self) -> list[Webhook]:
        """The subscriptions the caller administers."""
        return [Webhook.from_dict(w) for w in self._items(f"{API}/webhooks")]

    def remove_webhook(self, webhook_id: str) -> Webhook:
        """Remove a subscription."""
        return Webhook.from_dict(self._obj("DELETE", f"{API}/webhooks/{_segment(webhook_id)}"))

    def rotate_webhook_secret(self, webhook_id: str, overlap_hours: int) -> Webhook:
        """A new signing secret."""
        url = f"{API}/webhooks/{_segment(webhook_id)}/rotate"
        return Webhook.from_dict(self._obj("POST", url, json={"overlap_hours": overlap_hours}))

    def test_webhook(self, webhook_id: str) -> Delivery:
        """Queue a test message."""
        url = f"{API}/webhooks/{_segment(webhook_id)}/test"
        return Delivery.from_dict(self._obj("POST", url))

    def list_deliveries(
        self, webhook_id: str | None, failed: bool, page_size: int, page_token: str | None
    ) -> Page[Delivery]:
        """One page of deliveries, newest first."""
        params: dict[str, Any] = {"page_size": page_size}
        if webhook_id is not None:
            params["webhook"] = _segment(webhook_id)
        if failed:
            params["failed"] = "true"
        if page_token is not None:
            params["page_token"] = page_token
        data = self._obj("GET", f"{API}/deliveries", params=params)
        return Page.from_dict(data, Delivery.from_dict)

    def redeliver(self, delivery_id: str) -> Delivery:
        """Send a delivery again."""
        url = f"{API}/deliveries/{_segment(delivery_id, 'delivery')}/redeliver"
        return Delivery.from_dict(self._obj("POST", url))

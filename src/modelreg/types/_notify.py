"""Notification results: event subscriptions (``Webhook``) and their deliveries (``Delivery``)."""

from __future__ import annotations

from dataclasses import dataclass

from modelreg.types._wire import Result


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Webhook(Result):
    """A subscription: which events (``events`` patterns, ``model``) go where.

    ``url`` is shown with its query and a Slack URL's token masked; ``secret`` (``whsec_…``)
    is set only in the answer that made it (create, rotate) and never shown again.
    """

    _optional = frozenset({"secret"})

    id: str
    kind: str
    url: str | None
    to: str | None
    events: list[str]
    model: str
    model_only: bool
    description: str
    created_by: str
    created_at: str
    disabled_at: str | None
    disabled_reason: str | None
    previous_secret_expires_at: str | None
    secret: str | None = None

    def __repr__(self) -> str:
        # Never the secret: a result in a log or a traceback must not leak it.
        hidden = ", secret='…'" if self.secret is not None else ""
        return (
            f"Webhook(id={self.id!r}, kind={self.kind!r}, url={self.url!r}, to={self.to!r}, "
            f"events={self.events!r}, model={self.model!r}{hidden})"
        )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Delivery(Result):
    """One event's delivery to one subscription; ``id`` is the message's ``webhook-id``.

    ``state`` is ``pending``, ``delivered`` or ``failed``; ``event_seq`` 0 is a test message.
    """

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

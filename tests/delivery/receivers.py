"""Test helpers for delivery: a real webhook receiver on loopback, and subscriptions.

Until services/webhooks.py (issue 22, E2) lands, subscriptions are ``Webhook`` rows inserted
directly, with a secret sealed as that module seals it.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import Engine, func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelreg.config import Settings
from modelreg.db.session import transaction
from modelreg.db.tables import AuditEvent
from modelreg.db.tables.notify import DeliveryState, Webhook, WebhookDelivery, WebhookKind
from modelreg.services.secrets import Sealer, new_webhook_secret

SECRET_KEY = Fernet.generate_key().decode()


def settings_for(home: Path, db_url: str, **more: Any) -> Settings:
    """Settings on ``db_url`` that allow loopback targets (the receivers)."""
    return Settings(home=home, db=db_url, secret_key=SECRET_KEY, webhook_allow_private=True, **more)


def subscribe(
    engine: Engine,
    url: str = "",
    *,
    kind: WebhookKind = WebhookKind.WEBHOOK,
    events: list[str] | None = None,
    to: str = "",
    created_by: str = "admin",
    secret: str | None = None,
) -> tuple[uuid.UUID, str]:
    """A subscription from now on (its cursor at the log's head); its id and secret."""
    secret = secret or new_webhook_secret()
    with transaction(engine, write=True) as session:
        head = session.scalar(select(func.max(AuditEvent.seq))) or 0
        hook = Webhook(
            id=uuid.uuid4(),
            kind=kind,
            url=url,
            to_address=to,
            events=events or ["*"],
            model_glob="*",
            # A Slack subscription keeps its (secret) URL sealed instead (services.webhooks).
            secret_enc=Sealer(SECRET_KEY).seal(url if kind is WebhookKind.SLACK else secret),
            created_by=created_by,
            cursor_seq=head,
        )
        session.add(hook)
    return hook.id, secret


def deliveries(engine: Engine, webhook_id: uuid.UUID) -> list[WebhookDelivery]:
    """The subscription's deliveries in event order."""
    with transaction(engine, write=False) as session:
        return list(
            session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook_id)
                .order_by(WebhookDelivery.event_seq)
            )
        )


def all_delivered(engine: Engine, webhook_id: uuid.UUID, count: int) -> bool:
    """Whether ``count`` deliveries exist and every one was delivered."""
    rows = deliveries(engine, webhook_id)
    return len(rows) == count and all(d.state is DeliveryState.DELIVERED for d in rows)


@dataclass
class Received:
    """One request the receiver took."""

    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers each POST with the next of ``answers`` (then 200) and keeps what it got."""

    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    got: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        """The ASGI app to serve (``ThreadedServer(receiver.app())``)."""

        async def hook(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.got.append(Received(dict(request.headers), body))
                status, headers = self.answers.pop(0) if self.answers else (200, {})
            return Response(f"answer {status}", status_code=status, headers=headers)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

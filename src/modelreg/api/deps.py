"""What routes need: the registry's engine, blob store and settings, and who is asking."""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from modelreg.config import Settings
from modelreg.db.session import transaction
from modelreg.errors import Unauthenticated
from modelreg.services import auth
from modelreg.services.actor import Actor
from modelreg.storage import BlobStore


@dataclass
class Registry:
    """The server's handles on one registry; every request opens its own transaction."""

    settings: Settings
    engine: Engine
    store: BlobStore
    owner: str

    def read(self) -> contextlib.AbstractContextManager[Session]:
        """A read-only transaction."""
        return transaction(self.engine, write=False)

    def write(self) -> contextlib.AbstractContextManager[Session]:
        """A write transaction (takes SQLite's write lock up front)."""
        return transaction(self.engine, write=True)


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _actor(request: Request) -> Actor:
    """Authenticate the request: deny by default, every route under /api depends on this.

    A registry without users answers loopback clients only (laptop mode): they are processes of
    this machine's users and act as the registry's owner, as in embedded mode. Once a user
    exists, every request needs a valid bearer token.
    """
    registry: Registry = request.app.state.registry
    client = request.client.host if request.client else None
    with registry.read() as session:
        if not auth.has_principals(session):
            if not _is_loopback(client):
                raise Unauthenticated(
                    "this registry has no users yet, so it only answers loopback clients",
                    detail={},
                )
            return Actor(registry.owner, source="api", superuser=True)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        secret = token.strip() if scheme.lower() == "bearer" else None
        return auth.authenticate(session, secret, source=f"api:{client}")


RegistryDep = Annotated[Registry, Depends(_registry)]
ActorDep = Annotated[Actor, Depends(_actor)]

"""What routes need: the registry's engine, blob store and settings, and who is asking."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from modelreg.config import Settings
from modelreg.db.session import transaction
from modelreg.services.audit import Actor
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


def _actor(request: Request) -> Actor:
    # Without users the server only answers loopback clients (see app.py), i.e. processes of
    # the machine's own users; they act as the registry's owner, as in embedded mode.
    registry: Registry = request.app.state.registry
    return Actor(registry.owner, source="api")


RegistryDep = Annotated[Registry, Depends(_registry)]
ActorDep = Annotated[Actor, Depends(_actor)]

"""``Handles``: what a use-case needs from its door (transactions and the blob store)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from sqlalchemy.orm import Session

from modelreg.storage import BlobStore

# A page in its JSON shape: ``{"items": [...], "next_page_token": str | None}``.
Page = dict[str, Any]


class Handles(Protocol):
    """A registry's transactions and blob store (the server's, or the embedded backend's)."""

    @property
    def store(self) -> BlobStore:
        """The blob store."""
        ...

    def read(self) -> AbstractContextManager[Session]:
        """A read-only transaction."""
        ...

    def write(self) -> AbstractContextManager[Session]:
        """A write transaction."""
        ...


def page(items: list[dict[str, Any]], token: str | None) -> Page:
    """A page's JSON shape."""
    return {"items": items, "next_page_token": token}

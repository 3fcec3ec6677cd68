"""Identity results: users and service accounts with their grants, and API tokens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelreg.types._wire import Result


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Grant(Result):
    """A role, registry-wide (``model`` is ``None``) or on one model."""

    role: str
    model: str | None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class User(Result):
    """A user or service account (``kind``) and its grants."""

    name: str
    kind: str
    disabled: bool
    created_at: str
    roles: list[Grant]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> User:
        """Build from the JSON shape."""
        return cls(
            name=data["name"],
            kind=data["kind"],
            disabled=data["disabled"],
            created_at=data["created_at"],
            roles=[Grant.from_dict(g) for g in data.get("roles") or []],
        )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Token(Result):
    """An API token's metadata; ``token`` holds the secret only in the answer that issued it."""

    _optional = frozenset({"token"})

    id: str
    principal: str
    name: str
    created_at: str
    expires_at: str | None
    revoked: bool
    token: str | None = None

    def __repr__(self) -> str:
        # Never the secret: a token in a log or a traceback must not leak it.
        hidden = ", token='…'" if self.token is not None else ""
        return (
            f"Token(id={self.id!r}, principal={self.principal!r}, name={self.name!r}, "
            f"revoked={self.revoked!r}{hidden})"
        )

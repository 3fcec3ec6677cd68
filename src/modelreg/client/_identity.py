"""Users, roles and API tokens of ``modelreg.Registry`` (docs/server.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelreg.client._backend import Backend
from modelreg.errors import InvalidInput

if TYPE_CHECKING:
    from modelreg.types import Token, User


class Identity:
    """Who may use the registry: users and service accounts, their roles and tokens."""

    @property
    def backend(self) -> Backend:  # pragma: no cover - ``Registry`` defines it
        raise NotImplementedError

    def create_user(
        self,
        name: str,
        *,
        role: str | None = None,
        model: str | None = None,
        service: bool = False,
    ) -> User:
        """Create a user (or a service account), optionally with a first role.

        Once a registry has a user, every request to its server needs a token.
        """
        _check_role(role)
        kind = "service" if service else "user"
        return self.backend.create_user(name, kind, role, model)

    def list_users(self) -> list[User]:
        """Users and service accounts with their roles."""
        return self.backend.list_users()

    def grant(self, name: str, role: str, *, model: str | None = None) -> User:
        """Give ``name`` a role registry-wide, or on ``model`` only."""
        _check_role(role)
        return self.backend.grant(name, role, model)

    def revoke(self, name: str, role: str, *, model: str | None = None) -> User:
        """Take ``role`` (registry-wide, or on ``model``) away from ``name``.

        Raises ``NotFound`` when ``name`` holds no such grant, and ``Conflict`` when it is the
        registry-wide admin role of the last enabled admin.
        """
        _check_role(role)
        return self.backend.revoke(name, role, model)

    def disable_user(self, name: str) -> User:
        """Disable a user or service account: its tokens stop working at once.

        Its history stays; ``enable_user`` undoes it. An admin cannot disable itself or the
        last enabled admin (``Conflict``).
        """
        return self.backend.set_disabled(name, True)

    def enable_user(self, name: str) -> User:
        """Enable a disabled user again (its unrevoked, unexpired tokens work again)."""
        return self.backend.set_disabled(name, False)

    def create_token(self, name: str, *, label: str = "", expires_days: int | None = None) -> Token:
        """Issue an API token for ``name``; ``.token`` holds the secret, shown only now."""
        return self.backend.create_token(name, label, expires_days)

    def list_tokens(self, name: str | None = None) -> list[Token]:
        """Tokens (never their secrets), optionally of one user."""
        return self.backend.list_tokens(name)

    def revoke_token(self, token_id: str) -> Token:
        """Revoke a token; it stops working at once."""
        return self.backend.revoke_token(token_id)


ROLES = ("viewer", "contributor", "approver", "admin")


def _check_role(role: str | None) -> None:
    if role is not None and role not in ROLES:
        raise InvalidInput(
            f"unknown role {role!r}; use one of {', '.join(ROLES)}", detail={"role": role}
        )

"""Who acts, and what they may do: the identity every service function receives."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from modelreg.db.tables import Role
from modelreg.errors import PermissionDenied


class Permission(StrEnum):
    """Every guarded action, named ``subject:action``; ``REQUIRED`` maps each to a role."""

    READ = "registry:read"
    MODEL_CREATE = "model:create"
    MODEL_UPDATE = "model:update"
    MODEL_DELETE = "model:delete"
    VERSION_REGISTER = "version:register"
    VERSION_UPDATE = "version:update"
    VERSION_DELETE = "version:delete"
    ALIAS_SET = "alias:set"
    PROMOTE = "promotion:promote"
    APPROVE = "promotion:approve"
    ROLLBACK = "model:rollback"
    POLICY_SET = "policy:set"
    AUDIT_READ = "audit:read"
    BLOB_GC = "blob:gc"
    ADMIN = "registry:admin"


REQUIRED: dict[Permission, Role] = {
    Permission.READ: Role.VIEWER,
    Permission.AUDIT_READ: Role.VIEWER,
    Permission.MODEL_CREATE: Role.CONTRIBUTOR,
    Permission.MODEL_UPDATE: Role.CONTRIBUTOR,
    Permission.VERSION_REGISTER: Role.CONTRIBUTOR,
    Permission.VERSION_UPDATE: Role.CONTRIBUTOR,
    Permission.ALIAS_SET: Role.CONTRIBUTOR,
    Permission.PROMOTE: Role.CONTRIBUTOR,
    # A policy may ask for a stronger approver role; it is checked with ``has_role``.
    Permission.APPROVE: Role.APPROVER,
    Permission.ROLLBACK: Role.APPROVER,
    Permission.POLICY_SET: Role.ADMIN,
    Permission.VERSION_DELETE: Role.APPROVER,
    Permission.MODEL_DELETE: Role.ADMIN,
    Permission.BLOB_GC: Role.ADMIN,
    Permission.ADMIN: Role.ADMIN,
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a name for the audit log, where from, and the roles they hold.

    ``superuser`` is the registry owner acting locally (embedded mode, or a server that has no
    users yet and so only answers loopback clients). Everyone else holds ``grants``: a role
    registry-wide (key ``None``) and/or per model id.
    """

    name: str
    source: str = "cli"
    superuser: bool = True
    principal_id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None
    grants: dict[uuid.UUID | None, Role] = field(default_factory=dict)
    # When the token this actor authenticated with stops working (``None``: never).
    expires_at: datetime | None = None

    def role_on(self, model_id: uuid.UUID | None) -> Role | None:
        """The strongest role this actor holds on ``model_id`` (registry-wide included)."""
        roles = [r for r in (self.grants.get(None), self.grants.get(model_id)) if r is not None]
        return max(roles, key=lambda r: r.rank) if roles else None

    def can(self, permission: Permission, model_id: uuid.UUID | None = None) -> bool:
        """Whether the actor may do ``permission`` on ``model_id`` (``None``: registry-wide)."""
        if self.superuser:
            return True
        role = self.role_on(model_id)
        return role is not None and role.rank >= REQUIRED[permission].rank

    def has_role(self, role: Role, model_id: uuid.UUID | None = None) -> bool:
        """Whether the actor holds ``role`` (or a stronger one) on ``model_id``."""
        if self.superuser:
            return True
        held = self.role_on(model_id)
        return held is not None and held.rank >= role.rank

    def require(self, permission: Permission, model_id: uuid.UUID | None = None) -> None:
        """Raise ``PermissionDenied`` unless ``can``; deny is the default for every action."""
        if not self.can(permission, model_id):
            needed = REQUIRED[permission].value
            raise PermissionDenied(
                f"{self.name} may not {permission.value}: it needs the {needed} role",
                detail={"permission": permission.value, "role_needed": needed},
            )

    def readable_models(self) -> set[uuid.UUID] | None:
        """Model ids this actor may read, or ``None`` when it may read every model."""
        if self.superuser or self.grants.get(None) is not None:
            return None
        return {m for m in self.grants if m is not None}

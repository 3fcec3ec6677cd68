"""``/api/v1/principals``, ``/tokens``, ``/grants``: users, service accounts, tokens and roles."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.db.tables import PrincipalKind, Role
from modelreg.services import auth
from modelreg.services.usecases import admin as usecases

# Three nouns share this module: users (principals), their tokens and their roles.
router = APIRouter(prefix="/api/v1", route_class=StrictJsonRoute)


class PrincipalCreate(BaseModel):
    """Body of ``POST /principals``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=128)
    kind: PrincipalKind = PrincipalKind.USER
    role: Role | None = None
    model: str | None = Field(default=None, max_length=200)


class TokenCreate(BaseModel):
    """Body of ``POST /tokens``."""

    model_config = ConfigDict(extra="forbid")
    principal: str = Field(max_length=128)
    name: str = Field(default="", max_length=128)
    expires_days: int | None = Field(default=None, ge=1, le=auth.MAX_TOKEN_DAYS)


class GrantCreate(BaseModel):
    """Body of ``POST /grants``."""

    model_config = ConfigDict(extra="forbid")
    principal: str = Field(max_length=128)
    role: Role
    model: str | None = Field(default=None, max_length=200)


@router.post("/principals", status_code=201, operation_id="users-create", tags=["users"])
def create_principal(body: PrincipalCreate, registry: RegistryDep, actor: ActorDep) -> Any:
    """Create a user or service account (admin)."""
    return usecases.create_principal(registry, actor, body.name, body.kind, body.role, body.model)


@router.get("/principals", operation_id="users-list", tags=["users"])
def list_principals(registry: RegistryDep, actor: ActorDep) -> dict[str, Any]:
    """Every user and service account with its roles (admin)."""
    return {"items": usecases.list_principals(registry, actor)}


@router.post("/tokens", status_code=201, operation_id="tokens-create", tags=["tokens"])
def create_token(body: TokenCreate, registry: RegistryDep, actor: ActorDep) -> dict[str, Any]:
    """Issue a token; its secret is in this answer and nowhere else (admin)."""
    return usecases.create_token(registry, actor, body.principal, body.name, body.expires_days)


@router.get("/tokens", operation_id="tokens-list", tags=["tokens"])
def list_tokens(
    registry: RegistryDep,
    actor: ActorDep,
    principal: str | None = Query(default=None, max_length=128),
) -> dict[str, Any]:
    """Tokens, never their secrets (admin)."""
    return {"items": usecases.list_tokens(registry, actor, principal)}


@router.delete("/tokens/{token_id}", operation_id="tokens-revoke", tags=["tokens"])
def revoke_token(token_id: str, registry: RegistryDep, actor: ActorDep) -> dict[str, Any]:
    """Revoke a token (admin)."""
    return usecases.revoke_token(registry, actor, token_id)


class PrincipalUpdate(BaseModel):
    """Body of ``PATCH /principals/{name}``."""

    model_config = ConfigDict(extra="forbid")
    disabled: bool


@router.patch("/principals/{name}", operation_id="users-update", tags=["users"])
def update_principal(
    name: str, body: PrincipalUpdate, registry: RegistryDep, actor: ActorDep
) -> dict[str, Any]:
    """Disable a principal (its tokens stop working at once) or enable it again (admin)."""
    return usecases.set_disabled(registry, actor, name, body.disabled)


@router.delete("/principals/{name}/grants/{role}", operation_id="roles-revoke", tags=["roles"])
def revoke(
    name: str,
    role: Role,
    registry: RegistryDep,
    actor: ActorDep,
    model: str | None = Query(default=None, max_length=200),
) -> dict[str, Any]:
    """Take a role away from a principal, registry-wide or on one model (admin)."""
    return usecases.revoke(registry, actor, name, role, model)


@router.post("/grants", status_code=201, operation_id="roles-grant", tags=["roles"])
def grant(body: GrantCreate, registry: RegistryDep, actor: ActorDep) -> dict[str, Any]:
    """Give a principal a role, registry-wide or on one model (admin)."""
    return usecases.grant(registry, actor, body.principal, body.role, body.model)

"""``/api/v1/principals``, ``/tokens``, ``/grants``: users, service accounts, tokens and roles."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.db.tables import PrincipalKind, Role
from modelreg.services import auth

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
    with registry.write() as session:
        principal = auth.create_principal(
            session, body.name, actor=actor, kind=body.kind, role=body.role, model=body.model
        )
        grants = [g for p, g in auth.list_principals(session, actor=actor) if p.id == principal.id]
        return auth.principal_to_dict(principal, grants[0] if grants else [])


@router.get("/principals", operation_id="users-list", tags=["users"])
def list_principals(registry: RegistryDep, actor: ActorDep) -> dict[str, Any]:
    """Every user and service account with its roles (admin)."""
    with registry.read() as session:
        rows = auth.list_principals(session, actor=actor)
        return {"items": [auth.principal_to_dict(p, g) for p, g in rows]}


@router.post("/tokens", status_code=201, operation_id="tokens-create", tags=["tokens"])
def create_token(body: TokenCreate, registry: RegistryDep, actor: ActorDep) -> dict[str, Any]:
    """Issue a token; its secret is in this answer and nowhere else (admin)."""
    with registry.write() as session:
        token, secret = auth.create_token(
            session, body.principal, actor=actor, label=body.name, expires_days=body.expires_days
        )
        return auth.token_to_dict(token, secret)


@router.get("/tokens", operation_id="tokens-list", tags=["tokens"])
def list_tokens(
    registry: RegistryDep,
    actor: ActorDep,
    principal: str | None = Query(default=None, max_length=128),
) -> dict[str, Any]:
    """Tokens, never their secrets (admin)."""
    with registry.read() as session:
        tokens = auth.list_tokens(session, actor=actor, name=principal)
        return {"items": [auth.token_to_dict(t) for t in tokens]}


@router.delete("/tokens/{token_id}", operation_id="tokens-revoke", tags=["tokens"])
def revoke_token(token_id: str, registry: RegistryDep, actor: ActorDep) -> dict[str, Any]:
    """Revoke a token (admin)."""
    with registry.write() as session:
        return auth.token_to_dict(auth.revoke_token(session, token_id, actor=actor))


class PrincipalUpdate(BaseModel):
    """Body of ``PATCH /principals/{name}``."""

    model_config = ConfigDict(extra="forbid")
    disabled: bool


@router.patch("/principals/{name}", operation_id="users-update", tags=["users"])
def update_principal(
    name: str, body: PrincipalUpdate, registry: RegistryDep, actor: ActorDep
) -> dict[str, Any]:
    """Disable a principal (its tokens stop working at once) or enable it again (admin)."""
    with registry.write() as session:
        principal = auth.set_disabled(session, name, actor=actor, disabled=body.disabled)
        return auth.principal_to_dict(principal, auth.grants_of(session, principal))


@router.delete("/principals/{name}/grants/{role}", operation_id="roles-revoke", tags=["roles"])
def revoke(
    name: str,
    role: Role,
    registry: RegistryDep,
    actor: ActorDep,
    model: str | None = Query(default=None, max_length=200),
) -> dict[str, Any]:
    """Take a role away from a principal, registry-wide or on one model (admin)."""
    with registry.write() as session:
        principal = auth.revoke_role(session, name, role, actor=actor, model=model)
        return auth.principal_to_dict(principal, auth.grants_of(session, principal))


@router.post("/grants", status_code=201, operation_id="roles-grant", tags=["roles"])
def grant(body: GrantCreate, registry: RegistryDep, actor: ActorDep) -> dict[str, Any]:
    """Give a principal a role, registry-wide or on one model (admin)."""
    with registry.write() as session:
        auth.grant_role(session, body.principal, body.role, actor=actor, model=body.model)
        rows = auth.list_principals(session, actor=actor)
        principal, grants = next((p, g) for p, g in rows if p.name == body.principal)
        return auth.principal_to_dict(principal, grants)

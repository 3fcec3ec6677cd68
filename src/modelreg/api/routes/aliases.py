"""``/api/v1/models/{name}/aliases/{alias}``: point an alias at a version, or remove it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.api.schemas import AliasSet, VersionRead
from modelreg.services import aliases, serialize

router = APIRouter(prefix="/api/v1", tags=["aliases"])


@router.put(
    "/models/{name:model}/aliases/{alias}",
    response_model=VersionRead,
    operation_id="aliases-set",
)
def set_alias(name: str, alias: str, body: AliasSet, registry: RegistryDep, actor: ActorDep) -> Any:
    """Point an alias at a version (create or move); answers the version."""
    with registry.write() as session:
        row = aliases.set_alias(session, name, alias, body.version, actor=actor, reason=body.reason)
        session.refresh(row.version)
        return serialize.version_to_dict(row.version)


@router.delete("/models/{name:model}/aliases/{alias}", operation_id="aliases-delete")
def delete_alias(
    name: str,
    alias: str,
    registry: RegistryDep,
    actor: ActorDep,
    reason: str = Query(default="", max_length=5000),
) -> dict[str, Any]:
    """Remove an alias; answers the version it pointed at."""
    with registry.write() as session:
        number = aliases.delete_alias(session, name, alias, actor=actor, reason=reason)
    return {"name": name, "alias": alias, "version": number}

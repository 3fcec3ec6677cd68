"""``/api/v1/models/{name}/aliases/{alias}``: point an alias at a version, or remove it.

An alias a policy protects moves through a promotion request, as ``POST …/promotions`` does:
202 while it waits for approvals, 422 (after the refusal is stored) when a gate refuses it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, IfMatchDep, RegistryDep, expect_current
from modelreg.api.errors import PROMOTION_ANSWERS, promotion_answer
from modelreg.api.schemas import AliasDeleted, AliasSet, VersionRead
from modelreg.names import MAX_VERSION
from modelreg.services.usecases import governance

router = APIRouter(prefix="/api/v1", tags=["aliases"], route_class=StrictJsonRoute)


@router.put(
    "/models/{name:model}/aliases/{alias}",
    response_model=VersionRead,
    operation_id="aliases-set",
    responses=PROMOTION_ANSWERS,
)
def set_alias(
    name: str,
    alias: str,
    body: AliasSet,
    registry: RegistryDep,
    actor: ActorDep,
    if_match: IfMatchDep,
) -> Any:
    """Point an alias at a version (create or move); answers the version."""
    expected = expect_current(body.expect_current, if_match)
    status, answer = governance.set_alias(
        registry, actor, name, alias, body.version, body.reason, expected
    )
    return answer if status == 200 else promotion_answer(answer)


@router.delete(
    "/models/{name:model}/aliases/{alias}",
    response_model=AliasDeleted,
    operation_id="aliases-delete",
)
def delete_alias(
    name: str,
    alias: str,
    registry: RegistryDep,
    actor: ActorDep,
    if_match: IfMatchDep,
    reason: str = Query(default="", max_length=5000),
    expect: int | None = Query(
        default=None,
        alias="expect_current",
        ge=0,
        le=MAX_VERSION,
        description="the version the alias must point at now, else 409",
    ),
) -> Any:
    """Remove an alias; answers the version it pointed at."""
    expected = expect_current(expect, if_match)
    return governance.delete_alias(registry, actor, name, alias, reason, expected)

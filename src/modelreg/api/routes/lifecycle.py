"""``/api/v1/…/promotions`` and ``…/rollback``: moves through policy gates and approvals.

A refused request is stored (the audit trail shows who tried to ship what), so its transaction
commits first and only then is the answer the ``policy_violation`` error (422): the use-case
(``services.usecases.governance``) settles it through ``errors.OUTCOMES``, as for every door.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, IfMatchDep, RegistryDep, expect_current
from modelreg.api.errors import PROMOTION_ANSWERS, promotion_answer
from modelreg.api.schemas import (
    PromotionApprove,
    PromotionCreate,
    PromotionPage,
    PromotionRead,
    PromotionReject,
    RollbackCreate,
    RollbackRead,
)
from modelreg.db.tables import PromotionState
from modelreg.names import MAX_VERSION
from modelreg.services.usecases import governance

# Promotions, and the rollback that undoes them (a model operation: tag "models").
router = APIRouter(prefix="/api/v1", route_class=StrictJsonRoute)

PromotionId = Path(ge=1, le=MAX_VERSION, description="the request's id")


@router.post(
    "/models/{name:model}/promotions",
    response_model=PromotionRead,
    operation_id="promotions-promote",
    tags=["promotions"],
    responses=PROMOTION_ANSWERS,
)
def promote(
    name: str, body: PromotionCreate, registry: RegistryDep, actor: ActorDep, if_match: IfMatchDep
) -> Any:
    """Move a version into a stage or ``@alias`` through the model's policy (or a dry run)."""
    expected = expect_current(body.expect_current, if_match)
    answer = governance.promote(
        registry, actor, name, body.version, body.to, body.reason, body.dry_run, expected
    )
    return promotion_answer(answer)


@router.get(
    "/promotions", response_model=PromotionPage, operation_id="promotions-list", tags=["promotions"]
)
def list_promotions(
    registry: RegistryDep,
    actor: ActorDep,
    model: str | None = Query(default=None, max_length=200),
    state: PromotionState | None = None,
    page_size: int = Query(default=100, ge=1, le=1000),
    page_token: str | None = Query(default=None, max_length=4096),
) -> Any:
    """Requests, newest first, optionally of one model and in one state."""
    wanted = state.value if state is not None else None
    return governance.list_promotions(registry, actor, model, wanted, page_size, page_token)


@router.get(
    "/promotions/{promotion_id}",
    response_model=PromotionRead,
    operation_id="promotions-get",
    tags=["promotions"],
)
def get_promotion(registry: RegistryDep, actor: ActorDep, promotion_id: int = PromotionId) -> Any:
    """One request."""
    return governance.get_promotion(registry, actor, promotion_id)


@router.post(
    "/promotions/{promotion_id}/approve",
    response_model=PromotionRead,
    operation_id="promotions-approve",
    tags=["promotions"],
    responses=PROMOTION_ANSWERS,
)
def approve(
    body: PromotionApprove,
    registry: RegistryDep,
    actor: ActorDep,
    promotion_id: int = PromotionId,
) -> Any:
    """Approve a pending request (never one's own); the approval completing the count applies it.

    The gates are checked again then: a version that no longer passes is refused (422).
    """
    return promotion_answer(governance.approve(registry, actor, promotion_id, body.reason))


@router.post(
    "/promotions/{promotion_id}/reject",
    response_model=PromotionRead,
    operation_id="promotions-reject",
    tags=["promotions"],
)
def reject(
    body: PromotionReject,
    registry: RegistryDep,
    actor: ActorDep,
    promotion_id: int = PromotionId,
) -> Any:
    """Reject a pending request (its requester may withdraw it this way)."""
    return governance.reject(registry, actor, promotion_id, body.reason)


@router.post(
    "/models/{name:model}/rollback",
    response_model=RollbackRead,
    operation_id="models-rollback",
    tags=["models"],
)
def rollback(
    name: str, body: RollbackCreate, registry: RegistryDep, actor: ActorDep, if_match: IfMatchDep
) -> Any:
    """Put back the version that held a stage (or ``@alias``) before the current one."""
    expected = expect_current(body.expect_current, if_match)
    return governance.rollback(registry, actor, name, body.stage, body.to, body.reason, expected)

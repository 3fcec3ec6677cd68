"""``/api/v1/audit``: the hash-chained audit log and its verification."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.api.schemas import AnchorRead, AuditPage, VerifyRead
from modelreg.errors import InvalidInput
from modelreg.services.usecases import admin

router = APIRouter(prefix="/api/v1", tags=["audit"], route_class=StrictJsonRoute)
MAX_ANCHORS = 100


@router.get("/audit", response_model=AuditPage, operation_id="audit-list")
def list_events(
    registry: RegistryDep,
    actor: ActorDep,
    model: str | None = Query(default=None, max_length=200),
    after: int = Query(default=0, ge=0, le=2**62),
    limit: int = Query(default=100, ge=1, le=10_000),
) -> Any:
    """Events in sequence order after ``after``, optionally of one model."""
    return {"items": admin.audit_events(registry, actor, model, after, limit)}


@router.get("/audit/verify", response_model=VerifyRead, operation_id="audit-verify")
def verify(
    registry: RegistryDep,
    actor: ActorDep,
    anchor: Annotated[
        list[str] | None,
        Query(description="SEQ:HASH points (audit-head) the chain must still contain"),
    ] = None,
) -> Any:
    """Recompute the hash chain; name the first event that was edited, removed or reordered."""
    if len(anchor or []) > MAX_ANCHORS:
        raise InvalidInput(f"at most {MAX_ANCHORS} anchors", detail={"anchors": len(anchor or [])})
    return admin.verify_audit(registry, actor, list(anchor or []))


@router.get("/audit/head", response_model=AnchorRead, operation_id="audit-anchor")
def head(registry: RegistryDep, actor: ActorDep) -> Any:
    """The chain's head (sequence number, hash, time): an anchor to keep elsewhere."""
    return admin.audit_head(registry, actor)

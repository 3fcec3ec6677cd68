"""``/api/v1/audit``: the hash-chained audit log and its verification."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.api.schemas import AnchorRead, AuditPage, VerifyRead
from modelreg.errors import InvalidInput
from modelreg.services import audit, models

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
    with registry.read() as session:
        target = models.get_model(session, model, actor=actor) if model else None
        events = audit.list_events(
            session,
            actor=actor,
            model=target,
            after_seq=after,
            limit=limit,
        )
        return {"items": [audit.event_to_dict(e) for e in events]}


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
    anchors = [audit.Anchor.parse(a) for a in anchor or []]
    with registry.read() as session:
        return audit.verify(session, actor=actor, anchors=anchors).to_dict()


@router.get("/audit/head", response_model=AnchorRead, operation_id="audit-anchor")
def head(registry: RegistryDep, actor: ActorDep) -> Any:
    """The chain's head (sequence number, hash, time): an anchor to keep elsewhere."""
    with registry.read() as session:
        return audit.head(session, actor=actor).to_dict()

"""``/api/v1/audit``: the hash-chained audit log and its verification."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.api.schemas import AuditPage, VerifyRead
from modelreg.services import audit, models

router = APIRouter(prefix="/api/v1", tags=["audit"], route_class=StrictJsonRoute)


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
            model_id=target.id if target is not None else None,
            model_key=target.normalized_name if target is not None else None,
            after_seq=after,
            limit=limit,
        )
        return {"items": [audit.event_to_dict(e) for e in events]}


@router.get("/audit/verify", response_model=VerifyRead, operation_id="audit-verify")
def verify(registry: RegistryDep, actor: ActorDep) -> Any:
    """Recompute the hash chain; name the first event that was edited, removed or reordered."""
    with registry.read() as session:
        return audit.verify(session, actor=actor).to_dict()

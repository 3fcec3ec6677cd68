"""``/api/v1/events``: the registry's events in order, long-polled (docs/events.md)."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Query, Request

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.api.events_hub import EventHub
from modelreg.api.schemas import EventPage
from modelreg.services.events import MAX_LIMIT
from modelreg.services.usecases.events import event_page

router = APIRouter(prefix="/api/v1", tags=["events"], route_class=StrictJsonRoute)
MAX_WAIT = 60.0


@router.get("/events", response_model=EventPage, operation_id="events-list")
async def list_events(
    request: Request,
    registry: RegistryDep,
    actor: ActorDep,
    after: int | None = Query(
        default=None, ge=0, le=2**62, description="the last seq seen; omitted: from now on"
    ),
    model: str | None = Query(default=None, max_length=200, description="a model name glob"),
    wait: float = Query(default=0.0, ge=0, le=MAX_WAIT, description="seconds to wait for one"),
    limit: int = Query(default=100, ge=1, le=MAX_LIMIT),
) -> Any:
    """Events after ``after`` the caller may read, in order; with ``wait``, a long-poll.

    Answers at once when there are events, else as soon as one is committed (by any process),
    else after ``wait`` seconds with no items. Continue with ``after=next_after``.
    """
    hub: EventHub = request.app.state.events
    read = partial(
        event_page,
        registry,
        actor,
        model=model,
        limit=limit,
        public_url=registry.settings.public_url or None,
    )
    return await hub.page(lambda seq: read(after=seq), after, wait)

"""The event stream's one read: a page of events, and the change stamp it was read under."""

from __future__ import annotations

from typing import Any

from modelreg.db import stamp
from modelreg.services import events
from modelreg.services.actor import Actor
from modelreg.services.usecases._handles import Handles


def event_page(
    h: Handles,
    actor: Actor,
    *,
    after: int | None,
    model: str | None,
    limit: int,
    public_url: str | None,
) -> tuple[dict[str, Any], int]:
    """``({"items", "next_after"}, stamp)``: events after ``after`` the actor may read.

    ``stamp`` is the change stamp read before the events: a caller with no items waits for a
    newer one (``db.changes``) and asks again with ``next_after``.
    """
    with h.read() as session:
        seen = stamp.current(session)
        rows, next_after = events.read_events(
            session, actor=actor, after=after, model_glob=model, limit=limit
        )
        items = [events.event_to_dict(row, public_url) for row in rows]
    return {"items": items, "next_after": next_after}, seen

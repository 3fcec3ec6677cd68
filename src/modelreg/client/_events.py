"""``Registry.events``: the event stream as an iterator, over either backend's pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from modelreg.errors import InvalidInput

if TYPE_CHECKING:
    from modelreg.client._backend import Backend
    from modelreg.types import Event

MAX_WAIT = 60.0  # what the server allows per request
PAGE = 500


def iterate(
    backend: Backend, after: int | None, model: str | None, wait: float, follow: bool
) -> Iterator[Event]:
    """Events in order from ``backend``: every one after ``after``, or, with ``follow``, forever.

    Without ``follow``, ``after=None`` is the start of the log and the iterator ends once it
    has caught up (having waited up to ``wait`` seconds if there was nothing at all). With
    ``follow``, ``after=None`` is now, and each request waits up to ``wait`` seconds.
    """
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= MAX_WAIT:
        raise InvalidInput(f"wait is 0 to {MAX_WAIT:g} seconds", detail={"wait": wait})
    if after is not None and (isinstance(after, bool) or not 0 <= int(after) < 2**62):
        raise InvalidInput("after must be a sequence number", detail={"after": after})
    return _pages(backend, after if after is not None or follow else 0, model, wait, follow)


def _pages(
    backend: Backend, cursor: int | None, model: str | None, wait: float, follow: bool
) -> Iterator[Event]:
    patience = float(wait)
    while True:
        items, cursor = backend.events(cursor, model, patience, PAGE)
        yield from items
        if not items and not follow:
            return
        if not follow:
            patience = 0.0  # draining what is there; waiting was for the first event only

"""Serving results: a serve process as it reports itself (``Deployment``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelreg.types._wire import Result


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Deployment(Result):
    """A serve process following ``ref`` of ``model`` and serving ``live_version``.

    ``status`` is ``live`` (a heartbeat within 15 s: three of ``modelreg serve``'s 5 s
    beats), ``stale`` (none since), or ``stopped`` (none for 5 minutes: presumed gone);
    ``heartbeat_age`` is in seconds, both as the registry saw them when it answered.
    """

    id: str
    model: str
    ref: str
    live_version: int | None
    address: str
    hostname: str
    pid: int | None
    started_at: str
    loaded_at: str | None
    heartbeat_at: str
    heartbeat_age: float
    status: str
    last_error: str
    last_error_at: str | None
    reported_by: str
    created_at: str
    info: dict[str, Any]

"""The event as JSON, until ``services.events.event_to_dict`` (issue 22, E1) lands.

TEMPORARY: the lead replaces this module's one use (``worker._payload``) with
``services.events.event_to_dict`` at merge and deletes it. Same shape as the plan's contract.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from modelreg.db.tables import AuditEvent
from modelreg.services.audit import current_action

_VERSION_TARGET = re.compile(r"(?P<model>.+):(?P<number>[0-9]+)")


def event_to_dict(event: AuditEvent, public_url: str | None) -> dict[str, Any]:
    """``{seq, event, at, actor, model, version, target, reason, before, after, url}``."""
    model = event.model_key
    version: int | None = None
    match = _VERSION_TARGET.fullmatch(event.target)
    if model is not None and match is not None:
        version = int(match["number"])
    url: str | None = None
    if public_url and model is not None:
        url = f"{public_url.rstrip('/')}/models/{quote(model)}"
        if version is not None:
            url += f"/versions/{version}"
    return {
        "seq": event.seq,
        "event": current_action(event.action, event.before),
        "at": event.at.isoformat(timespec="microseconds"),
        "actor": event.actor,
        "model": model,
        "version": version,
        "target": event.target,
        "reason": event.reason,
        "before": event.before,
        "after": event.after,
        "url": url,
    }

"""Registry events: the audit log read as a stream, in the one JSON shape every consumer gets.

The event stream (``GET /api/v1/events``, ``Registry.events``, ``modelreg events``), webhooks,
Slack and email all send an audit event as ``event_to_dict`` shapes it. An event's name is its
audit action (``EventTag``, under its current name); ``model`` is the model's name when the
event was written and ``url`` its page in the web UI (setting ``public_url``).

Who sees what is the audit log's rule (``audit.list_events``): the whole log takes the
``viewer`` role registry-wide; a role on some models shows those models' events only.
"""

from __future__ import annotations

import re
import uuid
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.tables import AuditEvent, AuditHead
from modelreg.errors import InvalidInput
from modelreg.names import normalize_name
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import current_action
from modelreg.services.serialize import iso

__all__ = [
    "MAX_LIMIT",
    "event_model",
    "event_to_dict",
    "event_url",
    "event_version",
    "matches_model",
    "model_pattern",
    "read_events",
]

MAX_LIMIT = 1000
_GLOB = re.compile(r"^[A-Za-z0-9_.*?\[\]!/-]{1,200}$")
_VERSION_SUFFIX = re.compile(r":([0-9]{1,10})$")
_BOUNDARY = ":@/"


def event_to_dict(event: AuditEvent, public_url: str | None) -> dict[str, Any]:
    """An audit event as the stream and every notification send it.

    ``{seq, event, at, actor, model, version, target, reason, before, after, url}``; ``url``
    is ``None`` without ``public_url`` or when the event has no page of its own.
    """
    action = current_action(event.action, event.before)
    model = event_model(event)
    version = event_version(event)
    return {
        "seq": event.seq,
        "event": action,
        "at": iso(event.at),
        "actor": event.actor,
        "model": model,
        "version": version,
        "target": event.target,
        "reason": event.reason,
        "before": event.before,
        "after": event.after,
        "url": event_url(public_url, action, model, version, event.after),
    }


def event_model(event: AuditEvent) -> str | None:
    """The name of the model an event is about, as it was spelled when the event was written.

    The target starts with it (``fraud``, ``fraud:3``, ``team/fraud@champion``); only its
    normalized form (``model_key``) is stored apart, which names the model when the target
    does not start with it.
    """
    key = event.model_key
    if key is None or event.model_id is None:
        return None
    target = event.target
    for end in range(1, len(target) + 1):
        if (end == len(target) or target[end] in _BOUNDARY) and normalize_name(target[:end]) == key:
            return target[:end]
    return key


def event_version(event: AuditEvent) -> int | None:
    """The version number an event is about: its target's ``:N``, else ``after``/``before``."""
    if event.model_id is None:
        return None
    match = _VERSION_SUFFIX.search(event.target)
    if match is not None:
        return int(match[1])
    for side in (event.after, event.before):
        value = (side or {}).get("version")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def event_url(
    public_url: str | None,
    action: str,
    model: str | None,
    version: int | None,
    after: dict[str, Any] | None,
) -> str | None:
    """The web UI page of what an event changed, or ``None``."""
    if not public_url:
        return None
    base = public_url.rstrip("/")
    request = (after or {}).get("request_id")
    if action.startswith("registry:promotion:") and isinstance(request, int):
        return f"{base}/promotions/{request}"
    if model is None:
        return f"{base}/admin" if action.startswith("auth:") else None
    if action == "registry:model:delete":
        return None
    page = f"{base}/models/{quote(model, safe='/')}"
    if version is not None and action != "registry:version:delete":
        return f"{page}/versions/{version}"
    return page


def model_pattern(glob: str) -> str:
    """A model glob (``fraud*``, ``team/*``) in the form events are matched with.

    Matching is by normalized name, as model lookups are: case and ``-_.`` do not count.
    """
    if not isinstance(glob, str) or not _GLOB.fullmatch(glob):
        raise InvalidInput(
            "a model pattern is a name with the wildcards * ? [...] (at most 200 characters)",
            detail={"model": str(glob)[:200]},
        )
    return normalize_name(glob)


def matches_model(event: AuditEvent, pattern: str) -> bool:
    """Whether ``event`` is about a model matching ``pattern`` (from ``model_pattern``)."""
    return event.model_key is not None and fnmatchcase(event.model_key, pattern)


def _like(pattern: str) -> tuple[str, bool]:
    """``pattern`` as SQL LIKE, and whether rows must also pass ``fnmatch`` (for ``[...]``).

    Normalized names hold neither ``%`` nor ``_`` (``_`` folds to ``-``), so nothing needs
    escaping.
    """
    exact = "[" not in pattern
    like = re.sub(r"\[[^\]]*\]?", "_", pattern).replace("*", "%").replace("?", "_")
    return like, not exact


def _readable(actor: Actor) -> list[uuid.UUID] | None:
    """The model ids whose events ``actor`` may read, or ``None`` for the whole log."""
    if actor.can(Permission.AUDIT_READ):
        return None
    ids = [m for m in actor.grants if m is not None and actor.can(Permission.AUDIT_READ, m)]
    if not ids:
        actor.require(Permission.AUDIT_READ)  # raises: nothing here is theirs to read
    return ids


def read_events(
    session: Session,
    *,
    actor: Actor,
    after: int | None,
    model_glob: str | None = None,
    limit: int = 100,
) -> tuple[list[AuditEvent], int]:
    """Events after ``after`` that ``actor`` may read, in order: ``(items, next_after)``.

    ``after=None`` starts at the end of the log (no items: ``next_after`` is where the next
    event will follow). ``next_after`` is what to pass next time: the last item's number, or,
    once the page reaches the end, the log's last event, which skips every event the caller
    does not see. Events after the log's head as read here wait for the next call, so an event
    committed later never lands behind ``next_after``.

    Raises:
        PermissionDenied: the actor holds no role at all.
        InvalidInput: a bad model pattern or limit.
    """
    readable = _readable(actor)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit is 1 to {MAX_LIMIT}", detail={"limit": limit})
    pattern = model_pattern(model_glob) if model_glob is not None else None
    # The head first: appends are serialised and commit in sequence order, so every event up
    # to it is visible to the query below (each statement sees at least what came before).
    head = int(session.scalar(select(AuditHead.last_seq).where(AuditHead.id == 1)) or 0)
    if after is None:
        return [], head
    query = select(AuditEvent).where(AuditEvent.seq > after, AuditEvent.seq <= head)
    if readable is not None:
        query = query.where(AuditEvent.model_id.in_(readable))
    check = None
    if pattern is not None:
        like, strict = _like(pattern)
        query = query.where(AuditEvent.model_key.like(like))
        check = pattern if strict else None
    rows = list(session.scalars(query.order_by(AuditEvent.seq).limit(limit)))
    next_after = rows[-1].seq if len(rows) == limit else max(after, head)
    if check is not None:
        rows = [row for row in rows if matches_model(row, check)]
    return rows, next_after

"""Aliases (movable pointers to versions) and the history of every move.

The use-cases that move an alias (``lifecycle.set_alias``, ``lifecycle.delete_alias``) check
permissions and policies; this module holds the row changes they share.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import Alias, HistoryAction, HistoryEntry, HistoryKind, Model, Version
from modelreg.errors import ConcurrentChange
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, record
from modelreg.services.models import get_model


def check_expected(current: int | None, expected: int | None, what: str) -> None:
    """Compare-and-set: raise ``ConcurrentChange`` unless ``what`` is held by ``expected``.

    ``expected`` is a version number, ``0`` for "nothing holds it", or ``None`` to skip.
    """
    if expected is None or (current or 0) == expected:
        return
    shown = f"version {current}" if current else "nothing"
    wanted = f"version {expected}" if expected else "nothing"
    raise ConcurrentChange(
        f"{what} is held by {shown}, not {wanted}: someone moved it first",
        detail={"expected": expected, "current": current or 0},
    )


def move_alias(
    session: Session,
    model: Model,
    alias: str,
    target: Version | None,
    *,
    actor: Actor,
    reason: str = "",
    action: HistoryAction = HistoryAction.MOVE,
    request_id: str | None = None,
) -> Alias | None:
    """Point ``alias`` at ``target`` (``None`` removes it), with history and audit.

    The caller has locked the model and checked permissions, policy and the expected holder.
    """
    current = session.get(Alias, (model.id, alias))
    before = current.version.number if current is not None else None
    after = target.number if target is not None else None
    if before == after:
        return current
    if target is None:
        assert current is not None
        session.delete(current)
        current = None
    elif current is None:
        current = Alias(model_id=model.id, name=alias, version_id=target.id, updated_by=actor.name)
        session.add(current)
    else:
        current.version_id = target.id
        current.updated_by = actor.name
        current.updated_at = utcnow()
    session.add(
        HistoryEntry(
            model_id=model.id,
            kind=HistoryKind.ALIAS,
            key=alias,
            from_version=before,
            to_version=after,
            actor=actor.name,
            reason=reason,
            action=action,
            request_id=request_id,
        )
    )
    session.flush()
    if current is not None:
        session.expire(current, ["version"])
    record(
        session,
        EventTag.ALIAS_SET if target is not None else EventTag.ALIAS_DELETE,
        actor=actor,
        target=f"{model.name}@{alias}",
        model=model,
        before={"version": before} if before is not None else None,
        after=None if after is None else _with_request({"version": after}, request_id),
        reason=reason,
    )
    return current


def _with_request(values: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    return {**values, "request_id": request_id} if request_id is not None else values


def alias_holder(session: Session, model: Model, alias: str) -> int | None:
    """The version ``alias`` points at, or ``None``."""
    current = session.get(Alias, (model.id, alias))
    return current.version.number if current is not None else None


def history(session: Session, name: str, *, actor: Actor, limit: int = 1000) -> list[HistoryEntry]:
    """The latest ``limit`` stage changes and alias moves of a model, oldest first."""
    model = get_model(session, name, actor=actor)
    actor.require(Permission.READ, model.id)
    newest = session.scalars(
        select(HistoryEntry)
        .where(HistoryEntry.model_id == model.id)
        .order_by(*history_order(descending=True))
        .limit(limit)
    )
    return list(reversed(list(newest)))


def history_order(*, descending: bool = False) -> list[Any]:
    """Oldest first: by time, and within one move the version leaving before the one arriving.

    Both halves of a move share one timestamp, so no moment shows two holders or none; the
    second key keeps their order readable and stable (an arrival is into an active stage).
    """
    arriving = case((HistoryEntry.key.in_(["production", "staging"]), 1), else_=0)
    keys = [HistoryEntry.at, arriving, HistoryEntry.id]
    return [k.desc() for k in keys] if descending else keys

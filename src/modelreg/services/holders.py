"""Who holds a stage or an alias: now, at a past moment, and the history of every move.

A stage may have several holders (the newest answers, as ``NAME/staging`` does); production and
an alias have at most one. ``--at`` and rollback replay the history kept here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from modelreg.db.tables import Alias, HistoryEntry, HistoryKind, Model, Version
from modelreg.errors import ConcurrentChange, InvalidInput, NotFound, VersionNotFound
from modelreg.names import Ref, Target, parse_ref
from modelreg.services.actor import Actor, Permission
from modelreg.services.models import get_model
from modelreg.services.versions import resolve

__all__ = [
    "alias_holder",
    "check_expected",
    "current_holder",
    "entries",
    "history",
    "history_order",
    "holder_at",
    "holds",
    "version_at",
]


def alias_holder(session: Session, model: Model, alias: str) -> int | None:
    """The version ``alias`` points at, or ``None``."""
    current = session.get(Alias, (model.id, alias))
    return current.version.number if current is not None else None


def current_holder(session: Session, model: Model, target: Target | str) -> int | None:
    """The version holding ``target`` now: the alias's version, or the stage's newest version."""
    where = Target.parse(target)
    if where.alias is not None:
        return alias_holder(session, model, where.alias)
    return session.scalar(
        select(Version.number)
        .where(Version.model_id == model.id, Version.stage == where.stage)
        .order_by(Version.number.desc())
        .limit(1)
    )


def holds(version: Version, target: Target) -> bool:
    """Whether ``version`` is in ``target`` already."""
    if target.alias is not None:
        return any(a.name == target.alias for a in version.aliases)
    return version.stage is target.stage


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


def entries(
    session: Session, model: Model, target: Target, at: datetime | None = None
) -> list[HistoryEntry]:
    """The history of ``target``'s kind (every stage move, or this alias's), up to ``at``."""
    kind = HistoryKind.ALIAS if target.is_alias else HistoryKind.STAGE
    query = select(HistoryEntry).where(HistoryEntry.model_id == model.id, HistoryEntry.kind == kind)
    if target.alias is not None:
        query = query.where(HistoryEntry.key == target.alias)
    if at is not None:
        query = query.where(HistoryEntry.at <= at)
    return list(session.scalars(query.order_by(*history_order())))


def holder_at(
    session: Session, name: str, target: Target | str, at: datetime, *, actor: Actor
) -> int | None:
    """Which version held ``target`` (a stage or ``@alias``) of ``name`` at moment ``at``.

    Stages are replayed from the history (a version's stage at ``at`` is the one its last move
    before ``at`` gave it); for a stage with several holders the newest version answers, as
    ``NAME/staging`` does now.
    """
    where = Target.parse(target)
    model = get_model(session, name, actor=actor)
    moves = entries(session, model, where, at)
    if where.is_alias:
        return moves[-1].to_version if moves else None
    # Each version's stage at ``at`` is the one its last move gave it; of several holders, the
    # one that arrived last answers (production has one).
    stage_of: dict[int, tuple[str, int]] = {}
    for index, entry in enumerate(moves):
        if entry.to_version is not None:
            stage_of[entry.to_version] = (entry.key, index)
    holders = [(i, v) for v, (s, i) in stage_of.items() if s == where.label]
    return max(holders)[1] if holders else None


def version_at(session: Session, ref: Ref | str, at: datetime, *, actor: Actor) -> Version:
    """The version a stage or alias reference (``NAME/production``) named at moment ``at``.

    Raises ``NotFound`` when nothing held it then, or when that version has been deleted.
    """
    parsed = parse_ref(ref, allow_model=False) if isinstance(ref, str) else ref
    if parsed.stage is None and parsed.alias is None:
        raise InvalidInput(
            f"{parsed}: --at applies to a stage or alias reference such as NAME/production",
            detail={"ref": str(parsed)},
        )
    target = Target(stage=parsed.stage, alias=parsed.alias)
    number = holder_at(session, parsed.name, target, at, actor=actor)
    when = at.isoformat().replace("+00:00", "Z")
    if number is None:
        raise NotFound(f"nothing held {parsed} at {when}", detail={"ref": str(parsed), "at": when})
    try:
        return resolve(session, Ref(parsed.name, version=number))
    except VersionNotFound:
        raise VersionNotFound(
            f"version {number} held {parsed} at {when} but has since been deleted",
            detail={"ref": str(parsed), "at": when, "version": number},
        ) from None

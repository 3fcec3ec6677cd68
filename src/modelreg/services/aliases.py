"""Aliases (movable pointers to versions) and the history of every move."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import Alias, HistoryEntry, HistoryKind
from modelreg.errors import AliasNotFound
from modelreg.names import Ref, validate_alias, validate_text
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, record
from modelreg.services.models import get_model
from modelreg.services.versions import resolve


def set_alias(
    session: Session, name: str, alias: str, version: int, *, actor: Actor, reason: str = ""
) -> Alias:
    """Point ``alias`` of model ``name`` at ``version`` (creating or moving it), audited."""
    validate_alias(alias)
    reason = validate_text(reason, kind="reason")
    model = get_model(session, name, lock=True)
    actor.require(Permission.ALIAS_SET, model.id)
    target = resolve(session, Ref(model.name, version=version))
    current = session.get(Alias, (model.id, alias))
    before = current.version.number if current is not None else None
    if current is not None and current.version_id == target.id:
        return current
    if current is None:
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
            to_version=target.number,
            actor=actor.name,
            reason=reason,
        )
    )
    session.flush()
    session.expire(current, ["version"])
    record(
        session,
        EventTag.ALIAS_SET,
        actor=actor,
        target=f"{model.name}@{alias}",
        model_key=model.normalized_name,
        before={"version": before} if before is not None else None,
        after={"version": target.number},
        reason=reason,
    )
    return current


def delete_alias(session: Session, name: str, alias: str, *, actor: Actor, reason: str = "") -> int:
    """Remove ``alias``; returns the version it pointed at. Raises ``AliasNotFound``."""
    validate_alias(alias)
    reason = validate_text(reason, kind="reason")
    model = get_model(session, name, lock=True)
    actor.require(Permission.ALIAS_SET, model.id)
    current = session.get(Alias, (model.id, alias))
    if current is None:
        raise AliasNotFound(
            f"model {model.name!r} has no alias {alias!r}", detail={"name": name, "alias": alias}
        )
    number = current.version.number
    session.delete(current)
    session.add(
        HistoryEntry(
            model_id=model.id,
            kind=HistoryKind.ALIAS,
            key=alias,
            from_version=number,
            to_version=None,
            actor=actor.name,
            reason=reason,
        )
    )
    session.flush()
    record(
        session,
        EventTag.ALIAS_DELETE,
        actor=actor,
        target=f"{model.name}@{alias}",
        model_key=model.normalized_name,
        before={"version": number},
        reason=reason,
    )
    return number


def history(session: Session, name: str, *, actor: Actor, limit: int = 1000) -> list[HistoryEntry]:
    """Every stage change and alias move of a model, oldest first."""
    model = get_model(session, name)
    actor.require(Permission.READ, model.id)
    return list(
        session.scalars(
            select(HistoryEntry)
            .where(HistoryEntry.model_id == model.id)
            .order_by(HistoryEntry.at, HistoryEntry.id)
            .limit(limit)
        )
    )

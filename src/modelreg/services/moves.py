"""The writes that move a version into a stage or an alias, each with its history and audit.

Promotions, aliases and rollback share them. The caller has locked the model and checked
permissions, policy and the expected holder: these functions only change rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import (
    Alias,
    HistoryAction,
    HistoryEntry,
    HistoryKind,
    Model,
    PolicyRule,
    Version,
)
from modelreg.errors import InvalidInput
from modelreg.names import Ref, Stage, Target
from modelreg.services.actor import Actor
from modelreg.services.audit import EventTag, record
from modelreg.services.versions import resolve

__all__ = ["check_version_number", "locked_version", "move_alias", "move_into", "set_stage"]


def check_version_number(number: Any) -> int:
    """``number`` if it is a whole version number from 1, else ``InvalidInput``."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise InvalidInput("a version is a whole number from 1", detail={"version": number})
    return number


def locked_version(session: Session, model: Model, number: int) -> Version:
    """Version ``number`` of ``model``, read again after the caller locked the model."""
    version = resolve(session, Ref(model.name, version=number))
    # Another transaction may have moved it between an earlier read and the model lock.
    session.refresh(version)
    return version


def set_stage(
    session: Session,
    model: Model,
    version: Version,
    stage: Stage,
    *,
    actor: Actor,
    reason: str,
    action: HistoryAction,
    request_id: str | None,
    at: datetime,
) -> None:
    """Put ``version`` in ``stage``, with a history entry at ``at`` and an audit event."""
    before = version.stage
    version.stage = stage
    session.add(
        HistoryEntry(
            model_id=model.id,
            at=at,
            kind=HistoryKind.STAGE,
            key=stage.value,
            from_stage=before.value,
            to_version=version.number,
            actor=actor.name,
            reason=reason,
            action=action,
            request_id=request_id,
        )
    )
    # Flushed one at a time: the partial unique index must never see two production rows.
    session.flush()
    after: dict[str, Any] = {"stage": stage.value, "action": action.value}
    if request_id is not None:
        after["request_id"] = request_id
    record(
        session,
        EventTag.VERSION_STAGE,
        actor=actor,
        target=f"{model.name}:{version.number}",
        model=model,
        before={"stage": before.value},
        after=after,
        reason=reason,
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
    """Point ``alias`` at ``target`` (``None`` removes it), with history and audit."""
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


def move_into(
    session: Session,
    model: Model,
    version: Version,
    target: Target,
    rule: PolicyRule | None,
    *,
    actor: Actor,
    reason: str,
    request_id: str | None,
    action: HistoryAction = HistoryAction.PROMOTE,
) -> None:
    """Move ``version`` into ``target``; a production move first moves the old holder out.

    The old holder goes where ``rule`` says (``previous_to``), else to archived.
    """
    if target.alias is not None:
        move_alias(
            session,
            model,
            target.alias,
            version,
            actor=actor,
            reason=reason,
            action=action,
            request_id=request_id,
        )
        return
    stage = target.stage
    assert stage is not None
    # One move, one moment: the old holder leaves and the new one arrives at the same ``now``,
    # so no instant shows both or neither (``history_order`` lists the leaving one first).
    now = utcnow()
    if stage is Stage.PRODUCTION:
        _retire_production(
            session, model, version, rule, actor=actor, request_id=request_id, at=now
        )
    set_stage(
        session,
        model,
        version,
        stage,
        actor=actor,
        reason=reason,
        action=action,
        request_id=request_id,
        at=now,
    )


def _retire_production(
    session: Session,
    model: Model,
    arriving: Version,
    rule: PolicyRule | None,
    *,
    actor: Actor,
    request_id: str | None,
    at: datetime,
) -> None:
    """Move the production version (other than ``arriving``) to the rule's ``previous_to``."""
    previous = session.scalars(
        select(Version).where(
            Version.model_id == model.id,
            Version.stage == Stage.PRODUCTION,
            Version.id != arriving.id,
        )
    ).one_or_none()
    if previous is None:
        return
    moved_to = Stage(rule.previous_to) if rule and rule.previous_to else Stage.ARCHIVED
    set_stage(
        session,
        model,
        previous,
        moved_to,
        actor=actor,
        reason=f"replaced by version {arriving.number}",
        action=HistoryAction.REPLACED,
        request_id=request_id,
        at=at,
    )

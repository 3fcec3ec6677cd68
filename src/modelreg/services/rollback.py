"""Rollback: put back the version that held a stage or an alias before the current one.

The emergency brake: approvers may do it without an approval round and without the gates. The
earlier holders are replayed from the history (``holders.entries``); a version an earlier
rollback removed is skipped unless named, so a second rollback steps further back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import HistoryAction, Model, Role, Version
from modelreg.errors import Conflict, InvalidInput, PermissionDenied
from modelreg.names import Stage, Target, validate_text
from modelreg.services import policies
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, record
from modelreg.services.holders import check_expected, current_holder, entries
from modelreg.services.models import get_model
from modelreg.services.moves import check_version_number, locked_version, move_alias, set_stage

__all__ = ["rollback"]

_PRODUCTION = Target(Stage.PRODUCTION)


def rollback(
    session: Session,
    name: str,
    *,
    actor: Actor,
    reason: str,
    target: Target | str = Stage.PRODUCTION.value,
    to: int | None = None,
    expect_current: int | None = None,
) -> dict[str, Any]:
    """Put back the version that held ``target`` before the current one (or ``to``).

    The emergency brake: approvers may do it without an approval round and without the gates;
    the version rolled back from is archived (stages) and the move is recorded as a rollback.
    """
    where = Target.parse(target)
    if where.stage in (Stage.NONE, Stage.ARCHIVED):
        raise InvalidInput(
            "rollback applies to production, staging or an @alias", detail={"target": where.label}
        )
    reason = validate_text(reason, kind="reason").strip()
    if not reason:
        raise InvalidInput("a rollback needs a reason (--reason)", detail={"name": name})
    model = get_model(session, name, actor=actor, lock=True)
    _require_rollback_right(session, model, where, actor)
    what = where.on(model.name)
    current = current_holder(session, model, where)
    if current is None:
        raise Conflict(f"nothing holds {what}, so there is nothing to roll back", detail={})
    check_expected(current, expect_current, what)
    chosen = _rollback_choice(session, model, where, current, to)
    _swap(session, model, where, current, chosen, actor=actor, reason=reason)
    record(
        session,
        EventTag.MODEL_ROLLBACK,
        actor=actor,
        target=what,
        model=model,
        before={"version": current},
        after={"version": chosen},
        reason=reason,
    )
    return {
        "name": model.name,
        "target": where.label,
        "from_version": current,
        "to_version": chosen,
    }


def _require_rollback_right(session: Session, model: Model, target: Target, actor: Actor) -> None:
    """The rollback permission, and the approver role of ``target``'s rule (else approver)."""
    rule = policies.effective_rule(session, model, target)
    needed = rule.approver_role if rule is not None else Role.APPROVER
    actor.require(Permission.ROLLBACK, model.id)
    if not actor.has_role(needed, model.id):
        raise PermissionDenied(
            f"rolling back {target.on(model.name)} needs the {needed.value} role",
            detail={"role_needed": needed.value},
        )


def _swap(
    session: Session,
    model: Model,
    target: Target,
    leaving_number: int,
    restored_number: int,
    *,
    actor: Actor,
    reason: str,
) -> None:
    """Move the current holder out of ``target`` (archived, for a stage) and the chosen one in."""
    restored = locked_version(session, model, restored_number)
    leaving = locked_version(session, model, leaving_number)
    if target.alias is not None:
        move_alias(
            session,
            model,
            target.alias,
            restored,
            actor=actor,
            reason=reason,
            action=HistoryAction.ROLLBACK,
        )
        return
    stage = target.stage
    assert stage is not None
    # Out first, then in: the one-production index sees at most one row at every flush.
    now = utcnow()
    for version, into in ((leaving, Stage.ARCHIVED), (restored, stage)):
        set_stage(
            session,
            model,
            version,
            into,
            actor=actor,
            reason=reason,
            action=HistoryAction.ROLLBACK,
            request_id=None,
            at=now,
        )


def _earlier_holders(
    session: Session, model: Model, target: Target, current: int, *, skip_rolled_out: bool = True
) -> list[int]:
    """Versions that held ``target`` before ``current``, most recent first.

    A version rolled back out of ``target`` (and not put there again since) is left out unless
    ``skip_rolled_out`` is false, so a second rollback steps further back instead of
    reinstating what the first one removed.
    """
    key = target.label
    rolled_out: set[int] = set()
    held: list[int] = []
    moves = entries(session, model, target)
    # Only what held it before the current holder's latest arrival (a stage may have several);
    # rollbacks after that arrival still count.
    arrivals = [
        i
        for i, e in enumerate(moves)
        if e.to_version == current and (target.is_alias or e.key == key)
    ]
    cut = arrivals[-1] if arrivals else len(moves)
    for index, entry in enumerate(moves):
        if target.is_alias:
            entered, left = entry.to_version, entry.from_version
        else:
            entered = entry.to_version if entry.key == key else None
            left = entry.to_version if entry.from_stage == key else None
        if left is not None and entry.action is HistoryAction.ROLLBACK:
            rolled_out.add(left)
        if entered is not None:
            rolled_out.discard(entered)
            if index < cut:
                held.append(entered)
    existing = set(
        session.scalars(
            select(Version.number).where(Version.model_id == model.id, Version.number.in_(held))
        )
    )
    out: list[int] = []
    for number in reversed(held):
        if number not in existing:
            continue  # deleted since; its history stays, but it cannot come back
        skipped = skip_rolled_out and number in rolled_out
        if number != current and not skipped and number not in out:
            out.append(number)
    return out


def _rollback_choice(
    session: Session, model: Model, target: Target, current: int, to: int | None
) -> int:
    """The version a rollback of ``target`` puts back: ``to``, or the last earlier holder."""
    # Rolling back staging must never pull the production version out of production.
    guards_production = target.stage is not None and target.stage is not Stage.PRODUCTION
    if to is not None:
        return _named_choice(session, model, target, current, to, guards_production)
    earlier = _earlier_holders(session, model, target, current)
    if guards_production:
        serving = current_holder(session, model, _PRODUCTION)
        earlier = [v for v in earlier if v != serving]
    if earlier:
        return earlier[0]
    removed = _earlier_holders(session, model, target, current, skip_rolled_out=False)
    hint = (
        f"; earlier rollbacks removed version(s) {', '.join(map(str, removed))}, name one "
        "with --to to bring it back"
        if removed
        else ""
    )
    raise Conflict(
        f"no version held {target.on(model.name)} before version {current}, so there is "
        f"nothing to roll back to{hint}",
        detail={"current": current, "rolled_back": removed},
    )


def _named_choice(
    session: Session,
    model: Model,
    target: Target,
    current: int,
    to: int,
    guards_production: bool,
) -> int:
    """``to``, if it held ``target`` before ``current`` (even if a rollback removed it)."""
    what = target.on(model.name)
    to = check_version_number(to)
    # Naming a version explicitly may bring back one an earlier rollback removed.
    earlier = _earlier_holders(session, model, target, current, skip_rolled_out=False)
    if guards_production and to == current_holder(session, model, _PRODUCTION):
        raise Conflict(
            f"version {to} is in production; rolling {what} back to it would take it "
            "out of production",
            detail={"to": to},
        )
    if to not in earlier:
        held = ", ".join(str(v) for v in earlier) or "none"
        raise InvalidInput(
            f"version {to} never held {what} before version {current} (earlier holders: {held})",
            detail={"to": to, "earlier": earlier},
        )
    return to

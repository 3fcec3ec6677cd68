"""Registering a copy of a version from another registry: its own number and its first stage.

``modelreg import`` keeps the numbers (gaps included) and, with ``--keep-stages``, the stages
versions had where they came from. Both are admin-only departures from a plain registration,
which takes the next number and starts in stage ``none``; ``registration.register_version`` calls
these checks in its transaction. A first stage skips the promotion policy (its gates and
approvals), so it is recorded as a move of its own, in the history and the audit log.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from modelreg.db.tables import HistoryEntry, HistoryKind, Model, Version
from modelreg.errors import Conflict, InvalidInput, PermissionDenied
from modelreg.names import MAX_VERSION, Stage, Target
from modelreg.services import policies
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, record


def check_number(number: int | None) -> None:
    """Refuse anything but a whole version number (or ``None``: the next one)."""
    if number is not None and (
        isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_VERSION
    ):
        raise InvalidInput("a version number is a whole number from 1", detail={"number": number})


def check_rights(
    session: Session,
    model: Model,
    *,
    actor: Actor,
    number: int | None,
    stage: Stage | None,
    imported_from: str | None = None,
) -> None:
    """An explicit number, a first stage or ``imported_from`` needs the admin role.

    ``imported_from`` is what ``modelreg import`` trusts to skip a version as already copied:
    set by anyone else, it would plant a version for a later import to adopt (issue 18,
    finding 6). A first production stage also needs production to be free.
    """
    if number is not None or stage not in (None, Stage.NONE):
        # Choosing numbers and skipping the promotion gates is what an import does, not a user.
        actor.require(Permission.ADMIN, model.id)
    elif imported_from is not None and not actor.can(Permission.ADMIN, model.id):
        raise PermissionDenied(
            f"{actor.name} may not set lineage.imported_from: only an import, run with the "
            f"admin role on {model.name}, records where a version was imported from",
            detail={
                "permission": Permission.ADMIN.value,
                "role_needed": "admin",
                "field": "lineage.imported_from",
            },
        )
    if stage is Stage.PRODUCTION:
        holder = session.scalar(
            select(Version.number).where(
                Version.model_id == model.id, Version.stage == Stage.PRODUCTION
            )
        )
        if holder is not None:
            raise Conflict(
                f"{model.name}:{holder} is in production; a model has one production version",
                detail={"stage": Stage.PRODUCTION.value, "version": holder},
            )


def take_number(session: Session, model: Model, number: int) -> int:
    """Make ``number`` the model's counter (the caller holds the model's row lock).

    It must be above every number the model ever used, deleted ones included (they live on
    in the counter), so the numbers it skips are never handed out either.
    """
    if number <= model.last_version:
        raise Conflict(
            f"{model.name} has used version numbers up to {model.last_version}; an explicit "
            f"number must be greater (got {number})",
            detail={"number": number, "last_version": model.last_version},
        )
    # The row lock holds; the condition is the backstop all the same.
    taken = session.execute(
        update(Model)
        .where(Model.id == model.id, Model.last_version < number)
        .values(last_version=number)
        .returning(Model.last_version)
    ).scalar_one_or_none()
    if taken is None:  # pragma: no cover - only without the row lock
        raise Conflict(f"{model.name}: version {number} was taken", detail={"number": number})
    return number


def record_first_stage(
    session: Session, version: Version, *, actor: Actor, imported_from: str | None
) -> None:
    """Record the stage given at registration as a move of its own.

    It goes in the history (for ``history`` and ``--at``) and in the audit log as a
    ``registry:version:stage`` event of action ``import`` naming the policy rule it bypassed.
    """
    where = f"imported from {imported_from}" if imported_from else "stage given at registration"
    reason = f"{where}; stage applied by an admin at registration, bypassing the promotion policy"
    rule = policies.effective_rule(session, version.model, Target(version.stage))
    after: dict[str, Any] = {
        "stage": version.stage.value,
        "action": "import",
        "bypassed_rule": policies.rule_to_dict(rule) if rule is not None else None,
    }
    if imported_from:
        after["imported_from"] = imported_from
    record(
        session,
        EventTag.VERSION_STAGE,
        actor=actor,
        target=f"{version.model.name}:{version.number}",
        model=version.model,
        before={"stage": Stage.NONE.value},
        after=after,
        reason=reason,
    )
    session.add(
        HistoryEntry(
            model_id=version.model_id,
            at=version.created_at,
            kind=HistoryKind.STAGE,
            key=version.stage.value,
            from_stage=Stage.NONE.value,
            to_version=version.number,
            actor=actor.name,
            reason=reason,
        )
    )
    session.flush()

"""Aliases: movable pointers to versions, set and removed under policy.

An alias no rule protects moves at once. A protected one (a policy rule for ``@alias``) moves
only through a promotion (``promotions.promote``: gates, approvals), and only a holder of its
rule's approver role may remove it. The row changes are ``moves.move_alias``'s; who holds an
alias now or at a moment is ``holders``'s.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from modelreg.db.tables import Alias, Promotion
from modelreg.errors import AliasNotFound, PermissionDenied
from modelreg.names import Target, validate_alias, validate_text
from modelreg.services import policies
from modelreg.services.actor import Actor, Permission
from modelreg.services.holders import alias_holder, check_expected
from modelreg.services.models import get_model
from modelreg.services.moves import check_version_number, locked_version, move_alias
from modelreg.services.promotions import promote

__all__ = ["delete_alias", "set_alias"]


def set_alias(
    session: Session,
    name: str,
    alias: str,
    version: int,
    *,
    actor: Actor,
    reason: str = "",
    expect_current: int | None = None,
) -> Alias | Promotion:
    """Point ``alias`` at ``version``: directly, or through ``promote`` when it is protected.

    Returns the alias, or the request when a policy protects the alias (the doors turn a
    pending or refused request into ``ApprovalRequired`` / ``PolicyViolation``).
    """
    target = Target(alias=validate_alias(alias))
    reason = validate_text(reason, kind="reason")
    number = check_version_number(version)
    model = get_model(session, name, actor=actor, lock=True)
    actor.require(Permission.ALIAS_SET, model.id)
    rule = policies.effective_rule(session, model, target)
    if rule is not None:
        return promote(
            session,
            name,
            number,
            target,
            actor=actor,
            reason=reason,
            expect_current=expect_current,
        )
    check_expected(alias_holder(session, model, alias), expect_current, target.on(model.name))
    row = move_alias(
        session, model, alias, locked_version(session, model, number), actor=actor, reason=reason
    )
    assert row is not None
    return row


def delete_alias(
    session: Session,
    name: str,
    alias: str,
    *,
    actor: Actor,
    reason: str = "",
    expect_current: int | None = None,
) -> int:
    """Remove ``alias``; returns the version it pointed at. Raises ``AliasNotFound``.

    A protected alias may be removed only by someone holding its rule's approver role.
    """
    target = Target(alias=validate_alias(alias))
    reason = validate_text(reason, kind="reason")
    model = get_model(session, name, actor=actor, lock=True)
    actor.require(Permission.ALIAS_SET, model.id)
    rule = policies.effective_rule(session, model, target)
    if rule is not None and not actor.has_role(rule.approver_role, model.id):
        raise PermissionDenied(
            f"{target} is protected: removing it needs the {rule.approver_role.value} role",
            detail={"role_needed": rule.approver_role.value},
        )
    holder = alias_holder(session, model, alias)
    if holder is None:
        raise AliasNotFound(
            f"model {model.name!r} has no alias {alias!r}", detail={"name": name, "alias": alias}
        )
    check_expected(holder, expect_current, target.on(model.name))
    move_alias(session, model, alias, None, actor=actor, reason=reason)
    return holder

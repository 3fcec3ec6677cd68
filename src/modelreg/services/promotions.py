"""Promotions: a request to move a version into a stage or a protected alias, through gates.

Every such move goes through ``promote``: the gates of the effective rule (``services.policies``)
are evaluated here, on the server, and the outcome is a ``Promotion`` row that is ``applied``,
``pending`` (approvals needed) or ``refused``. Refusals are recorded too, so the audit trail
shows who tried to ship what. The model row is locked for every move, and a partial unique index
keeps one production version per model even so.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from modelreg.db.base import utcnow
from modelreg.db.tables import (
    Model,
    PolicyRule,
    Promotion,
    PromotionState,
    PromotionVote,
    Role,
    Version,
)
from modelreg.errors import (
    Conflict,
    InvalidInput,
    PermissionDenied,
    PromotionNotFound,
    VersionNotFound,
)
from modelreg.names import MAX_VERSION, Stage, Target, validate_text
from modelreg.services import auth, policies
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, record
from modelreg.services.holders import check_expected, current_holder, holds
from modelreg.services.models import get_model
from modelreg.services.moves import check_version_number, locked_version, move_into
from modelreg.services.pages import paginate
from modelreg.types import Page

__all__ = [
    "approve",
    "counted_approvers",
    "decisions_for",
    "get_promotion",
    "list_promotions",
    "promote",
    "reject",
]


def promote(
    session: Session,
    name: str,
    number: int,
    target: Target | str,
    *,
    actor: Actor,
    reason: str = "",
    dry_run: bool = False,
    expect_current: int | None = None,
) -> Promotion:
    """Ask to move version ``number`` of ``name`` into ``target`` (a stage or ``@alias``).

    Returns the request: ``applied`` (gates passed, no approvals needed), ``pending`` (waiting
    for approvals) or ``refused`` (``failed_criteria`` says why). Refused and pending requests
    are stored and audited; the doors turn them into exit codes and statuses. With ``dry_run``
    nothing is stored and the returned request (``id`` ``None``) says what would happen.
    A request for a version already in ``target`` changes nothing and comes back ``applied``
    with no id. Raises ``ConcurrentChange`` when ``expect_current`` is not the holder.
    """
    where = Target.parse(target)
    number = check_version_number(number)
    reason = validate_text(reason, kind="reason")
    model = get_model(session, name, actor=actor, lock=not dry_run)
    actor.require(Permission.PROMOTE, model.id)
    version = locked_version(session, model, number)
    holder = current_holder(session, model, where)
    check_expected(holder, expect_current, where.on(model.name))
    if _demotes(version, where):
        _require_demoter(session, model, actor)
    rule = policies.effective_rule(session, model, where)
    promotion = _new_request(
        model, number, where, rule, actor=actor, reason=reason, holder=holder, expect=expect_current
    )
    if holds(version, where):
        promotion.state = PromotionState.APPLIED
        promotion.decision_reason = f"version {number} already holds {where}"
        return promotion
    _judge(session, promotion, version, rule)
    if dry_run:
        return promotion
    if promotion.state is PromotionState.PENDING:
        same = _pending_twin(session, promotion)
        if same is not None:
            # Asking again is not a second request: CI retries must not pile up approvals.
            return same
    _store(session, promotion, actor=actor)
    if promotion.state is PromotionState.APPLIED:
        move_into(
            session,
            model,
            version,
            where,
            rule,
            actor=actor,
            reason=reason,
            request_id=str(promotion.id),
        )
    return promotion


def _new_request(
    model: Model,
    number: int,
    target: Target,
    rule: PolicyRule | None,
    *,
    actor: Actor,
    reason: str,
    holder: int | None,
    expect: int | None,
) -> Promotion:
    """The request row, not yet judged nor stored; the rule fixes the approvals it needs."""
    return Promotion(
        model_id=model.id,
        model=model,
        number=number,
        target=target.label,
        requested_by=actor.name,
        requested_at=utcnow(),
        reason=reason,
        expect_current=expect,
        from_version=holder,
        approvals_required=rule.approvals if rule else 0,
        approver_role=rule.approver_role if rule else Role.APPROVER,
        failed_criteria=[],
        decision_reason="",
        votes=[],
    )


def _judge(
    session: Session, promotion: Promotion, version: Version, rule: PolicyRule | None
) -> None:
    """Check the gates: refused when one fails, else pending while approvals are needed."""
    failures = policies.failed(policies.evaluate(session, version, rule, _target(promotion)))
    promotion.failed_criteria = failures
    if failures:
        promotion.state = PromotionState.REFUSED
    elif promotion.approvals_required > 0:
        promotion.state = PromotionState.PENDING
    else:
        promotion.state = PromotionState.APPLIED


def _pending_twin(session: Session, promotion: Promotion) -> Promotion | None:
    """A pending request already asking for the same version and target, if any."""
    return session.scalars(
        select(Promotion).where(
            Promotion.model_id == promotion.model_id,
            Promotion.number == promotion.number,
            Promotion.target == promotion.target,
            Promotion.state == PromotionState.PENDING,
        )
    ).first()


def _store(session: Session, promotion: Promotion, *, actor: Actor) -> None:
    """Save a judged request and audit it; one that is not pending is decided by its asker."""
    if promotion.state is not PromotionState.PENDING:
        promotion.decided_by = actor.name
        promotion.decided_at = promotion.requested_at
    session.add(promotion)
    session.flush()
    record(
        session,
        EventTag.PROMOTION_PROMOTE,
        actor=actor,
        target=_audit_target(promotion),
        model=promotion.model,
        after={
            "request_id": promotion.id,
            "version": promotion.number,
            "target": promotion.target,
            "state": promotion.state.value,
            "failed_criteria": promotion.failed_criteria,
        },
        reason=promotion.reason,
    )


def _demotes(version: Version, target: Target) -> bool:
    """Whether moving ``version`` into ``target`` takes it out of production (aliases never do)."""
    return (
        target.stage is not None
        and version.stage is Stage.PRODUCTION
        and target.stage is not Stage.PRODUCTION
    )


def _require_demoter(session: Session, model: Model, actor: Actor) -> None:
    """Taking a version out of production stops it serving: as strong a right as rollback."""
    rule = policies.effective_rule(session, model, Target(Stage.PRODUCTION))
    needed = rule.approver_role if rule is not None else Role.APPROVER
    if not actor.has_role(max(needed, Role.APPROVER, key=lambda r: r.rank), model.id):
        raise PermissionDenied(
            f"taking {model.name}'s production version out of production needs the "
            f"{needed.value} role (as a rollback does)",
            detail={"role_needed": needed.value},
        )


def _load(session: Session, promotion_id: int, *, actor: Actor, lock: bool) -> Promotion:
    """The request ``promotion_id``; one on a model ``actor`` may not read is absent to it."""
    if (
        isinstance(promotion_id, bool)
        or not isinstance(promotion_id, int)
        or not 1 <= promotion_id <= MAX_VERSION
    ):
        raise InvalidInput("a promotion id is a whole number", detail={"id": promotion_id})
    promotion = session.get(Promotion, promotion_id)
    if promotion is None or not actor.can(Permission.READ, promotion.model_id):
        raise PromotionNotFound(
            f"no promotion request #{promotion_id}", detail={"id": promotion_id}
        )
    if lock:
        # Every decision on a model is serialised by its row lock, as promotions are.
        get_model(session, promotion.model.name, actor=None, lock=True)
        session.refresh(promotion)
    return promotion


def _target(promotion: Promotion) -> Target:
    """The target a stored request names (stored as its canonical text)."""
    return Target.parse(promotion.target)


def _audit_target(promotion: Promotion) -> str:
    """What a request's audit events name: ``NAME/stage:VERSION`` or ``NAME@alias:VERSION``."""
    return f"{_target(promotion).on(promotion.model.name)}:{promotion.number}"


def _check_pending(promotion: Promotion) -> None:
    if promotion.state is not PromotionState.PENDING:
        raise Conflict(
            f"promotion #{promotion.id} is already {promotion.state.value}",
            detail={"id": promotion.id, "state": promotion.state.value},
        )


def _decider_role(session: Session, promotion: Promotion) -> Role:
    rule = policies.effective_rule(session, promotion.model, _target(promotion))
    return rule.approver_role if rule is not None else promotion.approver_role


def counted_approvers(session: Session, promotion: Promotion) -> set[str]:
    """The approvers whose approval of ``promotion`` counts now.

    An approval counts only while its approver still holds the role the target's rule asks
    for, on the model or registry-wide (a demoted or disabled approver's approval stays on
    record but no longer counts), so a request completes only with enough approvers who hold
    the role when it does.
    """
    names = [v.actor for v in promotion.votes if v.approve]
    role = _decider_role(session, promotion)
    return auth.role_holders(session, names, role, promotion.model_id)


def _require_approver(actor: Actor, role: Role, promotion: Promotion, verb: str) -> None:
    if not actor.has_role(role, promotion.model_id):
        raise PermissionDenied(
            f"{actor.name} may not {verb} promotion #{promotion.id}: it needs the {role.value} "
            f"role on {promotion.model.name}",
            detail={"permission": Permission.APPROVE.value, "role_needed": role.value},
        )


def decisions_for(session: Session, promotion: Promotion, actor: Actor) -> dict[str, bool]:
    """What ``actor`` may decide on ``promotion`` now: ``{"approve", "reject"}``.

    The same checks ``approve`` and ``reject`` make, so a page offers only what the server
    will accept: the requester never approves (they may withdraw by rejecting), and an
    approver who already approved cannot approve again.
    """
    if promotion.state is not PromotionState.PENDING:
        return {"approve": False, "reject": False}
    try:
        _require_approver(actor, _decider_role(session, promotion), promotion, "decide")
        approver = True
    except PermissionDenied:
        approver = False
    own = actor.name == promotion.requested_by
    voted = any(v.actor == actor.name and v.approve for v in promotion.votes)
    return {"approve": approver and not own and not voted, "reject": approver or own}


def approve(session: Session, promotion_id: int, *, actor: Actor, reason: str = "") -> Promotion:
    """Approve a pending request; the approval that completes the count applies it.

    The requester can never approve their own request, and each approver counts once. When the
    count is reached the gates are checked again, as they stand now: a request whose version no
    longer passes (or whose expected holder moved) ends ``refused``.
    """
    reason = validate_text(reason, kind="reason")
    promotion = _load(session, promotion_id, actor=actor, lock=True)
    _check_pending(promotion)
    # Separation of duties first: it is the rule that holds whatever role the requester has.
    if actor.name == promotion.requested_by:
        raise PermissionDenied(
            f"{actor.name} requested promotion #{promotion.id} and so cannot approve it "
            "(separation of duties): another approver must",
            detail={"id": promotion.id, "requested_by": promotion.requested_by},
        )
    role = _decider_role(session, promotion)
    _require_approver(actor, role, promotion, "approve")
    if any(v.actor == actor.name for v in promotion.votes):
        raise Conflict(
            f"{actor.name} has already approved promotion #{promotion.id}",
            detail={"id": promotion.id},
        )
    session.add(
        PromotionVote(promotion_id=promotion.id, actor=actor.name, approve=True, reason=reason)
    )
    session.flush()
    session.refresh(promotion)
    model = promotion.model
    rule = policies.effective_rule(session, model, _target(promotion))
    promotion.approvals_required = rule.approvals if rule is not None else 0
    counted = counted_approvers(session, promotion)
    approvals = len(counted)
    lapsed = sorted(v.actor for v in promotion.votes if v.approve and v.actor not in counted)
    record(
        session,
        EventTag.PROMOTION_APPROVE,
        actor=actor,
        target=_audit_target(promotion),
        model=model,
        after={
            "request_id": promotion.id,
            "approvals": approvals,
            "required": promotion.approvals_required,
            # Approvals on record whose approver no longer holds the role: not counted.
            **({"not_counted": lapsed} if lapsed else {}),
        },
        reason=reason,
    )
    if approvals >= promotion.approvals_required:
        _decide(session, promotion, rule, actor=actor)
    return promotion


def _refuse(
    session: Session, promotion: Promotion, failures: list[dict[str, Any]], *, actor: Actor
) -> None:
    """End an approved request as refused: its gates failed when checked again."""
    promotion.state = PromotionState.REFUSED
    promotion.failed_criteria = failures
    session.flush()
    model = promotion.model
    record(
        session,
        EventTag.PROMOTION_REFUSE,
        actor=actor,
        target=_audit_target(promotion),
        model=model,
        after={"request_id": promotion.id, "state": "refused", "failed_criteria": failures},
        reason="gates failed when the last approval arrived",
    )


def _decide(
    session: Session, promotion: Promotion, rule: PolicyRule | None, *, actor: Actor
) -> None:
    """Apply an approved request, or refuse it if its gates no longer pass."""
    model = promotion.model
    target = _target(promotion)
    promotion.decided_by = actor.name
    promotion.decided_at = utcnow()
    try:
        version = locked_version(session, model, promotion.number)
    except VersionNotFound:
        missing = {
            "criterion": "version exists",
            "passed": False,
            "actual": {"version": promotion.number},
            "message": f"version {promotion.number} was deleted",
        }
        _refuse(session, promotion, [missing], actor=actor)
        return
    failures = _recheck(session, promotion, version, target, rule)
    promotion.failed_criteria = failures
    if failures:
        _refuse(session, promotion, failures, actor=actor)
        return
    promotion.state = PromotionState.APPLIED
    session.flush()
    if not holds(version, target):
        move_into(
            session,
            model,
            version,
            target,
            rule,
            actor=actor,
            reason=promotion.reason,
            request_id=str(promotion.id),
        )


def _recheck(
    session: Session,
    promotion: Promotion,
    version: Version,
    target: Target,
    rule: PolicyRule | None,
) -> list[dict[str, Any]]:
    """The criteria a request fails now: its gates, and what changed while it waited."""
    failures = policies.failed(policies.evaluate(session, version, rule, target))
    if _demotes(version, target):
        # It reached production while the request waited; an approval is no demotion right.
        failures.append(
            {
                "criterion": "not in production",
                "passed": False,
                "actual": {"stage": version.stage.value},
                "message": "the version went to production while the request waited; "
                "taking it out is a rollback or a new request",
            }
        )
    holder = current_holder(session, promotion.model, target)
    if promotion.expect_current is not None and (holder or 0) != promotion.expect_current:
        failures.append(
            {
                "criterion": f"{target} held by {promotion.expect_current or 'nothing'}",
                "passed": False,
                "actual": {"current": holder},
                "message": "someone moved it while the request waited",
            }
        )
    return failures


def reject(session: Session, promotion_id: int, *, actor: Actor, reason: str) -> Promotion:
    """Reject a pending request (its requester may withdraw it the same way)."""
    reason = validate_text(reason, kind="reason").strip()
    if not reason:
        raise InvalidInput("a rejection needs a reason", detail={"id": promotion_id})
    promotion = _load(session, promotion_id, actor=actor, lock=True)
    _check_pending(promotion)
    if actor.name != promotion.requested_by:
        _require_approver(actor, _decider_role(session, promotion), promotion, "reject")
    if any(v.actor == actor.name for v in promotion.votes):
        # An approver who changes their mind rejects; their approval no longer counts.
        for vote in [v for v in promotion.votes if v.actor == actor.name]:
            session.delete(vote)
        session.flush()
    session.add(
        PromotionVote(promotion_id=promotion.id, actor=actor.name, approve=False, reason=reason)
    )
    promotion.state = PromotionState.REJECTED
    promotion.decided_by = actor.name
    promotion.decided_at = utcnow()
    promotion.decision_reason = reason
    session.flush()
    session.refresh(promotion)
    model = promotion.model
    record(
        session,
        EventTag.PROMOTION_REJECT,
        actor=actor,
        target=_audit_target(promotion),
        model=model,
        after={"request_id": promotion.id, "state": promotion.state.value},
        reason=reason,
    )
    return promotion


def get_promotion(session: Session, promotion_id: int, *, actor: Actor) -> Promotion:
    """One request, if ``actor`` may read its model."""
    return _load(session, promotion_id, actor=actor, lock=False)


def list_promotions(
    session: Session,
    *,
    actor: Actor,
    name: str | None = None,
    state: str | None = None,
    page_size: int = 100,
    page_token: str | None = None,
) -> Page[Promotion]:
    """Requests, newest first, optionally of one model and in one state (keyset pages)."""
    query = select(Promotion).options(selectinload(Promotion.votes))
    if name is not None:
        model = get_model(session, name, actor=actor)
        query = query.where(Promotion.model_id == model.id)
    else:
        # A reader of some models lists their requests; the filter below keeps the rest out.
        readable = actor.readable_models()
        if readable is not None:
            query = query.where(Promotion.model_id.in_(readable))
    if state is not None:
        try:
            query = query.where(Promotion.state == PromotionState(state))
        except ValueError:
            choices = ", ".join(s.value for s in PromotionState)
            raise InvalidInput(
                f"unknown state {state!r}; expected one of {choices}", detail={"state": state}
            ) from None
    return paginate(
        session,
        query,
        order=[(Promotion.id, True)],
        page_size=page_size,
        page_token=page_token,
        context=f"promotions\n{name}\n{state}",
    )

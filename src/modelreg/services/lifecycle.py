"""Lifecycle governance: promotions through policy gates and approvals, rollback, stage history.

Every move of a version into a stage or a protected alias goes through ``promote``: the gates of
the effective rule (``services.policies``) are evaluated here, on the server, and the outcome is
a ``Promotion`` row that is ``applied``, ``pending`` (approvals needed) or ``refused``. Refusals
are recorded too, so the audit trail shows who tried to ship what. The model row is locked for
every move, and a partial unique index keeps one production version per model even so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from modelreg.db.base import utcnow
from modelreg.db.tables import (
    Alias,
    HistoryAction,
    HistoryEntry,
    HistoryKind,
    Model,
    PolicyRule,
    Promotion,
    PromotionState,
    PromotionVote,
    Role,
    Version,
)
from modelreg.errors import (
    AliasNotFound,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PromotionNotFound,
    VersionNotFound,
)
from modelreg.names import MAX_VERSION, Ref, Stage, parse_ref, validate_alias, validate_text
from modelreg.services import auth, policies
from modelreg.services.actor import Actor, Permission
from modelreg.services.aliases import alias_holder, check_expected, history_order, move_alias
from modelreg.services.audit import EventTag, record
from modelreg.services.models import get_model
from modelreg.services.pages import paginate
from modelreg.services.versions import resolve
from modelreg.types import Page

__all__ = [
    "approve",
    "current_holder",
    "delete_alias",
    "get_promotion",
    "holder_at",
    "list_promotions",
    "promote",
    "reject",
    "rollback",
    "set_alias",
    "version_at",
]


def _describe(model: Model, target: str) -> str:
    return f"{model.name}{target}" if target.startswith("@") else f"{model.name}/{target}"


def current_holder(session: Session, model: Model, target: str) -> int | None:
    """The version holding ``target`` now: the alias's version, or the stage's newest version."""
    if target.startswith("@"):
        return alias_holder(session, model, target[1:])
    return session.scalar(
        select(Version.number)
        .where(Version.model_id == model.id, Version.stage == Stage(target))
        .order_by(Version.number.desc())
        .limit(1)
    )


def _holds(version: Version, target: str) -> bool:
    if target.startswith("@"):
        return any(a.name == target[1:] for a in version.aliases)
    return version.stage.value == target


def _set_stage(
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


def _apply(
    session: Session,
    model: Model,
    version: Version,
    target: str,
    rule: PolicyRule | None,
    *,
    actor: Actor,
    reason: str,
    request_id: str | None,
    action: HistoryAction = HistoryAction.PROMOTE,
) -> None:
    """Move ``version`` into ``target``; a production move first moves the old holder out."""
    # One move, one moment: the old holder leaves and the new one arrives at the same ``now``,
    # so no instant shows both or neither (``history_order`` lists the leaving one first).
    now = utcnow()
    if target.startswith("@"):
        move_alias(
            session,
            model,
            target[1:],
            version,
            actor=actor,
            reason=reason,
            action=action,
            request_id=request_id,
        )
        return
    stage = Stage(target)
    if stage is Stage.PRODUCTION:
        previous = session.scalars(
            select(Version).where(
                Version.model_id == model.id,
                Version.stage == Stage.PRODUCTION,
                Version.id != version.id,
            )
        ).one_or_none()
        if previous is not None:
            moved_to = Stage(rule.previous_to) if rule and rule.previous_to else Stage.ARCHIVED
            _set_stage(
                session,
                model,
                previous,
                moved_to,
                actor=actor,
                reason=f"replaced by version {version.number}",
                action=HistoryAction.REPLACED,
                request_id=request_id,
                at=now,
            )
    _set_stage(
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


def _locked_version(session: Session, model: Model, number: int) -> Version:
    version = resolve(session, Ref(model.name, version=number))
    # Another transaction may have moved it between an earlier read and the model lock.
    session.refresh(version)
    return version


def _check_version_number(number: Any) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise InvalidInput("a version is a whole number from 1", detail={"version": number})
    return number


def promote(
    session: Session,
    name: str,
    number: int,
    target: str,
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
    target = policies.parse_target(target)
    number = _check_version_number(number)
    reason = validate_text(reason, kind="reason")
    model = get_model(session, name, actor=actor, lock=not dry_run)
    actor.require(Permission.PROMOTE, model.id)
    version = _locked_version(session, model, number)
    holder = current_holder(session, model, target)
    check_expected(holder, expect_current, _describe(model, target))
    if _demotes(version, target):
        _require_demoter(session, model, actor)
    rule = policies.effective_rule(session, model, target)
    promotion = Promotion(
        model_id=model.id,
        model=model,
        number=number,
        target=target,
        requested_by=actor.name,
        requested_at=utcnow(),
        reason=reason,
        expect_current=expect_current,
        from_version=holder,
        approvals_required=rule.approvals if rule else 0,
        approver_role=rule.approver_role if rule else Role.APPROVER,
        failed_criteria=[],
        decision_reason="",
        votes=[],
    )
    if _holds(version, target):
        promotion.state = PromotionState.APPLIED
        promotion.decision_reason = f"version {number} already holds {target}"
        return promotion
    failures = policies.failed(policies.evaluate(session, version, rule))
    promotion.failed_criteria = failures
    if failures:
        promotion.state = PromotionState.REFUSED
    elif promotion.approvals_required > 0:
        promotion.state = PromotionState.PENDING
    else:
        promotion.state = PromotionState.APPLIED
    if dry_run:
        return promotion
    if promotion.state is PromotionState.PENDING:
        same = session.scalars(
            select(Promotion).where(
                Promotion.model_id == model.id,
                Promotion.number == number,
                Promotion.target == target,
                Promotion.state == PromotionState.PENDING,
            )
        ).first()
        if same is not None:
            # Asking again is not a second request: CI retries must not pile up approvals.
            return same
    if promotion.state is not PromotionState.PENDING:
        promotion.decided_by = actor.name
        promotion.decided_at = promotion.requested_at
    session.add(promotion)
    session.flush()
    request_id = str(promotion.id)
    record(
        session,
        EventTag.PROMOTION_PROMOTE,
        actor=actor,
        target=f"{_describe(model, target)}:{number}",
        model=model,
        after={
            "request_id": promotion.id,
            "version": number,
            "target": target,
            "state": promotion.state.value,
            "failed_criteria": failures,
        },
        reason=reason,
    )
    if promotion.state is PromotionState.APPLIED:
        _apply(
            session, model, version, target, rule, actor=actor, reason=reason, request_id=request_id
        )
    return promotion


def _demotes(version: Version, target: str) -> bool:
    """Whether moving ``version`` into ``target`` takes it out of production (aliases never do)."""
    return (
        not target.startswith("@")
        and version.stage is Stage.PRODUCTION
        and target != Stage.PRODUCTION.value
    )


def _require_demoter(session: Session, model: Model, actor: Actor) -> None:
    """Taking a version out of production stops it serving: as strong a right as rollback."""
    rule = policies.effective_rule(session, model, Stage.PRODUCTION.value)
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


def _check_pending(promotion: Promotion) -> None:
    if promotion.state is not PromotionState.PENDING:
        raise Conflict(
            f"promotion #{promotion.id} is already {promotion.state.value}",
            detail={"id": promotion.id, "state": promotion.state.value},
        )


def _decider_role(session: Session, promotion: Promotion) -> Role:
    rule = policies.effective_rule(session, promotion.model, promotion.target)
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
    rule = policies.effective_rule(session, model, promotion.target)
    promotion.approvals_required = rule.approvals if rule is not None else 0
    counted = counted_approvers(session, promotion)
    approvals = len(counted)
    lapsed = sorted(v.actor for v in promotion.votes if v.approve and v.actor not in counted)
    record(
        session,
        EventTag.PROMOTION_APPROVE,
        actor=actor,
        target=f"{_describe(model, promotion.target)}:{promotion.number}",
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
        target=f"{_describe(model, promotion.target)}:{promotion.number}",
        model=model,
        after={"request_id": promotion.id, "state": "refused", "failed_criteria": failures},
        reason="gates failed when the last approval arrived",
    )


def _decide(
    session: Session, promotion: Promotion, rule: PolicyRule | None, *, actor: Actor
) -> None:
    """Apply an approved request, or refuse it if its gates no longer pass."""
    model = promotion.model
    promotion.decided_by = actor.name
    promotion.decided_at = utcnow()
    try:
        version = _locked_version(session, model, promotion.number)
    except VersionNotFound:
        missing = {
            "criterion": "version exists",
            "passed": False,
            "actual": {"version": promotion.number},
            "message": f"version {promotion.number} was deleted",
        }
        _refuse(session, promotion, [missing], actor=actor)
        return
    failures = policies.failed(policies.evaluate(session, version, rule))
    if _demotes(version, promotion.target):
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
    holder = current_holder(session, model, promotion.target)
    if promotion.expect_current is not None and (holder or 0) != promotion.expect_current:
        failures.append(
            {
                "criterion": f"{promotion.target} held by {promotion.expect_current or 'nothing'}",
                "passed": False,
                "actual": {"current": holder},
                "message": "someone moved it while the request waited",
            }
        )
    promotion.failed_criteria = failures
    if failures:
        _refuse(session, promotion, failures, actor=actor)
        return
    promotion.state = PromotionState.APPLIED
    session.flush()
    if not _holds(version, promotion.target):
        _apply(
            session,
            model,
            version,
            promotion.target,
            rule,
            actor=actor,
            reason=promotion.reason,
            request_id=str(promotion.id),
        )


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
        target=f"{_describe(model, promotion.target)}:{promotion.number}",
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


# --------------------------------------------------------------------------------------------
# Aliases under policy


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
    validate_alias(alias)
    reason = validate_text(reason, kind="reason")
    number = _check_version_number(version)
    model = get_model(session, name, actor=actor, lock=True)
    actor.require(Permission.ALIAS_SET, model.id)
    target = "@" + alias
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
    check_expected(alias_holder(session, model, alias), expect_current, _describe(model, target))
    row = move_alias(
        session, model, alias, _locked_version(session, model, number), actor=actor, reason=reason
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
    validate_alias(alias)
    reason = validate_text(reason, kind="reason")
    model = get_model(session, name, actor=actor, lock=True)
    actor.require(Permission.ALIAS_SET, model.id)
    rule = policies.effective_rule(session, model, "@" + alias)
    if rule is not None and not actor.has_role(rule.approver_role, model.id):
        raise PermissionDenied(
            f"@{alias} is protected: removing it needs the {rule.approver_role.value} role",
            detail={"role_needed": rule.approver_role.value},
        )
    holder = alias_holder(session, model, alias)
    if holder is None:
        raise AliasNotFound(
            f"model {model.name!r} has no alias {alias!r}", detail={"name": name, "alias": alias}
        )
    check_expected(holder, expect_current, _describe(model, "@" + alias))
    move_alias(session, model, alias, None, actor=actor, reason=reason)
    return holder


# --------------------------------------------------------------------------------------------
# Rollback and the history of holders


def _entries(
    session: Session, model: Model, target: str, at: datetime | None = None
) -> list[HistoryEntry]:
    kind = HistoryKind.ALIAS if target.startswith("@") else HistoryKind.STAGE
    query = select(HistoryEntry).where(HistoryEntry.model_id == model.id, HistoryEntry.kind == kind)
    if kind is HistoryKind.ALIAS:
        query = query.where(HistoryEntry.key == target[1:])
    if at is not None:
        query = query.where(HistoryEntry.at <= at)
    return list(session.scalars(query.order_by(*history_order())))


def _earlier_holders(
    session: Session, model: Model, target: str, current: int, *, skip_rolled_out: bool = True
) -> list[int]:
    """Versions that held ``target`` before ``current``, most recent first.

    A version rolled back out of ``target`` (and not put there again since) is left out unless
    ``skip_rolled_out`` is false, so a second rollback steps further back instead of
    reinstating what the first one removed.
    """
    is_alias = target.startswith("@")
    rolled_out: set[int] = set()
    held: list[int] = []
    entries = _entries(session, model, target)
    # Only what held it before the current holder's latest arrival (a stage may have several);
    # rollbacks after that arrival still count.
    arrivals = [
        i
        for i, e in enumerate(entries)
        if e.to_version == current and (is_alias or e.key == target)
    ]
    cut = arrivals[-1] if arrivals else len(entries)
    for index, entry in enumerate(entries):
        if is_alias:
            entered, left = entry.to_version, entry.from_version
        else:
            entered = entry.to_version if entry.key == target else None
            left = entry.to_version if entry.from_stage == target else None
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
    session: Session, model: Model, target: str, current: int, to: int | None
) -> int:
    """The version a rollback of ``target`` puts back: ``to``, or the last earlier holder."""
    what = _describe(model, target)
    earlier = _earlier_holders(session, model, target, current)
    if not target.startswith("@") and target != Stage.PRODUCTION.value:
        # Rolling back staging must never pull the production version out of production.
        serving = current_holder(session, model, Stage.PRODUCTION.value)
        earlier = [v for v in earlier if v != serving]
    if to is not None:
        to = _check_version_number(to)
        # Naming a version explicitly may bring back one an earlier rollback removed.
        earlier = _earlier_holders(session, model, target, current, skip_rolled_out=False)
        if not target.startswith("@") and target != Stage.PRODUCTION.value:
            serving = current_holder(session, model, Stage.PRODUCTION.value)
            if to == serving:
                raise Conflict(
                    f"version {to} is in production; rolling {what} back to it would take it "
                    "out of production",
                    detail={"to": to},
                )
        if to not in earlier:
            held = ", ".join(str(v) for v in earlier) or "none"
            raise InvalidInput(
                f"version {to} never held {what} before version {current} (earlier holders: "
                f"{held})",
                detail={"to": to, "earlier": earlier},
            )
        chosen = to
    elif earlier:
        chosen = earlier[0]
    else:
        removed = _earlier_holders(session, model, target, current, skip_rolled_out=False)
        hint = (
            f"; earlier rollbacks removed version(s) {', '.join(map(str, removed))}, name one "
            "with --to to bring it back"
            if removed
            else ""
        )
        raise Conflict(
            f"no version held {what} before version {current}, so there is nothing to roll "
            f"back to{hint}",
            detail={"current": current, "rolled_back": removed},
        )
    return chosen


def rollback(
    session: Session,
    name: str,
    *,
    actor: Actor,
    reason: str,
    target: str = Stage.PRODUCTION.value,
    to: int | None = None,
    expect_current: int | None = None,
) -> dict[str, Any]:
    """Put back the version that held ``target`` before the current one (or ``to``).

    The emergency brake: approvers may do it without an approval round and without the gates;
    the version rolled back from is archived (stages) and the move is recorded as a rollback.
    """
    target = policies.parse_target(target)
    if target in (Stage.NONE.value, Stage.ARCHIVED.value):
        raise InvalidInput(
            "rollback applies to production, staging or an @alias", detail={"target": target}
        )
    reason = validate_text(reason, kind="reason").strip()
    if not reason:
        raise InvalidInput("a rollback needs a reason (--reason)", detail={"name": name})
    model = get_model(session, name, actor=actor, lock=True)
    rule = policies.effective_rule(session, model, target)
    needed = rule.approver_role if rule is not None else Role.APPROVER
    actor.require(Permission.ROLLBACK, model.id)
    if not actor.has_role(needed, model.id):
        raise PermissionDenied(
            f"rolling back {_describe(model, target)} needs the {needed.value} role",
            detail={"role_needed": needed.value},
        )
    current = current_holder(session, model, target)
    what = _describe(model, target)
    if current is None:
        raise Conflict(f"nothing holds {what}, so there is nothing to roll back", detail={})
    check_expected(current, expect_current, what)
    chosen = _rollback_choice(session, model, target, current, to)
    restored = _locked_version(session, model, chosen)
    leaving = _locked_version(session, model, current)
    if target.startswith("@"):
        move_alias(
            session,
            model,
            target[1:],
            restored,
            actor=actor,
            reason=reason,
            action=HistoryAction.ROLLBACK,
        )
    else:
        # Out first, then in: the one-production index sees at most one row at every flush.
        now = utcnow()
        _set_stage(
            session,
            model,
            leaving,
            Stage.ARCHIVED,
            actor=actor,
            reason=reason,
            action=HistoryAction.ROLLBACK,
            request_id=None,
            at=now,
        )
        _set_stage(
            session,
            model,
            restored,
            Stage(target),
            actor=actor,
            reason=reason,
            action=HistoryAction.ROLLBACK,
            request_id=None,
            at=now,
        )
    result = {"name": model.name, "target": target, "from_version": current, "to_version": chosen}
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
    return result


def holder_at(
    session: Session, name: str, target: str, at: datetime, *, actor: Actor
) -> int | None:
    """Which version held ``target`` (a stage or ``@alias``) of ``name`` at moment ``at``.

    Stages are replayed from the history (a version's stage at ``at`` is the one its last move
    before ``at`` gave it); for a stage with several holders the newest version answers, as
    ``NAME/staging`` does now.
    """
    target = policies.parse_target(target)
    model = get_model(session, name, actor=actor)
    entries = _entries(session, model, target, at)
    if target.startswith("@"):
        return entries[-1].to_version if entries else None
    # Each version's stage at ``at`` is the one its last move gave it; of several holders, the
    # one that arrived last answers (production has one).
    stage_of: dict[int, tuple[str, int]] = {}
    for index, entry in enumerate(entries):
        if entry.to_version is not None:
            stage_of[entry.to_version] = (entry.key, index)
    holders = [(i, v) for v, (s, i) in stage_of.items() if s == target]
    return max(holders)[1] if holders else None


def version_at(session: Session, ref: Ref | str, at: datetime, *, actor: Actor) -> Version:
    """The version a stage or alias reference (``NAME/production``) named at moment ``at``.

    Raises ``NotFound`` when nothing held it then, or when that version has been deleted.
    """
    parsed = parse_ref(ref, allow_model=False) if isinstance(ref, str) else ref
    if parsed.stage is not None:
        target = parsed.stage.value
    elif parsed.alias is not None:
        target = "@" + parsed.alias
    else:
        raise InvalidInput(
            f"{parsed}: --at applies to a stage or alias reference such as NAME/production",
            detail={"ref": str(parsed)},
        )
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

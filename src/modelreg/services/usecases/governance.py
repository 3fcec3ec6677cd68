"""Aliases, promotions, rollback, history and policies.

A promotion's outcome is settled by ``modelreg.errors.settle`` once its transaction committed
(so a refusal is on record before it is raised), for every door alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from modelreg.db.tables import (
    Model,
    PolicyRule,
    Promotion,
    PromotionState,
    PromotionVote,
    Role,
    Version,
)
from modelreg.errors import settle
from modelreg.names import Ref, Target
from modelreg.services import holders, lifecycle, policies, promotions, serialize, versions
from modelreg.services.actor import Actor, Permission
from modelreg.services.moves import check_version_number
from modelreg.services.usecases import scans
from modelreg.services.usecases._handles import Handles, Page, page


def set_alias(
    h: Handles,
    actor: Actor,
    name: str,
    alias: str,
    version: int,
    reason: str,
    expect_current: int | None,
) -> tuple[int, dict[str, Any]]:
    """Create or move an alias: ``(status, answer)``, the HTTP status and body of the move.

    ``(200, the version)``, or ``(202, the request)`` when the alias is protected and the move
    now waits for approvals (``errors.OUTCOMES``). A protected alias moves through a
    promotion request: applied, it answers the version like any move; refused,
    ``PolicyViolation`` is raised (after the refusal is stored).
    """
    with h.write() as session:
        row = lifecycle.set_alias(
            session,
            name,
            alias,
            version,
            actor=actor,
            reason=reason,
            expect_current=expect_current,
        )
        if not isinstance(row, Promotion):
            session.refresh(row.version)
            return 200, serialize.version_to_dict(row.version)
        if row.state is PromotionState.APPLIED:
            moved = versions.read_version(
                session, Ref(row.model.name, version=row.number), actor=actor
            )
            session.refresh(moved)
            return 200, serialize.version_to_dict(moved)
        request = serialize.promotion_to_dict(row)
    return settle(request).status, request


def delete_alias(
    h: Handles, actor: Actor, name: str, alias: str, reason: str, expect_current: int | None
) -> dict[str, Any]:
    """Remove an alias: ``{"name", "alias", "version"}`` (the version it pointed at)."""
    with h.write() as session:
        number = lifecycle.delete_alias(
            session, name, alias, actor=actor, reason=reason, expect_current=expect_current
        )
    return {"name": name, "alias": alias, "version": number}


def promote(
    h: Handles,
    actor: Actor,
    name: str,
    version: int,
    target: str,
    reason: str,
    dry_run: bool,
    expect_current: int | None,
) -> dict[str, Any]:
    """Request a move through the policy: the request (applied, pending, or a dry run's).

    Raises ``PolicyViolation`` for a refusal, after committing it (the attempt stays on record).
    A scan still pending is finished first: gates judge the final answer.
    """
    scans.wait_for_scan(h, actor, name, version)
    with h.write() as session:
        promotion = lifecycle.promote(
            session,
            name,
            version,
            target,
            actor=actor,
            reason=reason,
            dry_run=dry_run,
            expect_current=expect_current,
        )
        request = serialize.promotion_to_dict(promotion, dry_run=dry_run)
    settle(request)
    return request


def approve(h: Handles, actor: Actor, request_id: int, reason: str) -> dict[str, Any]:
    """Approve a request (applying it when the count is reached); a refusal is raised."""
    with h.write() as session:
        promotion = lifecycle.approve(session, request_id, actor=actor, reason=reason)
        request = serialize.promotion_to_dict(promotion)
    settle(request)
    return request


def reject(h: Handles, actor: Actor, request_id: int, reason: str) -> dict[str, Any]:
    """Reject a pending request."""
    with h.write() as session:
        promotion = lifecycle.reject(session, request_id, actor=actor, reason=reason)
        return serialize.promotion_to_dict(promotion)


def get_promotion(h: Handles, actor: Actor, request_id: int) -> dict[str, Any]:
    """One request."""
    with h.read() as session:
        promotion = lifecycle.get_promotion(session, request_id, actor=actor)
        return serialize.promotion_to_dict(promotion)


def list_promotions(
    h: Handles,
    actor: Actor,
    name: str | None,
    state: str | None,
    page_size: int,
    page_token: str | None,
) -> Page:
    """One page of requests, newest first."""
    with h.read() as session:
        found = lifecycle.list_promotions(
            session,
            actor=actor,
            name=name,
            state=state,
            page_size=page_size,
            page_token=page_token,
        )
        return page([serialize.promotion_to_dict(p) for p in found], found.next_page_token)


def rollback(
    h: Handles,
    actor: Actor,
    name: str,
    target: str,
    to: int | None,
    reason: str,
    expect_current: int | None,
) -> dict[str, Any]:
    """Put back the previous holder of a stage or alias: ``{name, target, from_version, …}``."""
    with h.write() as session:
        return lifecycle.rollback(
            session,
            name,
            actor=actor,
            reason=reason,
            target=target,
            to=to,
            expect_current=expect_current,
        )


def history(h: Handles, actor: Actor, name: str) -> list[dict[str, Any]]:
    """Every stage change and alias move of a model."""
    with h.read() as session:
        return [serialize.history_to_dict(e) for e in lifecycle.history(session, name, actor=actor)]


# -- policies ---------------------------------------------------------------------------------


def get_policy(h: Handles, actor: Actor, scope: str) -> dict[str, Any]:
    """The rules governing a model (or ``*``), each with its ``source``."""
    with h.read() as session:
        return policies.effective_policy(session, scope, actor=actor)


def list_policies(h: Handles, actor: Actor) -> dict[str, Any]:
    """Every written rule: ``{"scopes": {scope: {target: rule}}}``."""
    with h.read() as session:
        return {"scopes": policies.list_scopes(session, actor=actor)}


def set_rule(
    h: Handles, actor: Actor, scope: str, target: str, rule: Mapping[str, Any]
) -> dict[str, Any]:
    """Write one rule (``rule`` as a policy file writes it): the rule with its scope and target."""
    spec = policies.RuleSpec.from_dict(rule)
    with h.write() as session:
        row = policies.set_rule(session, scope, target, spec, actor=actor)
        return {"scope": row.scope, "target": row.target, **policies.rule_to_dict(row)}


def delete_rule(h: Handles, actor: Actor, scope: str, target: str) -> dict[str, Any]:
    """Remove one rule: ``{"scope", "target"}``."""
    with h.write() as session:
        policies.delete_rule(session, scope, target, actor=actor)
    return {"scope": policies.parse_scope(scope), "target": policies.parse_target(target)}


def apply_policies(
    h: Handles, actor: Actor, scopes: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Make each listed scope's rules exactly as given, in one transaction: ``{"changes"}``."""
    specs = policies.parse_policy_document(scopes)
    with h.write() as session:
        return {"changes": policies.apply_policies(session, specs, actor=actor)}


# -- the web UI's governance views (read-only) -----------------------------------------------

# The inbox counts at most this many waiting requests ("500+" beyond).
WAITING_CAP = 500


def evaluate_gates(h: Handles, actor: Actor, name: str, number: int, target: str) -> dict[str, Any]:
    """Every criterion of the rule for moving version ``number`` of ``name`` into ``target``.

    Read-only (``promote(dry_run=True)`` takes a write transaction and the model's lock):
    ``{name, version, target, stage, rule, criteria, passed, outcome, approvals_required,
    approver_role, holder, may_promote}``, where ``outcome`` is what a request would be now
    (``applied``, ``pending``, ``refused``, or ``already`` when the version holds it).
    """
    where = Target.parse(target)
    number = check_version_number(number)
    with h.read() as session:
        version = versions.read_version(session, Ref(name, version=number), actor=actor)
        return _gates(session, version, where, actor)


def _gates(session: Session, version: Version, where: Target, actor: Actor) -> dict[str, Any]:
    model = version.model
    rule = policies.effective_rule(session, model, where)
    criteria = policies.evaluate(session, version, rule, where)
    passed = not policies.failed(criteria)
    approvals = rule.approvals if rule is not None else 0
    already = holders.holds(version, where)
    outcome = (
        "already" if already else "refused" if not passed else "pending" if approvals else "applied"
    )
    return {
        "name": model.name,
        "version": version.number,
        "target": where.label,
        "stage": version.stage.value,
        "rule": None if rule is None else _rule_with_source(rule),
        "criteria": criteria,
        "passed": passed,
        "outcome": outcome,
        "approvals_required": approvals,
        "approver_role": (rule.approver_role if rule is not None else Role.APPROVER).value,
        "holder": holders.current_holder(session, model, where),
        "may_promote": actor.can(Permission.PROMOTE, model.id),
    }


def _rule_with_source(rule: PolicyRule) -> dict[str, Any]:
    source = "*" if rule.scope == policies.DEFAULT_SCOPE else "model"
    return {**policies.rule_to_dict(rule), "source": source}


def _metrics_against_holder(
    session: Session, version: Version, holder: int | None
) -> list[dict[str, Any]]:
    """The version's metrics beside the current holder's (``None`` where it has none)."""
    theirs: dict[str, float] = {}
    if holder is not None and holder != version.number:
        other = versions.find_version(session, Ref(version.model.name, version=holder))
        theirs = {m.key: m.value for m in other.metrics} if other is not None else {}
    return [
        {"key": m.key, "value": m.value, "holder": theirs.get(m.key)}
        for m in sorted(version.metrics, key=lambda m: m.key)
    ]


def _view(session: Session, promotion: Promotion, actor: Actor) -> dict[str, Any]:
    """A request as the UI shows it: the request, what ``actor`` may decide, and its gates now."""
    view: dict[str, Any] = {
        "request": serialize.promotion_to_dict(promotion),
        "may": promotions.decisions_for(session, promotion, actor),
        "gates": None,
        "metrics": [],
    }
    if promotion.state is PromotionState.PENDING:
        ref = Ref(promotion.model.name, version=promotion.number)
        version = versions.find_version(session, ref)
        if version is not None:
            gates = _gates(session, version, Target.parse(promotion.target), actor)
            view["gates"] = gates
            view["metrics"] = _metrics_against_holder(session, version, gates["holder"])
    return view


def promotion_view(h: Handles, actor: Actor, request_id: int) -> dict[str, Any]:
    """One request for its page: ``{request, may: {approve, reject}, gates, metrics}``.

    ``gates`` (the criteria evaluated now) and ``metrics`` (against the target's current
    holder) are given while the request is pending.
    """
    with h.read() as session:
        promotion = lifecycle.get_promotion(session, request_id, actor=actor)
        return _view(session, promotion, actor)


def inbox(
    h: Handles, actor: Actor, state: str | None, page_size: int, page_token: str | None
) -> Page:
    """One page of requests in ``state`` (``None``: any), newest first, each as ``_view``."""
    with h.read() as session:
        found = lifecycle.list_promotions(
            session, actor=actor, state=state, page_size=page_size, page_token=page_token
        )
        return page([_view(session, p, actor) for p in found], found.next_page_token)


def waiting_count(h: Handles, actor: Actor) -> int:
    """How many pending requests ``actor`` may approve: not their own, not yet approved by them.

    The role each request needs is the target's rule's now (as ``approve`` checks), read in
    one query for all of them; counted up to ``WAITING_CAP``.
    """
    with h.read() as session:
        query = (
            select(
                Promotion.model_id,
                Promotion.target,
                Promotion.approver_role,
                Model.normalized_name,
            )
            .join(Model, Model.id == Promotion.model_id)
            .where(
                Promotion.state == PromotionState.PENDING,
                Promotion.requested_by != actor.name,
                ~exists().where(
                    PromotionVote.promotion_id == Promotion.id, PromotionVote.actor == actor.name
                ),
            )
            .limit(WAITING_CAP)
        )
        readable = actor.readable_models()
        if readable is not None:
            if not readable:
                return 0
            query = query.where(Promotion.model_id.in_(readable))
        rows = session.execute(query).all()
        if not rows:
            return 0
        scopes = {r.normalized_name for r in rows} | {policies.DEFAULT_SCOPE}
        rules = {
            (r.scope, r.target): r.approver_role
            for r in session.scalars(select(PolicyRule).where(PolicyRule.scope.in_(scopes)))
        }
    count = 0
    for model_id, target, stored, scope in rows:
        role = rules.get((scope, target)) or rules.get((policies.DEFAULT_SCOPE, target)) or stored
        count += actor.has_role(role, model_id)
    return count

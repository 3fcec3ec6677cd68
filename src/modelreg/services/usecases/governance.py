"""Aliases, promotions, rollback, history and policies.

A promotion's outcome is settled by ``modelreg.errors.settle`` once its transaction committed
(so a refusal is on record before it is raised), for every door alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelreg.db.tables import Promotion, PromotionState
from modelreg.errors import settle
from modelreg.names import Ref
from modelreg.services import lifecycle, policies, serialize, versions
from modelreg.services.actor import Actor
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
    """
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

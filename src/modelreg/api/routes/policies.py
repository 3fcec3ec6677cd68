"""``/api/v1/policies`` and ``…/policy``: the rules (gates, approvals) for each target.

``/policy`` is the registry default (scope ``*``) and ``/models/{name}/policy`` a model's
effective policy, which answers for a model that does not exist yet too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, Registry, RegistryDep
from modelreg.api.schemas import (
    PolicyChanges,
    PolicyDocument,
    PolicyRead,
    PolicyScopes,
    RuleDeleted,
    RuleSet,
    ScopedRuleRead,
)
from modelreg.services import policies
from modelreg.services.actor import Actor
from modelreg.services.usecases import governance

router = APIRouter(prefix="/api/v1", tags=["policies"], route_class=StrictJsonRoute)
DEFAULT = policies.DEFAULT_SCOPE


def _spec(rule: RuleSet | None) -> dict[str, Any]:
    # Only what the caller wrote: the service fills in defaults, as for a policy file.
    return rule.model_dump(exclude_unset=True) if rule is not None else {}


def _set(registry: Registry, actor: Actor, scope: str, target: str, body: RuleSet) -> Any:
    return governance.set_rule(registry, actor, scope, target, _spec(body))


def _delete(registry: Registry, actor: Actor, scope: str, target: str) -> Any:
    return governance.delete_rule(registry, actor, scope, target)


@router.get("/policies", response_model=PolicyScopes, operation_id="policies-list")
def list_policies(registry: RegistryDep, actor: ActorDep) -> Any:
    """Every written rule, by scope (``*`` and model names) and target."""
    return governance.list_policies(registry, actor)


@router.put("/policies", response_model=PolicyChanges, operation_id="policies-apply")
def apply_policies(body: PolicyDocument, registry: RegistryDep, actor: ActorDep) -> Any:
    """Make each listed scope's rules exactly as given, in one transaction (policy as code)."""
    scopes = {
        scope: {t: _spec(r) for t, r in rules.items()} for scope, rules in body.scopes.items()
    }
    return governance.apply_policies(registry, actor, scopes)


@router.get(
    "/policy",
    response_model=PolicyRead,
    response_model_exclude_unset=True,
    operation_id="policies-show-default",
)
def get_default_policy(registry: RegistryDep, actor: ActorDep) -> Any:
    """The registry-wide default rules (scope ``*``)."""
    return governance.get_policy(registry, actor, DEFAULT)


@router.put(
    "/policy/{target}",
    response_model=ScopedRuleRead,
    response_model_exclude_unset=True,
    operation_id="policies-set-default",
)
def set_default_rule(target: str, body: RuleSet, registry: RegistryDep, actor: ActorDep) -> Any:
    """Create or replace the default rule for a stage or ``@alias``."""
    return _set(registry, actor, DEFAULT, target, body)


@router.delete(
    "/policy/{target}", response_model=RuleDeleted, operation_id="policies-delete-default"
)
def delete_default_rule(target: str, registry: RegistryDep, actor: ActorDep) -> Any:
    """Remove the default rule for a target."""
    return _delete(registry, actor, DEFAULT, target)


@router.get(
    "/models/{name:model}/policy",
    response_model=PolicyRead,
    response_model_exclude_unset=True,
    operation_id="policies-show",
)
def get_policy(name: str, registry: RegistryDep, actor: ActorDep) -> Any:
    """What governs each target of a model: its own rules and the defaults it inherits."""
    return governance.get_policy(registry, actor, name)


@router.put(
    "/models/{name:model}/policy/{target}",
    response_model=ScopedRuleRead,
    response_model_exclude_unset=True,
    operation_id="policies-set",
)
def set_rule(name: str, target: str, body: RuleSet, registry: RegistryDep, actor: ActorDep) -> Any:
    """Create or replace a model's own rule for a stage or ``@alias``."""
    return _set(registry, actor, name, target, body)


@router.delete(
    "/models/{name:model}/policy/{target}",
    response_model=RuleDeleted,
    operation_id="policies-delete",
)
def delete_rule(name: str, target: str, registry: RegistryDep, actor: ActorDep) -> Any:
    """Remove a model's own rule for a target (the default, if any, governs it again)."""
    return _delete(registry, actor, name, target)

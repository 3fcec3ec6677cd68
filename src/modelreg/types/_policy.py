"""Policy results: a rule, a model's effective policy, every written rule, an apply report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelreg.types._wire import Result


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PolicyRule(Result):
    """The rule for moving versions into one target (a stage or ``@alias``).

    ``scope`` and ``target`` are set on the rule ``set_policy_rule`` wrote; ``source``
    (``model`` or ``*``) on the rules of an effective policy, which says where each comes from.
    """

    _optional = frozenset({"scope", "target", "source"})

    scope: str | None = None
    target: str | None = None
    requires: list[str]
    from_stages: list[str]
    required_tags: dict[str, str | None]
    approvals: int
    approver_role: str
    previous_to: str | None
    source: str | None = None


def _rules(data: Mapping[str, Any] | None) -> dict[str, PolicyRule]:
    return {target: PolicyRule.from_dict(rule) for target, rule in (data or {}).items()}


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Policy(Result):
    """The rules that govern a model (or ``*``, the registry default), by target."""

    scope: str
    rules: dict[str, PolicyRule]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """Build from the JSON shape."""
        return cls(scope=data["scope"], rules=_rules(data.get("rules")))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Policies(Result):
    """Every written rule, by scope (``*`` and model names) and target."""

    scopes: dict[str, dict[str, PolicyRule]]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policies:
        """Build from the JSON shape."""
        scopes = data.get("scopes") or {}
        return cls(scopes={scope: _rules(rules) for scope, rules in scopes.items()})


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PolicyApplyReport(Result):
    """Per scope, the targets ``apply_policies`` created, updated, deleted and left unchanged."""

    changes: dict[str, dict[str, list[str]]]

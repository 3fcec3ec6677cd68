"""Promotion rules of ``modelreg.Registry``: read, write and apply them (docs/lifecycle.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelreg.client._backend import Backend

if TYPE_CHECKING:
    from modelreg.types import Policies, Policy, PolicyApplyReport, PolicyRule


class PolicyRules:
    """The rules that gate moving versions into stages and aliases."""

    @property
    def backend(self) -> Backend:  # pragma: no cover - ``Registry`` defines it
        raise NotImplementedError

    def get_policy(self, name: str = "*") -> Policy:
        """The rules that govern model ``name`` (or ``*``, the registry default), by target.

        Each rule says whether it is the model's own (``source: model``) or the default's.
        """
        return self.backend.get_policy(name)

    def list_policies(self) -> Policies:
        """Every written rule, by scope (``*`` and model names) and target."""
        return self.backend.list_policies()

    def set_policy_rule(
        self,
        name: str,
        target: str,
        *,
        requires: Sequence[str] = (),
        from_stages: Sequence[str] = (),
        required_tags: Mapping[str, str | None] | None = None,
        approvals: int = 0,
        approver_role: str = "approver",
        previous_to: str | None = None,
    ) -> PolicyRule:
        """Write the rule for moving versions of ``name`` (or ``*``) into ``target``.

        ``target`` is a stage or ``@alias`` (a rule makes an alias protected). ``requires``
        holds gates in the search language (``metrics.accuracy >= 0.85``).
        """
        rule = {
            "requires": list(requires),
            "from_stages": list(from_stages),
            "required_tags": dict(required_tags or {}),
            "approvals": approvals,
            "approver_role": approver_role,
            "previous_to": previous_to,
        }
        return self.backend.set_policy_rule(name, target, rule)

    def delete_policy_rule(self, name: str, target: str) -> None:
        """Remove the rule of ``name`` (or ``*``) for ``target``."""
        self.backend.delete_policy_rule(name, target)

    def apply_policies(self, scopes: Mapping[str, Mapping[str, Any]]) -> PolicyApplyReport:
        """Make each listed scope's rules exactly as given, in one transaction (policy as code).

        ``scopes`` maps ``*`` or a model name to ``{target: rule}``; scopes not listed are left
        alone. Returns, per scope, the targets created, updated, deleted and unchanged.
        """
        return self.backend.apply_policies({k: dict(v) for k, v in scopes.items()})

"""Promotion policies: the rules a version must meet to enter a stage or a protected alias.

A rule belongs to a model (``scope`` is its normalised name) or to every model (``*``), and to
one target: a stage, or ``@alias``. A model's rule for a target replaces the default's rule for
that target as a whole; rules are never merged, so what applies is always one readable rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from modelreg.db.tables import Model, PolicyRule, Role, Version, VersionStatus
from modelreg.errors import InvalidInput, NotFound
from modelreg.names import (
    Stage,
    Target,
    normalize_name,
    parse_target,
    validate_key,
    validate_model_name,
    validate_text,
)
from modelreg.services import search
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, record
from modelreg.services.models import find_model, not_found
from modelreg.services.scanning import gate as scan_gate
from modelreg.services.signed import is_signed

DEFAULT_SCOPE = "*"
MAX_APPROVALS = 10
MAX_GATES = 50
_REPLACED_TO = (Stage.ARCHIVED, Stage.STAGING, Stage.NONE)


def parse_scope(scope: str) -> str:
    """``*`` or the normalised name of a model."""
    if scope == DEFAULT_SCOPE:
        return scope
    return normalize_name(validate_model_name(scope))


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule as written by a user (CLI flags, a JSON body, a policy file), before validation."""

    requires: list[str] = field(default_factory=list)
    from_stages: list[str] = field(default_factory=list)
    required_tags: dict[str, str | None] = field(default_factory=dict)
    approvals: int = 0
    approver_role: str = Role.APPROVER.value
    previous_to: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "rule") -> RuleSpec:
        """Read a rule mapping, refusing unknown keys (a typo must not weaken a gate)."""
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{where} must be a mapping", detail={"rule": repr(data)})
        known = {"requires", "from_stages", "required_tags", "approvals", "approver_role"}
        known.add("previous_to")
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(
                f"{where}: unknown key(s) {', '.join(unknown)}; "
                f"expected {', '.join(sorted(known))}",
                detail={"unknown": unknown},
            )
        tags = data.get("required_tags") or {}
        if isinstance(tags, list):
            tags = dict(_split_tag(str(t)) for t in tags)
        if not isinstance(tags, Mapping):
            raise InvalidInput(
                f"{where}.required_tags is a mapping of tag to value (or null), or a list of "
                "KEY / KEY=VALUE",
                detail={"required_tags": repr(tags)},
            )
        for key, value in tags.items():
            if value is not None and not isinstance(value, str):
                raise InvalidInput(
                    f"{where}.required_tags.{key} must be a string (quote it in YAML: '{value}')",
                    detail={"tag": str(key)},
                )
        return cls(
            requires=_string_list(data.get("requires"), f"{where}.requires"),
            from_stages=_string_list(data.get("from_stages"), f"{where}.from_stages"),
            required_tags=dict(tags),
            approvals=data.get("approvals", 0),
            approver_role=data.get("approver_role") or Role.APPROVER.value,
            previous_to=data.get("previous_to"),
        )


def _string_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{where} must be a list of strings", detail={where: repr(value)})
    return list(value)


def _split_tag(text: str) -> tuple[str, str | None]:
    key, sep, value = text.partition("=")
    return key, (value if sep else None)


def _clean(target: Target, spec: RuleSpec) -> dict[str, Any]:
    """Validate ``spec`` for ``target``; every gate is compiled now, not when a promotion runs."""
    if len(spec.requires) > MAX_GATES:
        raise InvalidInput(f"a rule has at most {MAX_GATES} gates", detail={"target": target.label})
    requires = []
    for raw in spec.requires:
        text = validate_text(raw, kind="gate", limit=1000)
        # Parsed as written, so an error's position points into the text the user gave.
        search.version_condition(text)
        requires.append(text.strip())
    from_stages = sorted({Stage.parse(s).value for s in spec.from_stages})
    if target.label in from_stages:
        raise InvalidInput(
            f"a rule for {target} cannot require coming from {target}: nothing could pass",
            detail={"target": target.label},
        )
    tags = {validate_key(k, kind="tag"): v for k, v in spec.required_tags.items()}
    for key, value in tags.items():
        if value is not None:
            validate_text(value, kind=f"tag {key!r}")
    approvals = spec.approvals
    if isinstance(approvals, bool) or not isinstance(approvals, int):
        raise InvalidInput("approvals must be a whole number", detail={"approvals": approvals})
    if not 0 <= approvals <= MAX_APPROVALS:
        raise InvalidInput(
            f"approvals must be between 0 and {MAX_APPROVALS}", detail={"approvals": approvals}
        )
    try:
        role = Role(str(spec.approver_role).lower())
    except ValueError:
        raise InvalidInput(
            f"unknown role {spec.approver_role!r}; approvers need contributor, approver or admin",
            detail={"approver_role": spec.approver_role},
        ) from None
    if role is Role.VIEWER:
        raise InvalidInput(
            "approvers need at least the contributor role", detail={"role": "viewer"}
        )
    previous_to = None
    if spec.previous_to is not None:
        if target.stage is not Stage.PRODUCTION:
            raise InvalidInput(
                "previous_to applies to the production rule only", detail={"target": target.label}
            )
        previous = Stage.parse(spec.previous_to)
        if previous not in _REPLACED_TO:
            raise InvalidInput(
                "previous_to is archived, staging or none", detail={"previous_to": previous.value}
            )
        previous_to = previous.value
    return {
        "requires": requires,
        "from_stages": from_stages,
        "required_tags": tags,
        "approvals": approvals,
        "approver_role": role,
        "previous_to": previous_to,
    }


def rule_to_dict(rule: PolicyRule) -> dict[str, Any]:
    """One rule in its JSON shape (the same keys a policy file uses)."""
    return {
        "requires": list(rule.requires),
        "from_stages": list(rule.from_stages),
        "required_tags": dict(rule.required_tags),
        "approvals": rule.approvals,
        "approver_role": rule.approver_role.value,
        "previous_to": rule.previous_to,
    }


def _scope_model(session: Session, scope: str) -> Model | None:
    return None if scope == DEFAULT_SCOPE else find_model(session, scope)


def _require_admin(session: Session, scope: str, actor: Actor) -> Model | None:
    model = _scope_model(session, scope)
    actor.require(Permission.POLICY_SET, model.id if model is not None else None)
    return model


def _rules(session: Session, scope: str) -> dict[str, PolicyRule]:
    rows = session.scalars(select(PolicyRule).where(PolicyRule.scope == scope))
    return {r.target: r for r in rows}


def set_rule(
    session: Session, scope: str, target: str, spec: RuleSpec, *, actor: Actor
) -> PolicyRule:
    """Create or replace the rule of ``scope`` (a model or ``*``) for ``target``, audited."""
    scope = parse_scope(scope)
    where = Target.parse(target)
    target = where.label
    model = _require_admin(session, scope, actor)
    values = _clean(where, spec)
    rule = _rules(session, scope).get(target)
    before = rule_to_dict(rule) if rule is not None else None
    if rule is None:
        rule = PolicyRule(scope=scope, target=target)
        session.add(rule)
    for key, value in values.items():
        setattr(rule, key, value)
    rule.updated_by = actor.name
    session.flush()
    after = rule_to_dict(rule)
    if before != after:
        record(
            session,
            EventTag.POLICY_SET,
            actor=actor,
            target=f"{scope}:{target}",
            model=model,
            model_key=None if scope == DEFAULT_SCOPE else scope,
            before=before,
            after=after,
        )
    return rule


def delete_rule(session: Session, scope: str, target: str, *, actor: Actor) -> None:
    """Remove the rule of ``scope`` for ``target``; raises ``NotFound`` when there is none."""
    scope = parse_scope(scope)
    target = parse_target(target)
    model = _require_admin(session, scope, actor)
    rule = _rules(session, scope).get(target)
    if rule is None:
        raise NotFound(
            f"no policy rule for {target} in {scope}", detail={"scope": scope, "target": target}
        )
    before = rule_to_dict(rule)
    session.delete(rule)
    session.flush()
    record(
        session,
        EventTag.POLICY_DELETE,
        actor=actor,
        target=f"{scope}:{target}",
        model=model,
        model_key=None if scope == DEFAULT_SCOPE else scope,
        before=before,
    )


def replace_policy(
    session: Session, scope: str, rules: Mapping[str, RuleSpec], *, actor: Actor
) -> dict[str, list[str]]:
    """Make ``scope``'s rules exactly ``rules`` (policy as code); returns what changed."""
    scope = parse_scope(scope)
    _require_admin(session, scope, actor)
    wanted = {parse_target(t): spec for t, spec in rules.items()}
    if len(wanted) != len(rules):
        raise InvalidInput("a target appears twice", detail={"scope": scope})
    existing = _rules(session, scope)
    changes: dict[str, list[str]] = {"created": [], "updated": [], "deleted": [], "unchanged": []}
    for target in sorted(set(existing) - set(wanted)):
        delete_rule(session, scope, target, actor=actor)
        changes["deleted"].append(target)
    for target, spec in sorted(wanted.items()):
        old = rule_to_dict(existing[target]) if target in existing else None
        new = rule_to_dict(set_rule(session, scope, target, spec, actor=actor))
        key = "created" if old is None else "unchanged" if old == new else "updated"
        changes[key].append(target)
    return changes


def parse_policy_document(scopes: Mapping[str, Any]) -> dict[str, dict[str, RuleSpec]]:
    """Read ``{scope: {target: rule}}`` (a policy file's ``scopes``), refusing unknown keys."""
    if not isinstance(scopes, Mapping):
        raise InvalidInput("a policy maps scopes (* or model names) to rules", detail={})
    out: dict[str, dict[str, RuleSpec]] = {}
    for scope, rules in scopes.items():
        if not isinstance(rules, Mapping):
            raise InvalidInput(
                f"scope {scope!r} must map targets (stages or @alias) to rules",
                detail={"scope": scope},
            )
        out[str(scope)] = {
            str(target): RuleSpec.from_dict(rule or {}, where=f"{scope}.{target}")
            for target, rule in rules.items()
        }
    return out


def apply_policies(
    session: Session, scopes: Mapping[str, Mapping[str, RuleSpec]], *, actor: Actor
) -> dict[str, dict[str, list[str]]]:
    """``replace_policy`` for every listed scope, in the caller's one transaction."""
    keys = [parse_scope(s) for s in scopes]
    if len(set(keys)) != len(keys):
        raise InvalidInput("two scopes name the same model", detail={"scopes": list(scopes)})
    return {
        parse_scope(s): replace_policy(session, s, rules, actor=actor)
        for s, rules in scopes.items()
    }


def get_rules(session: Session, scope: str, *, actor: Actor) -> dict[str, dict[str, Any]]:
    """The rules written for ``scope`` itself (not inherited), by target."""
    name, scope = scope, parse_scope(scope)
    _require_reader(session, scope, actor, name)
    return {t: rule_to_dict(r) for t, r in sorted(_rules(session, scope).items())}


def _require_reader(session: Session, scope: str, actor: Actor, name: str) -> None:
    """Reading a model's rules needs read access to it; any other model reads as absent.

    A model not created yet has rules only registry-wide readers see; to anyone else it is
    absent, as is a model they may not read (``models.get_model``).
    """
    model = _scope_model(session, scope)
    if not actor.can(Permission.READ, model.id if model is not None else None):
        if scope == DEFAULT_SCOPE:
            actor.require(Permission.READ)
        raise not_found(name)


def list_scopes(session: Session, *, actor: Actor) -> dict[str, dict[str, dict[str, Any]]]:
    """Every scope's rules: the registry default and each model's (readable ones only)."""
    # No registry-wide check: a reader of some models sees the default and those models.
    readable = actor.readable_models()
    if readable is not None and not readable:
        actor.require(Permission.READ)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for rule in session.scalars(select(PolicyRule).order_by(PolicyRule.scope, PolicyRule.target)):
        if readable is not None and rule.scope != DEFAULT_SCOPE:
            model = find_model(session, rule.scope)
            if model is None or model.id not in readable:
                continue
        out.setdefault(rule.scope, {})[rule.target] = rule_to_dict(rule)
    return out


def effective_rule(session: Session, model: Model, target: Target | str) -> PolicyRule | None:
    """The rule that governs moving a version of ``model`` into ``target``."""
    target = Target.parse(target)
    rows = session.scalars(
        select(PolicyRule).where(
            PolicyRule.scope.in_([model.normalized_name, DEFAULT_SCOPE]),
            PolicyRule.target == target.label,
        )
    ).all()
    by_scope = {r.scope: r for r in rows}
    return by_scope.get(model.normalized_name) or by_scope.get(DEFAULT_SCOPE)


def effective_policy(session: Session, name: str, *, actor: Actor) -> dict[str, Any]:
    """What governs each target of model ``name``, and where each rule comes from."""
    if name == DEFAULT_SCOPE:
        written = get_rules(session, DEFAULT_SCOPE, actor=actor)
        return {
            "scope": DEFAULT_SCOPE,
            "rules": {t: {**r, "source": "*"} for t, r in written.items()},
        }
    scope = parse_scope(name)
    _require_reader(session, scope, actor, name)
    rules: dict[str, dict[str, Any]] = {}
    for source in (DEFAULT_SCOPE, scope):
        for target, rule in _rules(session, source).items():
            rules[target] = {**rule_to_dict(rule), "source": "model" if source == scope else "*"}
    return {"scope": scope, "rules": dict(sorted(rules.items()))}


# --------------------------------------------------------------------------------------------
# Evaluation


def _actual(version: Version, name: str) -> Any:
    """The value a gate saw for field ``name`` (``None`` when the version lacks it)."""
    head, _, key = name.partition(".")
    head = head.lower()
    if head == "model" and key.startswith("tags."):
        wanted = key.removeprefix("tags.")
        return next((t.value for t in version.model.tags if t.key == wanted), None)
    if key and head in ("metrics", "params", "tags"):
        tables: dict[str, list[Any]] = {
            "metrics": list(version.metrics),
            "params": list(version.params),
            "tags": list(version.tags),
        }
        rows = tables[head]
        return next((r.value for r in rows if r.key == key), None)
    if head == "signed":
        session = object_session(version)
        return session is not None and is_signed(session, version.id)
    simple: dict[str, Any] = {
        "name": version.model.name,
        "version": version.number,
        "semver": version.semver,
        "stage": version.stage.value,
        "status": version.status.value,
        "owner": version.model.owner,
        "created_by": version.created_by,
        "run_id": version.run_id,
        "created_at": version.created_at.isoformat() if version.created_at else None,
        "alias": sorted(a.name for a in version.aliases),
        "scan": (version.scan or {}).get("status"),
    }
    return simple.get(head)


def evaluate(
    session: Session, version: Version, rule: PolicyRule | None, target: Target | None = None
) -> list[dict[str, Any]]:
    """Check ``version`` against every criterion of ``rule``; one result per criterion.

    With ``target``, the registry's safety default for it comes first (``scanning.gate``).

    Each result is ``{criterion, passed, actual, message}``, and ``actual`` holds the values
    the check saw, so a refusal says what the version has, not only what it lacked.
    """
    results: list[dict[str, Any]] = scan_gate.baseline(session, version, target)
    if version.status is not VersionStatus.READY:
        results.append(
            {
                "criterion": "status = 'ready'",
                "passed": False,
                "actual": {"status": version.status.value},
                "message": f"version {version.number} is {version.status.value}",
            }
        )
    if rule is None:
        return results
    if rule.from_stages:
        passed = version.stage.value in rule.from_stages
        allowed = " or ".join(rule.from_stages)
        results.append(
            {
                "criterion": f"from stage {allowed}",
                "passed": passed,
                "actual": {"stage": version.stage.value},
                "message": "" if passed else f"it is in {version.stage.value}, not {allowed}",
            }
        )
    tags = {t.key: t.value for t in version.tags}
    for key, want in sorted(rule.required_tags.items()):
        have = tags.get(key)
        passed = have is not None and (want is None or have == want)
        criterion = f"tag {key}" if want is None else f"tag {key} = {want!r}"
        message = "" if passed else "missing" if have is None else f"is {have!r}"
        results.append(
            {
                "criterion": criterion,
                "passed": passed,
                "actual": {f"tags.{key}": have},
                "message": message and f"tags.{key} {message}",
            }
        )
    for text in rule.requires:
        clause, fields = search.version_condition(text)
        passed = (
            session.scalar(
                select(Version.id)
                .join(Model, Model.id == Version.model_id)
                .where(Version.id == version.id, clause)
            )
            is not None
        )
        actual = {name: _actual(version, name) for name in fields}
        shown = ", ".join(f"{k} = {v!r}" for k, v in actual.items())
        results.append(
            {
                "criterion": text,
                "passed": passed,
                "actual": actual,
                "message": "" if passed else f"not met: {shown}",
            }
        )
    return results


def failed(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The criteria that did not pass."""
    return [r for r in results if not r["passed"]]


__all__ = [
    "DEFAULT_SCOPE",
    "RuleSpec",
    "apply_policies",
    "delete_rule",
    "effective_policy",
    "effective_rule",
    "evaluate",
    "failed",
    "get_rules",
    "list_scopes",
    "parse_policy_document",
    "parse_scope",
    "parse_target",
    "replace_policy",
    "rule_to_dict",
    "set_rule",
]

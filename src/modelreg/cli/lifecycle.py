"""Lifecycle commands: promote, approve, reject, promotions, rollback and policy.

Exit codes carry the outcome, so a CI step needs no parsing: 0 applied, 3 refused by a gate
(every failed criterion is printed), 4 waiting for approval, 5 not allowed, 6 someone moved
the stage first (``--expect-current``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from modelreg.cli.output import Ctx, console, emit, json_option, page_options
from modelreg.errors import InvalidInput, criteria_lines, outcome
from modelreg.names import MAX_VERSION, Target
from modelreg.types import PolicyRule, Promotion


def _expected(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """Read ``--expect-current``: a version number, or ``none`` (``0``) for "nothing"."""
    if value is None:
        return None
    text = value.strip().lower()
    if text in ("none", "0"):
        return 0
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_VERSION:
        raise click.BadParameter(f"{value!r} is not a version number or 'none'")
    return int(text)


def expect_option(func: Any) -> Any:
    """Add ``--expect-current`` (compare-and-set)."""
    return click.option(
        "--expect-current",
        metavar="VERSION|none",
        callback=_expected,
        default=None,
        help="Fail (exit 6) unless this version (or 'none') holds it now: compare-and-set.",
    )(func)


def _where(p: Promotion) -> str:
    return Target.parse(p.target).on(p.name)


def _counted(p: Promotion) -> int:
    # An approval whose approver has since lost the approver role is shown but not counted.
    return sum(1 for a in p.approvals if a.get("counts") is not False)


def print_criteria(criteria: list[dict[str, Any]], *, err: bool = False) -> None:
    """Print each failed criterion on its own line (``errors.criteria_lines``), indented.

    Plain ``click.echo``: criteria and messages carry user data (tag values, gate text), which
    must never be read as markup.
    """
    for line in criteria_lines(criteria):
        click.echo(f"  {line}", err=err)


def report(promotion: Promotion, *, as_json: bool) -> None:
    """Print a request's outcome and exit with its code (0 applied, 3 refused, 4 pending)."""
    if as_json:
        emit(promotion.to_dict())
    else:
        screen = console()
        label = f"#{promotion.id}" if promotion.id is not None else "(dry run)"
        what = f"{_where(promotion)} ← version {promotion.version}"
        if promotion.state == "applied":
            done = "would be applied" if promotion.dry_run else "applied"
            note = f" ({promotion.decision_reason})" if promotion.decision_reason else ""
            screen.print(f"{what}: {done}{note}")
        elif promotion.state == "pending":
            have = _counted(promotion)
            screen.print(
                f"{what}: {'would wait' if promotion.dry_run else 'waits'} for approval "
                f"({have} of {promotion.approvals_required}, role {promotion.approver_role})"
            )
            if promotion.id is not None:
                screen.print(
                    f"  request {label}; an approver runs: modelreg approve {promotion.id}"
                )
        elif promotion.state == "refused":
            screen.print(f"{what}: [red]refused[/red] {label}")
            print_criteria(promotion.failed_criteria)
        else:
            screen.print(f"{what}: {promotion.state} {label} ({promotion.decision_reason})")
    code = outcome(promotion.state, promotion.dry_run).exit_code
    if code:
        raise SystemExit(code)


@click.command()
@click.argument("name")
@click.argument("version", type=click.IntRange(1))
@click.option(
    "--to",
    "to",
    required=True,
    help="Target stage (staging, production, archived, none) or @alias.",
)
@click.option("--reason", default="", help="Why (kept in the history and audit log).")
@click.option("--dry-run", is_flag=True, help="Evaluate the gates and change nothing.")
@expect_option
@json_option
@click.pass_obj
def promote(
    obj: Ctx,
    name: str,
    version: int,
    to: str,
    reason: str,
    dry_run: bool,
    expect_current: int | None,
    as_json: bool,
) -> None:
    """Move VERSION of NAME into a stage, through the model's policy.

    The gates run on the registry. Exit 0: applied; 3: refused (each failed criterion is
    printed with the value it saw); 4: waiting for approval (the request id is printed).
    With --dry-run the exit code says what would happen.

    \b
    Example:
      modelreg promote fraud 2 --to staging
      modelreg promote fraud 2 --to production --reason "AUC +2%" --expect-current 1
    """
    promotion = obj.registry.promote(
        name, version, to, reason=reason, dry_run=dry_run, expect_current=expect_current
    )
    report(promotion, as_json=as_json)


@click.command()
@click.argument("request_id", type=click.IntRange(1, MAX_VERSION))
@click.option("--reason", default="", help="Why you approve (kept in the audit log).")
@json_option
@click.pass_obj
def approve(obj: Ctx, request_id: int, reason: str, as_json: bool) -> None:
    """Approve promotion REQUEST_ID; the approval that completes the count applies it.

    The requester cannot approve their own request. Exit 0: applied; 4: still waiting for
    more approvals; 3: the gates, checked again now, refuse it; 5: you requested it or lack
    the approver role; 6: you already approved it, or it is no longer pending.

    \b
    Example:
      modelreg approve 7 --reason "reviewed the eval report"
    """
    report(obj.registry.approve(request_id, reason=reason), as_json=as_json)


@click.command()
@click.argument("request_id", type=click.IntRange(1, MAX_VERSION))
@click.option("--reason", required=True, help="Why (required).")
@json_option
@click.pass_obj
def reject(obj: Ctx, request_id: int, reason: str, as_json: bool) -> None:
    """Reject promotion REQUEST_ID (its requester may withdraw it the same way).

    \b
    Example:
      modelreg reject 7 --reason "latency regression in the canary"
    """
    promotion = obj.registry.reject(request_id, reason=reason)
    if as_json:
        emit(promotion.to_dict())
    else:
        console().print(f"promotion #{promotion.id} of {_where(promotion)}: rejected")


@click.command()
@click.option("--model", "name", help="Only this model's requests.")
@click.option("--pending", is_flag=True, help="Only requests waiting for approval.")
@click.option(
    "--state",
    type=click.Choice(["pending", "applied", "refused", "rejected"]),
    help="Only requests in this state.",
)
@page_options
@json_option
@click.pass_obj
def promotions(
    obj: Ctx,
    name: str | None,
    pending: bool,
    state: str | None,
    limit: int,
    page_token: str | None,
    as_json: bool,
) -> None:
    """List promotion requests, newest first.

    \b
    Example:
      modelreg promotions --pending
      modelreg promotions --model fraud --json
    """
    if pending and state not in (None, "pending"):
        raise InvalidInput("--pending and --state disagree", detail={"state": state})
    items = obj.registry.promotions(
        name, state="pending" if pending else state, page_size=limit, page_token=page_token
    )
    if as_json:
        emit({"items": [p.to_dict() for p in items], "next_page_token": items.next_page_token})
        return
    screen = console()
    if not items:
        screen.print("no promotion requests")
        return
    from rich.markup import escape

    for p in items:
        approvals = f"{_counted(p)}/{p.approvals_required} approvals"
        line = (
            f"#{p.id}  {_where(p)} ← version {p.version}  {p.state}  {approvals}  "
            f"by {p.requested_by}  {(p.requested_at or '')[:16].replace('T', ' ')}"
        )
        screen.print(escape(line))
    if items.next_page_token:
        screen.print(f"more: --page-token {items.next_page_token}", style="dim")


@click.command()
@click.argument("name")
@click.option("--stage", default="production", show_default=True, help="The stage (or @alias).")
@click.option("--to", "to", type=click.IntRange(1), help="An earlier holder to put back.")
@click.option("--reason", required=True, help="Why (required; kept in history and audit log).")
@expect_option
@json_option
@click.pass_obj
def rollback(
    obj: Ctx,
    name: str,
    stage: str,
    to: int | None,
    reason: str,
    expect_current: int | None,
    as_json: bool,
) -> None:
    """Put back the version that held a stage before the current one.

    The emergency brake: approvers (the approver role, or the rule's approver role) roll back
    without an approval round or gates. A stage's version rolled back from is archived; an
    alias (--stage @champion) simply points back. Recorded as a rollback. A second rollback
    steps further back; it never reinstates what a rollback removed unless --to names it.

    \b
    Example:
      modelreg rollback fraud --reason "p99 latency doubled"
      modelreg rollback fraud --to 2 --reason "back to the last good one"
    """
    result = obj.registry.rollback(
        name, stage=stage, to=to, reason=reason, expect_current=expect_current
    )
    if as_json:
        emit(result)
        return
    where = Target.parse(result.target).on(result.name)
    console().print(
        f"{where}: rolled back from version {result.from_version} to {result.to_version}"
    )


# --------------------------------------------------------------------------------------------
# Policies


@click.group()
def policy() -> None:
    """Promotion rules: gates, approvals and protected aliases, per model or for all (*)."""


def _target(stage: str | None, alias: str | None) -> str:
    if (stage is None) == (alias is None):
        raise InvalidInput("give exactly one of --stage and --alias", detail={})
    return stage if stage is not None else "@" + str(alias).lstrip("@")


@policy.command("set")
@click.argument("name")
@click.option("--stage", help="The stage the rule governs (staging, production, archived, none).")
@click.option("--alias", "alias_name", help="Protect this alias: moving it follows the rule.")
@click.option(
    "--require",
    "requires",
    multiple=True,
    help='A gate in the search language, e.g. "metrics.accuracy >= 0.85" (repeatable).',
)
@click.option(
    "--from-stage", "from_stages", multiple=True, help="Only from this stage (repeatable)."
)
@click.option("--require-tag", "tags", multiple=True, help="A tag KEY or KEY=VALUE it must carry.")
@click.option("--approvals", default=0, show_default=True, type=click.IntRange(0, 10))
@click.option(
    "--approver-role",
    default="approver",
    show_default=True,
    type=click.Choice(["contributor", "approver", "admin"]),
)
@click.option(
    "--previous-to",
    type=click.Choice(["archived", "staging", "none"]),
    help="Production only: where the replaced version goes (default archived).",
)
@json_option
@click.pass_obj
def policy_set(
    obj: Ctx,
    name: str,
    stage: str | None,
    alias_name: str | None,
    requires: tuple[str, ...],
    from_stages: tuple[str, ...],
    tags: tuple[str, ...],
    approvals: int,
    approver_role: str,
    previous_to: str | None,
    as_json: bool,
) -> None:
    """Write the rule for moving versions of NAME (or '*' for every model) into a stage or alias.

    The rule replaces any earlier rule of NAME for that stage; a model's rule overrides the
    registry default ('*') for that stage.

    \b
    Example:
      modelreg policy set '*' --stage staging --require "metrics.accuracy >= 0.80"
      modelreg policy set fraud --stage production --require "metrics.accuracy >= 0.85" \\
          --from-stage staging --approvals 1
      modelreg policy set fraud --alias champion --approvals 1
    """
    target = _target(stage, alias_name)
    required: dict[str, str | None] = {}
    for item in tags:
        key, sep, value = item.partition("=")
        required[key] = value if sep else None
    rule = obj.registry.set_policy_rule(
        name,
        target,
        requires=requires,
        from_stages=from_stages,
        required_tags=required,
        approvals=approvals,
        approver_role=approver_role,
        previous_to=previous_to,
    )
    if as_json:
        emit(rule)
    else:
        console().print(f"policy of {name} for {target} written")
        _print_rule(target, rule)


@policy.command("delete")
@click.argument("name")
@click.option("--stage", help="The stage whose rule to remove.")
@click.option("--alias", "alias_name", help="The alias whose rule to remove (unprotects it).")
@json_option
@click.pass_obj
def policy_delete(
    obj: Ctx, name: str, stage: str | None, alias_name: str | None, as_json: bool
) -> None:
    """Remove the rule of NAME (or '*') for a stage or alias.

    \b
    Example:
      modelreg policy delete fraud --alias champion
    """
    target = _target(stage, alias_name)
    obj.registry.delete_policy_rule(name, target)
    if as_json:
        emit({"scope": name, "target": target, "deleted": True})
    else:
        console().print(f"policy of {name} for {target} removed")


def _print_rule(target: str, rule: PolicyRule) -> None:
    from rich.markup import escape

    lines = []
    for gate in rule.requires:
        lines.append(f"  require {gate}")
    if rule.from_stages:
        lines.append("  from stage " + " or ".join(rule.from_stages))
    for key, value in rule.required_tags.items():
        lines.append(f"  tag {key}" + (f" = {value!r}" if value is not None else ""))
    if rule.approvals:
        lines.append(f"  {rule.approvals} approval(s) by role {rule.approver_role}")
    if rule.previous_to:
        lines.append(f"  replaced version goes to {rule.previous_to}")
    screen = console()
    source = "  (from *)" if rule.source == "*" else ""
    screen.print(f"[bold]{escape(target)}[/bold]{source}")
    for line in lines:
        screen.print(escape(line))


@policy.command("show")
@click.argument("name", default="*")
@json_option
@click.pass_obj
def policy_show(obj: Ctx, name: str, as_json: bool) -> None:
    """Show what governs NAME (its own rules and the defaults it inherits), or '*'.

    \b
    Example:
      modelreg policy show fraud --json
    """
    data = obj.registry.get_policy(name)
    if as_json:
        emit(data)
        return
    if not data.rules:
        console().print(f"no policy for {name}: promotions apply without gates or approvals")
    for target, rule in data.rules.items():
        _print_rule(target, rule)


@policy.command("list")
@json_option
@click.pass_obj
def policy_list(obj: Ctx, as_json: bool) -> None:
    """List every written rule, by scope ('*' and model names).

    \b
    Example:
      modelreg policy list --json > policy-backup.json
    """
    data = obj.registry.list_policies()
    if as_json:
        emit(data)
        return
    if not data.scopes:
        console().print("no policies")
    for scope, rules in data.scopes.items():
        console().print(f"[bold]{scope}[/bold]")
        for target, rule in rules.items():
            _print_rule(target, rule)


@policy.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@click.pass_obj
def policy_apply(obj: Ctx, file: Path, as_json: bool) -> None:
    """Make the registry's rules match FILE (YAML or JSON): policy as code, reviewed in git.

    Each scope listed in FILE ('*' or a model name) gets exactly the rules it lists, in one
    transaction; scopes not listed are left alone. Unknown keys are refused.

    \b
    Example:
      modelreg policy apply policy.yaml

    \b
    FILE:
      scopes:
        "*":
          staging: {requires: ["metrics.accuracy >= 0.80"]}
        fraud:
          production:
            requires: ["metrics.accuracy >= 0.85"]
            from_stages: [staging]
            approvals: 1
          "@champion": {approvals: 1}
    """
    scopes = load_policy_file(file)
    result = obj.registry.apply_policies(scopes)
    if as_json:
        emit(result)
        return
    screen = console()
    for scope, change in result.changes.items():
        parts = [f"{k} {', '.join(v)}" for k, v in change.items() if v and k != "unchanged"]
        screen.print(f"{scope}: " + ("; ".join(parts) if parts else "unchanged"))


def load_policy_file(path: Path) -> dict[str, Any]:
    """Read a policy file's ``scopes`` mapping (YAML is a superset of JSON).

    Stricter than ``yaml.safe_load``: a repeated key, an anchor or alias, or a key that is not
    a string is an error, so a copy-paste slip can never silently replace or drop a gate.
    """
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """A safe loader that refuses what would make a policy file mean something unseen."""

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag != "tag:yaml.org,2002:str":
                raise InvalidInput(
                    f"{path} line {key_node.start_mark.line + 1}: key {key_node.value!r} must "
                    "be a string (quote it; YAML reads on/off/yes/no as booleans)",
                    detail={"path": str(path)},
                )
            key = loader.construct_scalar(key_node)
            if key in out:
                raise InvalidInput(
                    f"{path} line {key_node.start_mark.line + 1}: {key!r} appears twice",
                    detail={"path": str(path), "key": key},
                )
            out[str(key)] = loader.construct_object(value_node, deep=True)
        return out

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", detail={"path": str(path)}) from None
    # Aliases can expand a small file into gigabytes, and hide what a rule really says.
    if any(isinstance(e, yaml.AliasEvent) for e in _events(yaml, text)):
        raise InvalidInput(f"{path}: YAML anchors and aliases are not allowed", detail={})
    try:
        data = yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {exc}", detail={"path": str(path)}) from None
    if not isinstance(data, dict) or not isinstance(data.get("scopes"), dict):
        raise InvalidInput(
            f"{path} must hold a 'scopes' mapping: scope ('*' or a model) → target → rule",
            detail={"path": str(path)},
        )
    unknown = sorted(set(data) - {"scopes"})
    if unknown:
        raise InvalidInput(f"{path}: unknown top-level key(s) {', '.join(unknown)}", detail={})
    scopes: dict[str, Any] = data["scopes"]
    return scopes


def _events(yaml: Any, text: str) -> list[Any]:
    try:
        return list(yaml.parse(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return []  # the load below reports the syntax error with its position

"""Commands that move aliases and change tags, descriptions, or delete."""

from __future__ import annotations

import sys

import click

from modelreg.cli.lifecycle import expect_option
from modelreg.cli.output import Ctx, emit, json_option
from modelreg.cli.output import pairs as parse_pairs
from modelreg.errors import InvalidInput


@click.group()
def alias() -> None:
    """Set, move and delete aliases (movable pointers such as champion)."""


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", type=int)
@click.option("--reason", default="", help="Why (kept in the history and audit log).")
@expect_option
@json_option
@click.pass_obj
def alias_set(
    obj: Ctx,
    name: str,
    alias_name: str,
    version: int,
    reason: str,
    expect_current: int | None,
    as_json: bool,
) -> None:
    """Point ALIAS of NAME at VERSION (creates or moves it).

    A protected alias (one with a policy rule) moves like a promotion: exit 3 when a gate
    refuses, 4 when it waits for approval.

    \b
    Example:
      modelreg alias set fraud champion 2 --reason "better recall" --expect-current 1
    """
    result = obj.registry.set_alias(
        name, alias_name, version, reason=reason, expect_current=expect_current
    )
    if as_json:
        emit({"name": result.name, "alias": alias_name, "version": result.version})
    else:
        click.echo(f"{result.name}@{alias_name} → {result.version}")


@alias.command("delete")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.option("--reason", default="", help="Why.")
@expect_option
@json_option
@click.pass_obj
def alias_delete(
    obj: Ctx, name: str, alias_name: str, reason: str, expect_current: int | None, as_json: bool
) -> None:
    """Remove ALIAS from NAME (a protected alias needs its rule's approver role).

    \b
    Example:
      modelreg alias delete fraud challenger
    """
    number = obj.registry.delete_alias(
        name, alias_name, reason=reason, expect_current=expect_current
    )
    if as_json:
        emit({"name": name, "alias": alias_name, "deleted": True, "version": number})
    else:
        click.echo(f"{name}@{alias_name} removed (pointed at {number})")


@click.command()
@click.argument("ref")
@click.argument("pairs", nargs=-1, metavar="K=V…")
@click.option("--delete", "delete", multiple=True, metavar="KEY", help="Remove this tag.")
@json_option
@click.pass_obj
def tag(obj: Ctx, ref: str, pairs: tuple[str, ...], delete: tuple[str, ...], as_json: bool) -> None:
    """Set or delete tags on a model (NAME) or a version (NAME:VERSION).

    \b
    Example:
      modelreg tag fraud team=risk
      modelreg tag fraud:2 validated=true --delete draft
    """
    if not pairs and not delete:
        raise InvalidInput("give K=V pairs to set or --delete KEY", detail={})
    result = obj.registry.set_tags(ref, parse_pairs(pairs, "tag"), delete=list(delete))
    if as_json:
        emit(result.to_dict())
    else:
        click.echo(f"{ref}: tags " + ", ".join(f"{k}={v}" for k, v in result.tags.items()))


@click.command()
@click.argument("ref")
@click.argument("text")
@json_option
@click.pass_obj
def describe(obj: Ctx, ref: str, text: str, as_json: bool) -> None:
    """Set the description of a model (NAME) or a version (NAME:VERSION).

    \b
    Example:
      modelreg describe fraud "Card-fraud classifier, retrained weekly"
    """
    result = obj.registry.set_description(ref, text)
    if as_json:
        emit(result.to_dict())
    else:
        click.echo(f"{ref}: description updated")


@click.command()
@click.argument("ref")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_obj
def delete(obj: Ctx, ref: str, reason: str, yes: bool, as_json: bool) -> None:
    """Delete a model (NAME) or one version (NAME:VERSION). Numbers are never reused.

    \b
    Example:
      modelreg delete fraud:3 --reason "trained on leaked labels" --yes
    """
    if not yes and not as_json and sys.stdin.isatty():
        click.confirm(f"delete {ref}?", abort=True)
    result = obj.registry.delete(ref, reason=reason)
    if as_json:
        emit(result)
    else:
        click.echo(f"deleted {result['deleted']}")

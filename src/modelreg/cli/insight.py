"""Commands that compare, trace and audit: compare, lineage, history, audit, gc."""

from __future__ import annotations

from typing import Any

import click

from modelreg.cli.output import Ctx, console, emit, json_option


@click.command()
@click.argument("name")
@click.argument("v1", type=int)
@click.argument("v2", type=int)
@json_option
@click.pass_obj
def compare(obj: Ctx, name: str, v1: int, v2: int, as_json: bool) -> None:
    """Compare two versions of NAME: metrics, params, tags and files side by side.

    \b
    Example:
      modelreg compare fraud 1 2
    """
    diff = obj.registry.compare(name, v1, v2)
    if as_json:
        emit(diff)
        return
    from rich.table import Table

    screen = console()
    table = Table("", f"v{v1}", f"v{v2}", "Δ", box=None)
    for row in diff.metrics:
        delta = f"{row['delta']:+.6g}" if row["delta"] is not None else ""
        table.add_row(f"metrics.{row['key']}", fmt(row["a"]), fmt(row["b"]), delta)
    for section in ("params", "tags"):
        for row in getattr(diff, section):
            mark = "≠" if row["changed"] else ""
            table.add_row(f"{section}.{row['key']}", fmt(row["a"]), fmt(row["b"]), mark)
    for row in diff.files:
        a = row["a"]["sha256"][:12] if row["a"] else "-"
        b = row["b"]["sha256"][:12] if row["b"] else "-"
        table.add_row(f"file {row['path']}", a, b, row["status"])
    screen.print(table)


def fmt(value: Any) -> str:
    """A value for a table cell."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@click.command()
@click.argument("ref")
@json_option
@click.pass_obj
def lineage(obj: Ctx, ref: str, as_json: bool) -> None:
    """Show where a version came from (run, git, data, parents) and what derives from it.

    \b
    Example:
      modelreg lineage fraud:2
    """
    graph = obj.registry.lineage(ref)
    if as_json:
        emit(graph)
        return
    screen = console()
    screen.print(f"[bold]{graph.ref}[/bold]")

    def show(node: dict[str, Any], indent: str) -> None:
        info = node.get("lineage") or {}
        bits = [f"{k}={v}" for k, v in info.items() if v not in (None, [], "")]
        screen.print(f"{indent}{node.get('ref', '')} " + " ".join(str(b) for b in bits))
        for parent in node.get("parents", []):
            show(parent, indent + "  ↑ ")

    show({"lineage": graph.lineage, "parents": graph.parents}, "")
    if graph.children:
        screen.print("derived: " + ", ".join(graph.children))


@click.command()
@click.argument("name")
@json_option
@click.pass_obj
def history(obj: Ctx, name: str, as_json: bool) -> None:
    """Every stage change and alias move of NAME: who, when, why.

    \b
    Example:
      modelreg history fraud
    """
    entries = obj.registry.history(name)
    if as_json:
        emit({"items": entries})
        return
    from rich.markup import escape

    screen = console()
    for e in entries:
        if e.kind == "stage":
            move = f"version {e.version}: {e.from_stage} → {e.to_stage}"
        else:
            move = f"@{e.key}: {e.from_version or '-'} → {e.to_version or '-'}"
        action = "" if e.action in (None, "move") else f"{e.action}: "
        request = f" (request #{e.request_id})" if e.request_id else ""
        why = f"  “{e.reason}”" if e.reason else ""
        line = f"{e.at[:19].replace('T', ' ')}  {action}{move}  by {e.actor}{request}{why}"
        screen.print(escape(line))
    if not entries:
        screen.print("no stage or alias changes yet")


@click.group(invoke_without_command=True)
@click.option("--model", help="Only events of this model.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
@click.option("--after", default=0, type=click.IntRange(0, 2**62), help="Start after this seq.")
@json_option
@click.pass_context
def audit(ctx: click.Context, model: str | None, limit: int, after: int, as_json: bool) -> None:
    """Show the audit log (or check it with `modelreg audit verify`).

    \b
    Example:
      modelreg audit --model fraud
      modelreg audit verify
    """
    if ctx.invoked_subcommand is not None:
        return
    events = [e.to_dict() for e in ctx.obj.registry.audit(model, limit=limit, after=after)]
    if as_json:
        emit({"items": events})
        return
    screen = console()
    for e in events:
        why = f"  ({e['reason']})" if e["reason"] else ""
        screen.print(
            f"{e['seq']:>6}  {e['at'][:19].replace('T', ' ')}  {e['actor']:<12} "
            f"{e['action']:<28} {e['target']}{why}"
        )
    if not events:
        screen.print("no events")


@audit.command("verify")
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    metavar="SEQ:HASH",
    help="A head printed earlier by `modelreg audit anchor`: the chain must still hold it.",
)
@json_option
@click.pass_obj
def audit_verify(obj: Ctx, anchors: tuple[str, ...], as_json: bool) -> None:
    """Check the audit log's hash chain; exit 1 naming the first bad event.

    The chain shows edited, removed and reordered events. Events cut off the end together
    with the head row, or a chain rewritten from some event on, show only against an anchor
    kept outside the database (`modelreg audit anchor`).

    \b
    Example:
      modelreg audit verify --json
      modelreg audit verify --anchor 1234:9f86d081884c7d65…
    """
    result = obj.registry.verify_audit(anchors=anchors)
    if as_json:
        emit(result)
    elif result.ok:
        checked = f", {result.anchors} anchor(s) found" if result.anchors else ""
        click.echo(
            f"audit log intact: {result.events} events, head {(result.last_hash or '')[:16]}…"
            + checked
        )
    else:
        click.echo(f"audit log BROKEN at event {result.first_bad_seq}: {result.problem}", err=True)
    if not result.ok:
        raise SystemExit(1)


@audit.command("anchor")
@json_option
@click.pass_obj
def audit_anchor(obj: Ctx, as_json: bool) -> None:
    """Print the audit log's head as SEQ:HASH and its time, to keep outside the registry.

    Whoever can write the database can cut events off the end and move the head back; a head
    kept elsewhere (a ticket, a commit, another system's log) and checked with
    `modelreg audit verify --anchor SEQ:HASH` shows it.

    \b
    Example:
      modelreg audit anchor >> ~/audit-anchors.txt
      modelreg audit anchor --json
    """
    head = obj.registry.audit_anchor()
    if as_json:
        emit(head)
    else:
        click.echo(f"{head.anchor}  {head.at or '-'}")


@click.command()
@click.option(
    "--grace",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Keep unreferenced blobs younger than this many minutes.",
)
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@json_option
@click.pass_obj
def gc(obj: Ctx, grace: float, dry_run: bool, as_json: bool) -> None:
    """Remove stored files that no version references, and abandoned uploads.

    \b
    Example:
      modelreg gc --dry-run
    """
    result = obj.registry.gc(grace_seconds=grace * 60, dry_run=dry_run)
    if as_json:
        emit(result)
    else:
        verb = "would remove" if dry_run else "removed"
        count = result.unreferenced if dry_run else result.removed
        click.echo(
            f"{verb} {count} blob(s), {result.bytes_freed:,} bytes; "
            f"{result.temporary_removed} abandoned upload(s)"
        )

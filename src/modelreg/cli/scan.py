"""``modelreg scan``: rerun the safety scanner on a version or on every version."""

from __future__ import annotations

from typing import Any

import click

from modelreg.cli.output import Ctx, console, emit, json_option


def scan_lines(scan: dict[str, Any] | None) -> list[str]:
    """A version's scan for a person: the status, then one line per finding."""
    if not scan:
        return ["scan: not scanned (run `modelreg scan REF`)"]
    status = scan.get("status", "?")
    head = f"scan: {status}  ({scan.get('scanner', '?')}, {scan.get('scanned_at', '?')})"
    lines = [head]
    for finding in scan.get("findings") or []:
        lines.append(
            f"  {finding.get('severity', '')} {finding.get('kind', '')}: "
            f"{finding.get('file', '')}: {finding.get('detail', '')}"
        )
    if scan.get("pending"):
        lines.append("  still scanning: " + ", ".join(scan["pending"]))
    return lines


@click.command()
@click.argument("ref", required=False)
@click.option("--all", "every", is_flag=True, help="Rescan every version (admin).")
@click.option("--force", is_flag=True, help="Reread blobs the current scanner already judged.")
@json_option
@click.pass_obj
def scan(obj: Ctx, ref: str | None, every: bool, force: bool, as_json: bool) -> None:
    """Rescan REF's files for code with the registry's current scanner.

    A version whose scan changes gets an audit event (registry:version:scan). With --all,
    every version is rescanned and each blob read once. Exit code 0 whatever the result:
    read the status (clean, unsafe, not_applicable, error) or use --json.

    \b
    Example:
      modelreg scan fraud:1
      modelreg scan fraud:1 --force --json
      modelreg scan --all
    """
    if every == (ref is not None):
        raise click.UsageError("give REF or --all (not both)")
    if every:
        items = obj.registry.scan_all(force=force)
        if as_json:
            emit({"items": items})
            return
        screen = console()
        for item in items:
            note = f"  (was {item['before']})" if item["changed"] else ""
            screen.print(f"{item['name']}:{item['version']}  {item['status']}{note}")
        screen.print(f"{len(items)} versions, {sum(i['changed'] for i in items)} changed")
        return
    assert ref is not None
    result = obj.registry.scan(ref, force=force)
    if as_json:
        emit(result)
        return
    screen = console()
    screen.print(f"[bold]{result['name']}:{result['version']}[/bold]")
    for line in scan_lines(result["after"]):
        screen.print(line, markup=False)
    if result["changed"]:
        before = (result["before"] or {}).get("status") or "not scanned"
        screen.print(f"changed from {before}", markup=False)

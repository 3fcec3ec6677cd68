"""``modelreg deployments``: where models are served, as the serve processes report it."""

from __future__ import annotations

import click

from modelreg.cli.output import Ctx, console, emit, json_option, page_options
from modelreg.types import Deployment


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def _row(d: Deployment) -> list[str]:
    version = "" if d.live_version is None else str(d.live_version)
    error = d.last_error.strip().splitlines()[-1] if d.last_error.strip() else ""
    return [d.model, d.ref, version, d.address, _age(d.heartbeat_age), d.status, error]


@click.command("deployments")
@click.argument("name", required=False)
@page_options
@json_option
@click.pass_obj
def deployments(
    obj: Ctx, name: str | None, limit: int, page_token: str | None, as_json: bool
) -> None:
    """List the serve processes of model NAME, or of every model you may read.

    Each ``modelreg serve`` reports itself every 5 s: status is live (a heartbeat within
    15 s), stale (none since) or stopped (none for 5 minutes). Newest first.

    \b
    Example:
      modelreg deployments
      modelreg deployments fraud --json
    """
    items = obj.registry.deployments(name, page_size=limit, page_token=page_token)
    if as_json:
        emit({"items": [d.to_dict() for d in items], "next_page_token": items.next_page_token})
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table("model", "ref", "live", "address", "heartbeat", "status", "last error", box=None)
    for d in items:
        table.add_row(*(escape(cell) for cell in _row(d)))
    screen = console()
    screen.print(table if items else "no deployments")
    if items.next_page_token:
        screen.print(f"more: --page-token {items.next_page_token}", style="dim")

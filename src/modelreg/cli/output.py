"""Shared pieces of the CLI: the invocation context, JSON and table output, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from modelreg.client import Registry
from modelreg.errors import InvalidInput

F = TypeVar("F", bound=Callable[..., Any])

PROGRESS_THRESHOLD = 8 * 1024 * 1024


class Ctx:
    """State shared by the commands of one invocation."""

    def __init__(self, registry: str | None) -> None:
        self.registry_uri = registry
        self._registry: Registry | None = None

    def close(self) -> None:
        """Release the registry's connections (HTTP sockets, database pool)."""
        if self._registry is not None:
            self._registry.close()

    def existing(self) -> Registry | None:
        """The registry for error hints: the one in use, a server, or a folder that exists.

        Never creates a folder: a hint is not worth a registry nobody asked for.
        """
        if self._registry is not None:
            return self._registry
        from pathlib import Path

        from modelreg.errors import RegistryError
        from modelreg.location import is_remote, resolve_uri

        try:
            uri = resolve_uri(self.registry_uri)
        except RegistryError:
            return None
        return self.registry if is_remote(uri) or Path(uri).expanduser().is_dir() else None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(self.registry_uri)
            self._registry.process_label = "cli-process"
        return self._registry


def emit(data: Any) -> None:
    """Print ``data`` as the one JSON document on stdout (typed results in their JSON shape)."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=_json_shape))


def _json_shape(value: Any) -> Any:
    # A typed result (``modelreg.types``) prints as the REST API answers it.
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else str(value)


# The width of human output when stdout is not a terminal: wide enough that no line is cut.
PIPE_WIDTH = 100_000


def console() -> Any:
    """A Rich console for human output (imported lazily: Rich is slow to load).

    On a terminal Rich fits tables to the window. Piped or redirected output has no window
    (Rich would assume 80 columns and cut cells to ``fraud_detec…``), so there nothing is cut:
    columns stay aligned at whatever width the longest cell needs.
    """
    from rich.console import Console

    width = None if sys.stdout.isatty() else PIPE_WIDTH
    return Console(highlight=False, soft_wrap=True, width=width)


def json_option(func: F) -> F:
    """Add ``--json``: one JSON document on stdout and nothing else."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
    )(func)


def pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    """Parse repeated ``K=V`` options into a dict."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{what} {item!r} must look like KEY=VALUE", detail={what: item})
        out[key] = value
    return out


def metrics(values: tuple[str, ...]) -> dict[str, float]:
    """Parse repeated ``--metric K=V`` options into numbers."""
    out: dict[str, float] = {}
    for key, value in pairs(values, "--metric").items():
        try:
            out[key] = float(value)
        except ValueError:
            raise InvalidInput(
                f"--metric {key}={value!r}: the value must be a number", detail={"metric": key}
            ) from None
    return out


class Bar:
    """A Rich progress bar on stderr for transfers big enough to be worth watching."""

    def __init__(self, total: int, label: str) -> None:
        self.total = total
        self.label = label
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> Callable[[int], None] | None:
        if self.total < PROGRESS_THRESHOLD or not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task(self.label, total=self.total)
        return lambda n: self.progress.advance(self.task, n)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def version_line(v: dict[str, Any]) -> str:
    """``name:3 (semver 1.2.0; production; @champion)``."""
    extras = []
    if v.get("semver"):
        extras.append(f"semver {v['semver']}")
    if v.get("stage") and v["stage"] != "none":
        extras.append(v["stage"])
    if v.get("aliases"):
        extras.append("@" + ", @".join(v["aliases"]))
    tail = f" ({'; '.join(extras)})" if extras else ""
    return f"{v['name']}:{v['version']}{tail}"


def show_version(v: dict[str, Any]) -> None:
    """Print one version for a person."""
    from rich.table import Table

    screen = console()
    screen.print(f"[bold]{version_line(v)}[/bold]  {v['status']}")
    screen.print(f"created {v['created_at']} by {v['created_by']}; {v['size']:,} bytes")
    if v.get("description"):
        screen.print(v["description"])
    for title, key in (("metrics", "metrics"), ("params", "params"), ("tags", "tags")):
        if v.get(key):
            screen.print(f"{title}: " + ", ".join(f"{k}={val}" for k, val in v[key].items()))
    lineage = v.get("lineage") or {}
    if lineage.get("git_commit"):
        dirty = " (dirty)" if lineage.get("git_dirty") else ""
        screen.print(f"git: {lineage.get('git_repo')} @ {lineage['git_commit'][:12]}{dirty}")
    if lineage.get("run_id"):
        screen.print(f"run: {lineage['run_id']}")
    if lineage.get("source"):
        screen.print(f"source: {lineage['source']}")
    if lineage.get("imported_from"):
        screen.print(f"imported from: {lineage['imported_from']}")
    if lineage.get("datasets"):
        screen.print(
            "datasets: " + ", ".join(f"{d['name']}@{d['ref']}" for d in lineage["datasets"])
        )
    if lineage.get("parents"):
        screen.print("parents: " + ", ".join(lineage["parents"]))
    _show_flavor(screen, v)
    table = Table("path", "size", "sha256", box=None, pad_edge=False)
    # A person at a terminal sees a prefix; a pipe gets the whole digest, to check or grep.
    short = sys.stdout.isatty()
    for f in v["files"]:
        table.add_row(f["path"], f"{f['size']:,}", f["sha256"][:16] + "…" if short else f["sha256"])
    screen.print(table)


def _show_flavor(screen: Any, v: dict[str, Any]) -> None:
    """The flavor a Python object was saved with, and its signature's inputs and outputs."""
    from rich.markup import escape

    flavor = v.get("flavor")
    if isinstance(flavor, dict):
        screen.print(escape(f"flavor: {flavor.get('name')} ({flavor.get('format')})"))

    def fields(items: list[dict[str, Any]]) -> str:
        shown = [
            f"{i['name']}: {i.get('dtype')}" if i.get("name") else str(i.get("dtype"))
            for i in items[:20]
        ]
        more = f" (+{len(items) - 20} more)" if len(items) > 20 else ""
        return ", ".join(shown) + more

    signature = v.get("signature")
    if isinstance(signature, dict):
        for key in ("inputs", "outputs"):
            if signature.get(key):
                screen.print(escape(f"{key}: {fields(signature[key])}"))


def versions_table(items: list[dict[str, Any]], token: str | None) -> None:
    """Print versions as a table, with the next page token if any."""
    from rich.table import Table

    table = Table("model", "version", "semver", "stage", "aliases", "metrics", "created", box=None)
    # A terminal gets the first four metrics; a pipe gets them all (it is never cut).
    shown = 4 if sys.stdout.isatty() else None
    for v in items:
        metrics = ", ".join(f"{k}={val:g}" for k, val in list(v["metrics"].items())[:shown])
        table.add_row(
            v["name"],
            str(v["version"]),
            v["semver"] or "",
            v["stage"],
            ", ".join(v["aliases"]),
            metrics,
            v["created_at"][:19].replace("T", " "),
        )
    screen = console()
    screen.print(table if items else "no versions match")
    if token:
        screen.print(f"more: --page-token {token}", style="dim")


def page_options(func: F) -> F:
    """Add ``--limit`` and ``--page-token``."""
    func = click.option("--page-token", help="Continue a listing from a previous page.")(func)
    return click.option(
        "--limit",
        default=100,
        show_default=True,
        type=click.IntRange(1, 1000),
        help="Items per page.",
    )(func)

"""The ``modelreg`` command: every command calls ``modelreg.Registry``; errors map to exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from modelreg import __version__
from modelreg.client import Registry
from modelreg.errors import InvalidInput, RegistryError

F = TypeVar("F", bound=Callable[..., Any])

PROGRESS_THRESHOLD = 8 * 1024 * 1024


class Ctx:
    """State shared by the commands of one invocation."""

    def __init__(self, registry: str | None) -> None:
        self.registry_uri = registry
        self._registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(self.registry_uri)
        return self._registry


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def json_option(func: F) -> F:
    """Add ``--json``: one JSON document on stdout and nothing else."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
    )(func)


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{what} {item!r} must look like KEY=VALUE", detail={what: item})
        out[key] = value
    return out


def _metrics(values: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in _pairs(values, "--metric").items():
        try:
            out[key] = float(value)
        except ValueError:
            raise InvalidInput(
                f"--metric {key}={value!r}: the value must be a number", detail={"metric": key}
            ) from None
    return out


class _Bar:
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


def _version_line(v: dict[str, Any]) -> str:
    extras = []
    if v.get("semver"):
        extras.append(f"semver {v['semver']}")
    if v.get("stage") and v["stage"] != "none":
        extras.append(v["stage"])
    if v.get("aliases"):
        extras.append("@" + ", @".join(v["aliases"]))
    tail = f" ({'; '.join(extras)})" if extras else ""
    return f"{v['name']}:{v['version']}{tail}"


def _show_version(v: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    console.print(f"[bold]{_version_line(v)}[/bold]  {v['status']}")
    console.print(f"created {v['created_at']} by {v['created_by']}; {v['size']:,} bytes")
    if v.get("description"):
        console.print(v["description"])
    for title, key in (("metrics", "metrics"), ("params", "params"), ("tags", "tags")):
        if v.get(key):
            console.print(f"{title}: " + ", ".join(f"{k}={val}" for k, val in v[key].items()))
    lineage = v.get("lineage") or {}
    if lineage.get("git_commit"):
        dirty = " (dirty)" if lineage.get("git_dirty") else ""
        console.print(f"git: {lineage.get('git_repo')} @ {lineage['git_commit'][:12]}{dirty}")
    if lineage.get("run_id"):
        console.print(f"run: {lineage['run_id']}")
    if lineage.get("datasets"):
        console.print(
            "datasets: " + ", ".join(f"{d['name']}@{d['ref']}" for d in lineage["datasets"])
        )
    if lineage.get("parents"):
        console.print("parents: " + ", ".join(lineage["parents"]))
    table = Table("path", "size", "sha256", box=None, pad_edge=False)
    for f in v["files"]:
        table.add_row(f["path"], f"{f['size']:,}", f["sha256"][:16] + "…")
    console.print(table)


def _versions_table(items: list[dict[str, Any]], token: str | None) -> None:
    from rich.table import Table

    table = Table("model", "version", "semver", "stage", "aliases", "metrics", "created", box=None)
    for v in items:
        metrics = ", ".join(f"{k}={val:g}" for k, val in list(v["metrics"].items())[:4])
        table.add_row(
            v["name"],
            str(v["version"]),
            v["semver"] or "",
            v["stage"],
            ", ".join(v["aliases"]),
            metrics,
            v["created_at"][:19].replace("T", " "),
        )
    console = _console()
    console.print(table if items else "no versions match")
    if token:
        console.print(f"more: --page-token {token}", style="dim")


def _page_options(func: F) -> F:
    func = click.option("--page-token", help="Continue a listing from a previous page.")(func)
    return click.option(
        "--limit",
        default=100,
        show_default=True,
        type=click.IntRange(1, 1000),
        help="Items per page.",
    )(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--registry",
    envvar="MODELREG_URI",
    metavar="PATH",
    help="Registry folder (default: MODELREG_HOME or your user data folder). Env: MODELREG_URI.",
)
@click.version_option(__version__, prog_name="modelreg")
@click.pass_context
def cli(ctx: click.Context, registry: str | None) -> None:
    """modelreg: register, find, compare and download model versions.

    \b
    Example:
      modelreg register fraud model.pkl --metric accuracy=0.91 --tag team=risk
      modelreg alias set fraud champion 1
      modelreg show fraud@champion --json

    References: NAME:VERSION, NAME@ALIAS, NAME/STAGE, NAME/latest or models:/… URIs.
    Exit codes: 0 ok, 1 invalid input, 2 not found, 3 refused by policy, 4 awaiting approval,
    5 permission denied, 6 conflict.
    """
    ctx.obj = Ctx(registry)


@cli.command()
@click.argument("name")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--metric", "metric", multiple=True, metavar="K=V", help="A numeric metric.")
@click.option("--param", "param", multiple=True, metavar="K=V", help="A training parameter.")
@click.option("--tag", "tag", multiple=True, metavar="K=V", help="A label (editable later).")
@click.option("--description", default="", help="Free text about this version.")
@click.option("--semver", help="Semantic version, e.g. 1.4.0 (unique per model).")
@click.option("--bump", type=click.Choice(["major", "minor", "patch"]), help="Next semver.")
@click.option("--dataset", multiple=True, metavar="NAME@REF", help="Training/eval data.")
@click.option("--parent", multiple=True, metavar="NAME:VERSION", help="Derived from.")
@click.option("--run-id", help="The training run's id.")
@click.option("--framework", help="e.g. sklearn, pytorch, onnx.")
@click.option("--idempotency-key", help="Retrying with the same key returns the same version.")
@click.option("--no-capture", is_flag=True, help="Do not record git state and packages.")
@json_option
@click.pass_obj
def register(
    obj: Ctx,
    name: str,
    paths: tuple[Path, ...],
    metric: tuple[str, ...],
    param: tuple[str, ...],
    tag: tuple[str, ...],
    description: str,
    semver: str | None,
    bump: str | None,
    dataset: tuple[str, ...],
    parent: tuple[str, ...],
    run_id: str | None,
    framework: str | None,
    idempotency_key: str | None,
    no_capture: bool,
    as_json: bool,
) -> None:
    """Register a new version of NAME from files or a folder (creates the model if needed).

    \b
    Example:
      modelreg register fraud model.pkl --metric accuracy=0.82 --param n_estimators=100
      modelreg register fraud ./model_dir --metric accuracy=0.88 --bump minor
    """
    total = sum(
        f.stat().st_size
        for p in paths
        for f in ([p] if p.is_file() else p.rglob("*") if p.is_dir() else [])
        if f.is_file()
    )
    with _Bar(total, f"storing {name}") as progress:
        version = obj.registry.register(
            name,
            list(paths),
            metrics=_metrics(metric),
            params=_pairs(param, "--param"),
            tags=_pairs(tag, "--tag"),
            description=description,
            semver=semver,
            bump=bump,
            datasets=list(dataset),
            parents=list(parent),
            run_id=run_id,
            framework=framework,
            idempotency_key=idempotency_key,
            capture=not no_capture,
            progress=progress,
        )
    if as_json:
        _emit(version.to_dict())
    else:
        click.echo(
            f"registered {_version_line(version.to_dict())}: {len(version.files)} file(s), "
            f"{version.size:,} bytes"
        )


@cli.command()
@click.option("--filter", "filter_", metavar="EXPR", help="e.g. \"tags.team = 'risk'\".")
@_page_options
@json_option
@click.pass_obj
def models(
    obj: Ctx, filter_: str | None, limit: int, page_token: str | None, as_json: bool
) -> None:
    """List models.

    \b
    Example:
      modelreg models --filter "name LIKE 'fraud%' AND stage = 'production'"
    """
    page = obj.registry.list_models(filter_, page_size=limit, page_token=page_token)
    items = [m.to_dict() for m in page]
    if as_json:
        _emit({"items": items, "next_page_token": page.next_page_token})
        return
    from rich.table import Table

    table = Table("model", "latest", "aliases", "owner", "updated", box=None)
    for m in items:
        table.add_row(
            m["name"],
            str(m["latest_version"] or "-"),
            ", ".join(f"{a}→{v}" for a, v in m["aliases"].items()),
            m["owner"],
            m["updated_at"][:19].replace("T", " "),
        )
    console = _console()
    console.print(table if items else "no models yet: modelreg register NAME PATH")
    if page.next_page_token:
        console.print(f"more: --page-token {page.next_page_token}", style="dim")


@cli.command()
@click.argument("name")
@click.option("--filter", "filter_", metavar="EXPR", help="e.g. 'metrics.auc >= 0.9'.")
@_page_options
@json_option
@click.pass_obj
def versions(
    obj: Ctx, name: str, filter_: str | None, limit: int, page_token: str | None, as_json: bool
) -> None:
    """List the versions of NAME, newest first.

    \b
    Example:
      modelreg versions fraud --filter "metrics.accuracy >= 0.85 ORDER BY metrics.accuracy DESC"
    """
    page = obj.registry.list_versions(name, filter_, page_size=limit, page_token=page_token)
    items = [v.to_dict() for v in page]
    if as_json:
        _emit({"items": items, "next_page_token": page.next_page_token})
    else:
        _versions_table(items, page.next_page_token)


@cli.command()
@click.argument("expr", required=False)
@_page_options
@json_option
@click.pass_obj
def search(obj: Ctx, expr: str | None, limit: int, page_token: str | None, as_json: bool) -> None:
    """Search versions of all models.

    \b
    Fields: name version semver stage alias owner created_at created_by status run_id
            tags.K params.K metrics.K model.tags.K
    Operators: = != < <= > >= LIKE ILIKE IN, IS [NOT] NULL, AND OR NOT ( ), ORDER BY f [DESC]

    Example:
      modelreg search "metrics.accuracy > 0.85 AND tags.team = 'risk' ORDER BY version DESC"
    """
    page = obj.registry.search(expr, page_size=limit, page_token=page_token)
    items = [v.to_dict() for v in page]
    if as_json:
        _emit({"items": items, "next_page_token": page.next_page_token})
    else:
        _versions_table(items, page.next_page_token)


@cli.command()
@click.argument("ref")
@json_option
@click.pass_obj
def show(obj: Ctx, ref: str, as_json: bool) -> None:
    """Show a model (NAME) or a version (NAME:3, NAME@champion, NAME/production, NAME/latest).

    \b
    Example:
      modelreg show fraud@champion --json
    """
    from modelreg.names import parse_ref

    if parse_ref(ref).is_model:
        model = obj.registry.get_model(ref).to_dict()
        if as_json:
            _emit(model)
            return
        console = _console()
        console.print(f"[bold]{model['name']}[/bold]  owner {model['owner']}")
        if model["description"]:
            console.print(model["description"])
        console.print(f"latest version: {model['latest_version'] or '-'}")
        for label, key in (("stages", "stages"), ("aliases", "aliases"), ("tags", "tags")):
            if model[key]:
                console.print(f"{label}: " + ", ".join(f"{k}={v}" for k, v in model[key].items()))
        return
    version = obj.registry.get_version(ref).to_dict()
    if as_json:
        _emit(version)
    else:
        _show_version(version)


@cli.command()
@click.argument("ref")
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to write the files into.",
)
@json_option
@click.pass_obj
def download(obj: Ctx, ref: str, out: Path, as_json: bool) -> None:
    """Download a version's files into a folder, each verified against its SHA-256.

    \b
    Example:
      modelreg download fraud@champion -o ./model
    """
    version = obj.registry.get_version(ref)
    with _Bar(version.size, f"downloading {version.ref}") as progress:
        paths = obj.registry.download(version.ref, out, progress=progress)
    if as_json:
        _emit({"name": version.name, "version": version.version, "files": [str(p) for p in paths]})
    else:
        click.echo(f"{version.ref}: {len(paths)} file(s) verified and written to {out}")


@cli.group()
def alias() -> None:
    """Set, move and delete aliases (movable pointers such as champion)."""


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", type=int)
@click.option("--reason", default="", help="Why (kept in the history and audit log).")
@json_option
@click.pass_obj
def alias_set(
    obj: Ctx, name: str, alias_name: str, version: int, reason: str, as_json: bool
) -> None:
    """Point ALIAS of NAME at VERSION (creates or moves it).

    \b
    Example:
      modelreg alias set fraud champion 2 --reason "better recall"
    """
    result = obj.registry.set_alias(name, alias_name, version, reason=reason)
    if as_json:
        _emit({"name": result.name, "alias": alias_name, "version": result.version})
    else:
        click.echo(f"{result.name}@{alias_name} → {result.version}")


@alias.command("delete")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.option("--reason", default="", help="Why.")
@json_option
@click.pass_obj
def alias_delete(obj: Ctx, name: str, alias_name: str, reason: str, as_json: bool) -> None:
    """Remove ALIAS from NAME.

    \b
    Example:
      modelreg alias delete fraud challenger
    """
    number = obj.registry.delete_alias(name, alias_name, reason=reason)
    if as_json:
        _emit({"name": name, "alias": alias_name, "deleted": True, "version": number})
    else:
        click.echo(f"{name}@{alias_name} removed (pointed at {number})")


@cli.command()
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
    result = obj.registry.set_tags(ref, _pairs(pairs, "tag"), delete=list(delete))
    if as_json:
        _emit(result.to_dict())
    else:
        click.echo(f"{ref}: tags " + ", ".join(f"{k}={v}" for k, v in result.tags.items()))


@cli.command()
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
        _emit(result.to_dict())
    else:
        click.echo(f"{ref}: description updated")


@cli.command()
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
        _emit(result)
    else:
        click.echo(f"deleted {result['deleted']}")


@cli.command()
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
        _emit(diff)
        return
    from rich.table import Table

    console = _console()
    table = Table("", f"v{v1}", f"v{v2}", "Δ", box=None)
    for row in diff["metrics"]:
        delta = f"{row['delta']:+.6g}" if row["delta"] is not None else ""
        table.add_row(f"metrics.{row['key']}", _fmt(row["a"]), _fmt(row["b"]), delta)
    for section in ("params", "tags"):
        for row in diff[section]:
            mark = "≠" if row["changed"] else ""
            table.add_row(f"{section}.{row['key']}", _fmt(row["a"]), _fmt(row["b"]), mark)
    for row in diff["files"]:
        a = row["a"]["sha256"][:12] if row["a"] else "-"
        b = row["b"]["sha256"][:12] if row["b"] else "-"
        table.add_row(f"file {row['path']}", a, b, row["status"])
    console.print(table)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@cli.command()
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
        _emit(graph)
        return
    console = _console()
    console.print(f"[bold]{graph['ref']}[/bold]")

    def show(node: dict[str, Any], indent: str) -> None:
        info = node.get("lineage") or {}
        bits = [f"{k}={v}" for k, v in info.items() if v not in (None, [], "")]
        console.print(f"{indent}{node.get('ref', '')} " + " ".join(str(b) for b in bits))
        for parent in node.get("parents", []):
            show(parent, indent + "  ↑ ")

    show({"lineage": graph["lineage"], "parents": graph["parents"]}, "")
    if graph["children"]:
        console.print("derived: " + ", ".join(graph["children"]))


@cli.command()
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
        _emit({"items": entries})
        return
    console = _console()
    for e in entries:
        move = f"{e['from_version'] or '-'} → {e['to_version'] or '-'}"
        why = f"  ({e['reason']})" if e["reason"] else ""
        console.print(
            f"{e['at'][:19].replace('T', ' ')}  {e['kind']} {e['key']}: {move}  "
            f"by {e['actor']}{why}"
        )
    if not entries:
        console.print("no stage or alias changes yet")


@cli.group(invoke_without_command=True)
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
        _emit({"items": events})
        return
    console = _console()
    for e in events:
        why = f"  ({e['reason']})" if e["reason"] else ""
        console.print(
            f"{e['seq']:>6}  {e['at'][:19].replace('T', ' ')}  {e['actor']:<12} "
            f"{e['action']:<28} {e['target']}{why}"
        )
    if not events:
        console.print("no events")


@audit.command("verify")
@json_option
@click.pass_obj
def audit_verify(obj: Ctx, as_json: bool) -> None:
    """Check the audit log's hash chain; exit 1 naming the first bad event.

    \b
    Example:
      modelreg audit verify --json
    """
    result = obj.registry.verify_audit()
    if as_json:
        _emit(result)
    elif result["ok"]:
        click.echo(f"audit log intact: {result['events']} events, head {result['last_hash'][:16]}…")
    else:
        click.echo(
            f"audit log BROKEN at event {result['first_bad_seq']}: {result['problem']}", err=True
        )
    if not result["ok"]:
        raise SystemExit(1)


@cli.command()
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
        _emit(result)
    else:
        verb = "would remove" if dry_run else "removed"
        count = result["unreferenced"] if dry_run else result["removed"]
        click.echo(
            f"{verb} {count} blob(s), {result['bytes_freed']:,} bytes; "
            f"{result['temporary_removed']} abandoned upload(s)"
        )


from modelreg.cli.db import db  # noqa: E402  (the admin group lives in its own module)

cli.add_command(db)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map errors to DESIGN.md's exit codes instead of Click's defaults."""
    try:
        cli.main(args=argv, prog_name="modelreg", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        # Usage errors are invalid input too (exit 1, not Click's 2, which means "not found").
        exc.show()
        if "--json" in (argv if argv is not None else sys.argv[1:]):
            _emit({"error": {"code": "usage_error", "message": exc.format_message(), "detail": {}}})
        return 1
    except RegistryError as exc:
        # The Click context is gone by now, so read the flag from the arguments themselves.
        if "--json" in (argv if argv is not None else sys.argv[1:]):
            _emit({"error": exc.to_dict()})
        click.echo(f"error: {exc.message}", err=True)
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Commands that register, list, search, show and download versions."""

from __future__ import annotations

from pathlib import Path

import click

from modelreg.cli.output import (
    Bar,
    Ctx,
    console,
    emit,
    json_option,
    metrics,
    page_options,
    pairs,
    show_version,
    version_line,
    versions_table,
)


@click.command()
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
@click.option(
    "--env-from",
    type=click.Path(path_type=Path),
    metavar="FILE|PYTHON",
    help="Record the training environment from a requirements.txt, conda.yaml, `pip freeze` "
    "output or a venv's python (default: this CLI's own packages).",
)
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
    env_from: Path | None,
    as_json: bool,
) -> None:
    """Register a new version of NAME from files or a folder (creates the model if needed).

    The packages recorded are the CLI's own unless --env-from points at the training
    environment; registering from the training script (Python API) records them right.

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
    with Bar(total, f"storing {name}") as progress:
        version = obj.registry.register(
            name,
            list(paths),
            metrics=metrics(metric),
            params=pairs(param, "--param"),
            tags=pairs(tag, "--tag"),
            description=description,
            semver=semver,
            bump=bump,
            datasets=list(dataset),
            parents=list(parent),
            run_id=run_id,
            framework=framework,
            idempotency_key=idempotency_key,
            capture=not no_capture,
            env_from=env_from,
            progress=progress,
        )
    if as_json:
        emit(version.to_dict())
    else:
        click.echo(
            f"registered {version_line(version.to_dict())}: {len(version.files)} file(s), "
            f"{version.size:,} bytes"
        )


@click.command()
@click.option("--filter", "filter_", metavar="EXPR", help="e.g. \"tags.team = 'risk'\".")
@page_options
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
        emit({"items": items, "next_page_token": page.next_page_token})
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
    screen = console()
    screen.print(table if items else "no models yet: modelreg register NAME PATH")
    if page.next_page_token:
        screen.print(f"more: --page-token {page.next_page_token}", style="dim")


@click.command()
@click.argument("name")
@click.option("--filter", "filter_", metavar="EXPR", help="e.g. 'metrics.auc >= 0.9'.")
@page_options
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
        emit({"items": items, "next_page_token": page.next_page_token})
    else:
        versions_table(items, page.next_page_token)


@click.command()
@click.argument("expr", required=False)
@page_options
@json_option
@click.pass_obj
def search(obj: Ctx, expr: str | None, limit: int, page_token: str | None, as_json: bool) -> None:
    """Search versions of all models.

    \b
    Fields: name version semver stage alias owner created_at created_by status run_id
            tags.K params.K metrics.K model.tags.K
    Operators: = != < <= > >= LIKE ILIKE IN, IS [NOT] NULL, AND OR NOT ( ), ORDER BY f [DESC]

    \b
    Example:
      modelreg search "metrics.accuracy > 0.85 AND tags.team = 'risk' ORDER BY version DESC"
    """
    page = obj.registry.search(expr, page_size=limit, page_token=page_token)
    items = [v.to_dict() for v in page]
    if as_json:
        emit({"items": items, "next_page_token": page.next_page_token})
    else:
        versions_table(items, page.next_page_token)


@click.command()
@click.argument("ref")
@click.option(
    "--at",
    "at",
    metavar="TIME",
    help="For NAME/STAGE or NAME@ALIAS: the version that held it at this ISO time (UTC).",
)
@json_option
@click.pass_obj
def show(obj: Ctx, ref: str, at: str | None, as_json: bool) -> None:
    """Show a model (NAME) or a version (NAME:3, NAME@champion, NAME/production, NAME/latest).

    \b
    Example:
      modelreg show fraud@champion --json
      modelreg show fraud/production --at 2026-11-01T12:00Z
    """
    from modelreg.names import parse_ref

    if at is not None:
        version = obj.registry.get_version(ref, at=at).to_dict()
        if as_json:
            emit(version)
        else:
            show_version(version)
        return
    if parse_ref(ref).is_model:
        model = obj.registry.get_model(ref).to_dict()
        if as_json:
            emit(model)
            return
        screen = console()
        screen.print(f"[bold]{model['name']}[/bold]  owner {model['owner']}")
        if model["description"]:
            screen.print(model["description"])
        screen.print(f"latest version: {model['latest_version'] or '-'}")
        for label, key in (("stages", "stages"), ("aliases", "aliases"), ("tags", "tags")):
            if model[key]:
                screen.print(f"{label}: " + ", ".join(f"{k}={v}" for k, v in model[key].items()))
        return
    version = obj.registry.get_version(ref).to_dict()
    if as_json:
        emit(version)
    else:
        show_version(version)


@click.command()
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
    with Bar(version.size, f"downloading {version.ref}") as progress:
        paths = obj.registry.download(version.ref, out, progress=progress)
    if as_json:
        emit({"name": version.name, "version": version.version, "files": [str(p) for p in paths]})
    else:
        click.echo(f"{version.ref}: {len(paths)} file(s) verified and written to {out}")

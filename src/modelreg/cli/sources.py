"""``modelreg sources``: S3 buckets and prefixes an import or the MLflow door may copy from."""

from __future__ import annotations

import click

from modelreg.cli.output import Ctx, console, emit, json_option


@click.group()
def sources() -> None:
    """Allowed sources: s3:// locations the registry copies from with its own credentials.

    By default the registry never reads a location a client names. An admin may allow an S3
    bucket or prefix; then `modelreg import mlflow` and the MLflow door copy versions whose
    files are under it (hashed into the store; never a pointer to the bucket). Needs boto3
    (pip install 'modelreg[s3]') and AWS credentials on the server.

    \b
    Example:
      modelreg sources allow s3://mlflow-artifacts/staging
      modelreg sources list
    """


@sources.command("allow")
@click.argument("uri", metavar="s3://BUCKET[/PREFIX]")
@json_option
@click.pass_obj
def sources_allow(obj: Ctx, uri: str, as_json: bool) -> None:
    """Allow copying from URI and everything under it (admin; audited).

    A prefix matches on path boundaries: s3://b/models allows s3://b/models/x, never
    s3://b/models-old/x. Exit 1 for a URI that is not s3://BUCKET[/PREFIX] (no '..'),
    6 when it is allowed already.

    \b
    Example:
      modelreg sources allow s3://mlflow-artifacts/prod
    """
    row = obj.registry.allow_source(uri)
    if as_json:
        emit(row)
    else:
        click.echo(f"allowed {row['uri']}")


@sources.command("list")
@json_option
@click.pass_obj
def sources_list(obj: Ctx, as_json: bool) -> None:
    """List the allowed sources, with who allowed each and when (admin).

    \b
    Example:
      modelreg sources list --json
    """
    rows = obj.registry.allowed_sources()
    if as_json:
        emit({"items": rows})
        return
    screen = console()
    for row in rows:
        screen.print(f"{row['uri']:<50} {row['added_by']:<16} {row['added_at']}")
    if not rows:
        screen.print("no allowed sources: only this registry's own artifacts are read")


@sources.command("remove")
@click.argument("uri", metavar="s3://BUCKET[/PREFIX]")
@json_option
@click.pass_obj
def sources_remove(obj: Ctx, uri: str, as_json: bool) -> None:
    """Stop allowing URI (admin; audited); versions already copied from it stay.

    \b
    Example:
      modelreg sources remove s3://mlflow-artifacts/prod
    """
    row = obj.registry.remove_source(uri)
    if as_json:
        emit(row)
    else:
        click.echo(f"removed {row['uri']}")

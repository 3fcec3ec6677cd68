"""``modelreg import mlflow``: move an MLflow model registry into this registry."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

import click

from modelreg.cli.output import Ctx, emit, json_option
from modelreg.client._mlflow_source import SourceLimits
from modelreg.errors import AlreadyExists

DEFAULT_LIMITS = SourceLimits()
WORDS = {
    "imported": "imported",
    "planned": "would import",
    "skipped": "skipped",
    "failed": "FAILED",
}
MODEL_WORDS = {
    "created": "created",
    "planned": "would be created",
    "existing": "already here",
    "skipped": "skipped",
    "failed": "FAILED",
}


@click.group("import")
def import_group() -> None:
    """Copy models from another registry into this one.

    \b
    Example:
      modelreg import mlflow --from http://127.0.0.1:5000 --dry-run
    """


@import_group.command("mlflow")
@click.option(
    "--from",
    "source",
    required=True,
    metavar="URL",
    help="The MLflow tracking server, e.g. http://mlflow:5000. Credentials come from "
    "MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD.",
)
@click.option(
    "--models",
    "pattern",
    default="*",
    show_default=True,
    metavar="PATTERN",
    help="Only models whose name matches this glob, e.g. 'fraud*' (case-sensitive).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be imported; change nothing.")
@click.option(
    "--keep-stages",
    is_flag=True,
    help="Give each version its MLflow stage as it is, bypassing this registry's promotion "
    "policy (gates and approvals); each such stage is audited as applied by the import. "
    "Without it, versions get no stage and the summary says how to promote them.",
)
@click.option(
    "--max-time",
    "max_seconds",
    type=click.FloatRange(min=1),
    default=DEFAULT_LIMITS.max_seconds,
    show_default=True,
    metavar="SECONDS",
    help="Stop the import after this long (run it again to go on).",
)
@click.option(
    "--max-pages",
    type=click.IntRange(min=1),
    default=DEFAULT_LIMITS.max_pages,
    show_default=True,
    metavar="N",
    help="Pages one MLflow listing may have (100 models or 200 versions a page).",
)
@click.option(
    "--allow-source",
    "allow",
    multiple=True,
    metavar="s3://BUCKET[/PREFIX]",
    help="Allow the registry to copy versions whose files are under this S3 location, with "
    "its own credentials (admin; audited; the same as `modelreg sources allow`). Repeatable.",
)
@json_option
@click.pass_obj
def mlflow(
    obj: Ctx,
    source: str,
    pattern: str,
    dry_run: bool,
    keep_stages: bool,
    max_seconds: float,
    max_pages: int,
    allow: tuple[str, ...],
    as_json: bool,
) -> None:
    """Copy an MLflow server's registered models, versions and files into this registry.

    Versions keep their MLflow numbers (gaps included), description and tags; files are
    copied byte for byte; model descriptions, tags and aliases follow. Each version's lineage
    records the MLflow run id, its source URI and the version it was imported from. Run
    metrics and params are copied too.

    \b
    Stages: by default versions are imported with no stage, since a stage here is a
    promotion through this registry's policy; the summary lists MLflow's stages and the
    `modelreg promote` commands that apply them. With --keep-stages MLflow's stages are
    applied as they are (admin, bypassing the policy, audited): None, Staging, Archived map
    to none, staging, archived; MLflow allows several Production versions, modelreg keeps
    one, so the newest is production and older ones are archived (the summary says so).

    Running it again imports only what is missing: a run that was interrupted is finished by
    running it again. Nothing already in the registry is overwritten, and a version here that
    claims to be a copy counts as one only if its files (paths, sizes, SHA-256) are MLflow's;
    checking reads those files from MLflow again. Files in the MLflow server's own artifact
    store (mlflow-artifacts:/) are fetched from it; files in S3 (s3://) are copied by the
    registry itself, with its own AWS credentials, when they lie under a source an admin
    allowed (--allow-source, or `modelreg sources allow`), and fail the version otherwise;
    versions stored elsewhere (file://…) are skipped with the reason. The MLflow server is
    not trusted: no redirects are followed, a file is read only up to the size its listing
    gives, answers and listings are bounded (--max-pages), and so is the whole run
    (--max-time). Against a server, keeping numbers and stages needs an admin token.

    \b
    Example:
      modelreg import mlflow --from http://127.0.0.1:5000 --dry-run
      modelreg import mlflow --from http://127.0.0.1:5000 --models 'fraud*'
      modelreg import mlflow --from http://127.0.0.1:5000 --keep-stages
      modelreg import mlflow --from http://127.0.0.1:5000 --allow-source s3://mlflow/prod
      modelreg --registry http://modelreg:8080 import mlflow --from http://mlflow:5000 --json

    Exit codes: 0 everything imported or already here; 6 only conflicts with versions already
    here; 1 other failures (see the summary), an unreachable server, one that is not MLflow
    or one that breaks the limits.
    """
    from modelreg.client.mlflow_import import import_mlflow

    for uri in allow:
        if dry_run:
            continue
        with contextlib.suppress(AlreadyExists):
            obj.registry.allow_source(uri)
    limits = SourceLimits(max_pages=max_pages, max_seconds=max_seconds)
    with _Bar() as progress:
        summary = import_mlflow(
            obj.registry,
            source,
            models=pattern,
            dry_run=dry_run,
            keep_stages=keep_stages,
            limits=limits,
            progress=progress,
        )
    if as_json:
        emit(summary.to_dict())
    else:
        _print_summary(summary.to_dict())
    if summary.exit_code:
        raise SystemExit(summary.exit_code)


class _Bar:
    """Versions done out of all, and the bytes of the current one, on stderr (terminals only)."""

    def __init__(self) -> None:
        self.progress: Any = None
        self.overall: Any = None
        self.current: Any = None

    def __enter__(self) -> _Bar | None:
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TextColumn("{task.fields[info]}", markup=False),
            console=Console(stderr=True),
            transient=True,
        )
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def start(self, versions: int) -> None:
        self.overall = self.progress.add_task(
            "importing", total=versions, info=f"0/{versions} versions"
        )

    def begin(self, label: str, size: int) -> Callable[[int], None] | None:
        from rich.filesize import decimal

        if self.current is not None:
            self.progress.remove_task(self.current)
        task = self.progress.add_task(f"  {label}", total=max(size, 1), info="")
        self.current = task
        total = decimal(size)

        def advance(n: int) -> None:
            self.progress.advance(task, n)
            done = next(t.completed for t in self.progress.tasks if t.id == task)
            self.progress.update(task, info=f"{decimal(int(done))} / {total}")

        return advance

    def done(self, model: str, result: Any) -> None:
        if self.current is not None:
            self.progress.remove_task(self.current)
            self.current = None
        self.progress.advance(self.overall)
        task = next(t for t in self.progress.tasks if t.id == self.overall)
        self.progress.update(
            self.overall, info=f"{int(task.completed)}/{int(task.total or 0)} versions"
        )
        if result.status in ("skipped", "failed"):
            self.progress.console.print(
                f"{model}:{result.version} {WORDS[result.status]}: {result.reason}",
                highlight=False,
                markup=False,
            )


def _print_summary(summary: dict[str, Any]) -> None:
    dry = " (dry run: nothing was changed)" if summary["dry_run"] else ""
    click.echo(f"MLflow {summary['source']} → {summary['target']}{dry}")
    for model in summary["models"]:
        reason = f" ({model['reason']})" if model["reason"] else ""
        click.echo(f"{model['name']}: {MODEL_WORDS[model['status']]}{reason}")
        present = [str(v["version"]) for v in model["versions"] if v["status"] == "present"]
        if present:
            # One line however many: a re-run of a big import stays readable.
            click.echo(f"  already here: {', '.join(present)}")
        for v in model["versions"]:
            if v["status"] == "present":
                continue
            if v["status"] in ("skipped", "failed"):
                detail = v["reason"]
            else:
                detail = f"{v['stage']:<10}  {v['files']} file(s), {v['bytes']:,} bytes"
                if v["mlflow_stage"] != v["stage"]:
                    detail += f"  (MLflow: {v['mlflow_stage']}, not applied)"
            click.echo(f"  {v['version']:>4}  {WORDS[v['status']]:<12}  {detail}")
            for note in v["notes"]:
                click.echo(f"        note: {note}")
        for a in model["aliases"]:
            reason = f": {a['reason']}" if a["reason"] else ""
            click.echo(f"  @{a['alias']} → {a['version']}  {a['status']}{reason}")
        for note in model["notes"]:
            click.echo(f"  note: {note}")
    t = summary["totals"]
    moved = t["versions_planned"] if summary["dry_run"] else t["versions_imported"]
    verb = "to import" if summary["dry_run"] else "imported"
    click.echo(
        f"\n{t['models']} model(s) ({t['models_skipped']} skipped, {t['models_failed']} failed); "
        f"versions: {moved} {verb}, {t['versions_present']} already here, "
        f"{t['versions_skipped']} skipped, {t['versions_failed']} failed; "
        f"{t['files']} file(s), {t['bytes']:,} bytes; aliases: {t['aliases_set']} "
        f"{'to set' if summary['dry_run'] else 'set'}, {t['aliases_present']} already here, "
        f"{t['aliases_not_set']} not set"
    )

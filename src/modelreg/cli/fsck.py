"""``modelreg fsck``: are the stored bytes all there and right, and does the database agree."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from modelreg.cli.output import Ctx, emit, json_option
from modelreg.errors import InvalidInput


@click.command()
@click.option("--model", metavar="GLOB", help="Only versions of models matching GLOB (fraud-*).")
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=min(8, os.cpu_count() or 1),
    show_default="CPUs, at most 8",
    help="Blobs hashed at once.",
)
@click.option(
    "--repair",
    is_flag=True,
    help="Restore damaged blobs from --from, else set their copies aside as damaged.",
)
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A replica or backup: a registry folder or a blob store folder.",
)
@json_option
@click.pass_obj
def fsck(
    obj: Ctx, model: str | None, jobs: int, repair: bool, source: Path | None, as_json: bool
) -> None:
    """Check that every file of every version is stored and hashes to its digest.

    Also checks the audit chain and the database's invariants (one production version per
    model, version counters at or above every number used). Exit 1, naming each damaged
    version, when anything is wrong. Runs on the registry's folder (or its --db and
    --artifacts settings), not through a server: it reads the store directly.

    \b
    Example:
      modelreg fsck
      modelreg fsck --model 'fraud*' --json
      modelreg fsck --repair

    With --repair --from DIR (a backup or replica registry folder), damaged blobs are
    restored from DIR's copies when those hash right; the rest are set aside as damaged
    (downloads refuse them; uploading the right bytes again repairs them). Nothing is deleted.
    """
    if source is not None and not repair:
        raise InvalidInput("--from is a source for --repair: give both", detail={})
    from modelreg.local import LocalBackend
    from modelreg.services.usecases.fsck import fsck as run

    backend = obj.registry.backend
    if not isinstance(backend, LocalBackend):
        raise InvalidInput(
            f"fsck reads the blob store directly: run it where the registry's files are, "
            f"with --registry FOLDER (the server's MODELREG_HOME), not {obj.registry.uri}",
            detail={"registry": obj.registry.uri},
        )
    with _bar(enabled=not as_json) as bar:
        report = run(
            backend,
            backend.actor,
            model=model,
            jobs=jobs,
            repair=repair,
            source=source,
            progress=bar,
        )
    if as_json:
        emit(report)
    else:
        _print(report)
    if not report["ok"]:
        raise SystemExit(1)


def _print(report: dict[str, Any]) -> None:
    for item in report["damaged"]:
        what = f"{item['model']}:{item['version']} {item['path']} sha256:{item['sha256']}"
        repair = f" ({item['repair']})" if item["repair"] else ""
        click.echo(f"damaged {what}: {item['problem']}{repair}")
    for problem in report["invariants"]:
        click.echo(f"invariant broken: {problem}")
    chain = report["audit"]
    if not chain["ok"]:
        click.echo(f"audit chain broken at event {chain['first_bad_seq']}: {chain['problem']}")
    verdict = "ok" if report["ok"] else "PROBLEMS FOUND"
    click.echo(
        f"{verdict}: {report['blobs_checked']} blob(s), {report['bytes_checked']:,} bytes "
        f"checked; audit chain of {chain['events']} event(s) "
        f"{'verifies' if chain['ok'] else 'broken'}"
    )


@contextlib.contextmanager
def _bar(*, enabled: bool) -> Iterator[Any]:
    """A Rich progress bar on stderr, on a terminal only.

    Called with the total, it answers the per-chunk callback the hashing threads call.
    """
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    progress = Progress(
        "checking",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )

    def start(total: int) -> Any:
        task = progress.add_task("checking", total=max(total, 1))
        return lambda n: progress.advance(task, n)

    with progress:
        yield start

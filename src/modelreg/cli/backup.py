"""``modelreg backup`` and ``modelreg restore``: consistent snapshots of a live registry."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from modelreg.cli.output import Ctx, emit, json_option
from modelreg.errors import InvalidInput


def _local(registry: Any, verb: str) -> Any:
    from modelreg.local import LocalBackend

    backend = registry.backend
    if not isinstance(backend, LocalBackend):
        raise InvalidInput(
            f"{verb} reads the database and the blob store directly: run it where the "
            f"registry's files are, with --registry FOLDER (the server's MODELREG_HOME), "
            f"not {registry.uri}",
            detail={"registry": registry.uri},
        )
    return backend


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@json_option
@click.pass_obj
def backup(obj: Ctx, folder: Path, as_json: bool) -> None:
    """Back up the registry into FOLDER while it keeps serving.

    The database is snapshotted first (SQLite's online backup; PostgreSQL read in one
    REPEATABLE READ transaction), then every blob it names is copied, verified, and a
    manifest written. Run it again on the same FOLDER: only new blobs are copied. Exit 1 when
    a blob could not be copied (named in the output).

    \b
    Example:
      modelreg backup nightly-backup
      modelreg backup nightly-backup --json
    """
    from modelreg.services.usecases.backup import backup as run

    backend = _local(obj.registry, "backup")
    from modelreg.config import SECRET_KEY_FILE

    report = run(
        backend,
        backend.engine,
        backend.actor,
        folder.absolute(),
        source=obj.registry.uri,
        secret_key=backend.settings.home / SECRET_KEY_FILE,
    )
    if as_json:
        emit(report)
    else:
        for problem in report["problems"]:
            click.echo(f"not backed up: sha256:{problem['sha256']}: {problem['problem']}")
        click.echo(
            f"{'ok' if report['ok'] else 'INCOMPLETE'}: {report['models']} model(s), "
            f"{report['versions']} version(s), {report['audit_events']} audit event(s); "
            f"{report['blobs']} blob(s), {report['blobs_copied']} copied "
            f"({report['bytes_copied']:,} bytes), {report['blobs_already_there']} already there"
        )
    if not report["ok"]:
        raise SystemExit(1)


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--to",
    "target",
    metavar="REGISTRY",
    help="The registry folder to restore into (default: --registry).",
)
@click.option("--force", is_flag=True, help="Replace a registry that already holds models.")
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=min(8, os.cpu_count() or 1),
    show_default="CPUs, at most 8",
    help="Blobs hashed at once.",
)
@json_option
@click.pass_obj
def restore(
    obj: Ctx, folder: Path, target: str | None, force: bool, jobs: int, as_json: bool
) -> None:
    """Restore the backup in FOLDER into a registry (stop its servers first).

    The backup is checked first as fsck would (its snapshot's digest, the audit chain, every
    blob hashed); a damaged backup changes nothing. A registry that holds models is refused
    unless --force. The restored registry is checked with fsck before success is reported.

    \b
    Example:
      modelreg backup backup-folder
      modelreg restore backup-folder --to restored-registry
      modelreg --registry restored-registry fsck
    """
    from modelreg import Registry
    from modelreg.location import is_remote
    from modelreg.services.usecases.backup import restore as run

    if target is None:
        registry = obj.registry
    else:  # a new folder is the usual target: a bare name means a folder here
        registry = Registry(target if is_remote(target) else Path(target).absolute())
    try:
        backend = _local(registry, "restore")
        url = backend.settings.db_url
        report = run(
            backend,
            backend.actor,
            folder.absolute(),
            target_url=url,
            home=backend.settings.home,
            where=registry.uri,
            release=backend.close,
            force=force,
            jobs=jobs,
        )
    finally:
        if target is not None:
            registry.close()
    if as_json:
        emit(report)
        return
    click.echo(
        f"restored {report['models']} model(s), {report['versions']} version(s), "
        f"{report['audit_events']} audit event(s) and {report['blobs']} blob(s) "
        f"({report['blobs_stored']} stored) from the backup of {report['created_at']} into "
        f"{report['target']}; fsck clean, audit chain verifies"
    )

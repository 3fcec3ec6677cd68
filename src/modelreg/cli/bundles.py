"""``modelreg export`` and ``modelreg import bundle``: move versions between registries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from modelreg.cli.output import Ctx, emit, json_option


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bundle file to write (a tar).",
)
@json_option
@click.pass_obj
def export(obj: Ctx, refs: tuple[str, ...], output: Path, as_json: bool) -> None:
    """Write versions, with their files and records, into one bundle file.

    Each version's files (verified on the way), metrics, params, tags, lineage, environment,
    flavor, signature, scan result and signatures go into FILE, with a manifest of every
    file's SHA-256 and the manifest's own digest. `modelreg import bundle FILE` on another
    registry (an air-gapped site, production) reads it back.

    \b
    Example:
      modelreg export fraud:1 churn:1 -o models.tar
      modelreg export fraud:1 -o fraud-1.tar --json
    """
    manifest = obj.registry.export(list(refs), output)
    listed = [{"ref": e["ref"], "files": len(e["version"]["files"])} for e in manifest["versions"]]
    if as_json:
        emit({"bundle": str(output), "source": manifest["source"], "versions": listed})
        return
    for item in listed:
        click.echo(f"exported {item['ref']}: {item['files']} file(s)")
    click.echo(f"wrote {output} ({output.stat().st_size:,} bytes)")


@click.command("bundle")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--max-size",
    type=click.IntRange(min=1),
    default=None,
    metavar="BYTES",
    help="Refuse bundles holding more bytes than this (default 100 GiB).",
)
@json_option
@click.pass_obj
def import_bundle(obj: Ctx, bundle: Path, max_size: int | None, as_json: bool) -> None:
    """Import the versions of a bundle written by `modelreg export` (admin).

    The whole bundle is checked before anything is registered: every file's SHA-256 and size,
    the manifest's digest, and no links, no paths leaving it, nothing truncated or oversize.
    Each version records where it came from (lineage.imported_from); importing the same
    bundle again changes nothing. A version keeps its number when the model here has not
    used it; otherwise it takes the next one, keeps the original in the tag
    modelreg.imported_version, and the mapping is printed.

    \b
    Example:
      modelreg export fraud:1 -o fraud-1.tar
      modelreg import bundle fraud-1.tar
      modelreg import bundle fraud-1.tar --json

    Exit codes: 0 imported or already here; 6 only conflicts; 1 other failures, or a bundle
    refused (nothing imported).
    """
    summary = obj.registry.import_bundle(bundle, max_bytes=max_size)
    data = summary.to_dict()
    if as_json:
        emit(data)
    else:
        _print(data)
    if summary.exit_code:
        raise SystemExit(summary.exit_code)


def _print(summary: dict[str, Any]) -> None:
    click.echo(f"bundle from {summary['source']} → {summary['target']}")
    for model in summary["models"]:
        for v in model["versions"]:
            here = v.get("number_here")
            ref = f"{model['name']}:{v['version']}"
            if v["status"] in ("imported", "present"):
                mapped = f" → {model['name']}:{here}" if here != v["version"] else ""
                word = "imported" if v["status"] == "imported" else "already here"
                click.echo(f"{ref}{mapped} {word}")
            else:
                click.echo(f"{ref} FAILED: {v['reason']}")
            for note in v["notes"]:
                click.echo(f"  {note}")
    totals = summary["totals"]
    click.echo(
        f"{totals['versions_imported']} imported, {totals['versions_present']} already here, "
        f"{totals['versions_failed']} failed"
    )

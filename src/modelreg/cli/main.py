"""The ``modelreg`` command: every command calls ``modelreg.Registry``; errors map to exit codes."""

from __future__ import annotations

import sys

import click

from modelreg import __version__
from modelreg.cli import (
    admin,
    deployments,
    events,
    hints,
    imports,
    insight,
    labels,
    lifecycle,
    signing,
    versions,
    webhooks,
)
from modelreg.cli.backup import backup, restore
from modelreg.cli.bundles import export, import_bundle
from modelreg.cli.db import db
from modelreg.cli.deliver import deliver
from modelreg.cli.fsck import fsck
from modelreg.cli.output import Ctx, emit
from modelreg.cli.scan import scan
from modelreg.cli.serve import serve
from modelreg.cli.server import server
from modelreg.cli.sources import sources
from modelreg.errors import PolicyViolation, RegistryError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--registry",
    envvar="MODELREG_URI",
    metavar="PATH|URL",
    help=(
        "Registry folder or server URL (http://HOST:PORT); default: MODELREG_HOME or your user "
        "data folder. A new folder is created only when written as a path (./reg). "
        "Env: MODELREG_URI."
    ),
)
@click.version_option(__version__, prog_name="modelreg")
@click.pass_context
def cli(ctx: click.Context, registry: str | None) -> None:
    """modelreg: register, find, compare, promote and download model versions.

    \b
    Example:
      modelreg register fraud model.pkl --metric accuracy=0.91 --tag team=risk
      modelreg alias set fraud champion 1
      modelreg promote fraud 1 --to production --reason "first release"
      modelreg show fraud@champion --json

    References: NAME:VERSION, NAME@ALIAS, NAME/STAGE, NAME/latest or models:/… URIs.
    Exit codes: 0 ok, 1 invalid input, 2 not found, 3 refused by policy, 4 awaiting approval,
    5 permission denied, 6 conflict, 7 registry unreachable.
    """
    if isinstance(ctx.obj, Ctx):
        ctx.obj.registry_uri = registry
    else:  # pragma: no cover - only when the group is invoked without main()
        ctx.obj = Ctx(registry)


for command in (
    versions.register,
    versions.models,
    versions.versions,
    versions.search,
    versions.show,
    versions.download,
    labels.alias,
    labels.tag,
    labels.describe,
    labels.delete,
    lifecycle.promote,
    lifecycle.approve,
    lifecycle.reject,
    lifecycle.promotions,
    lifecycle.rollback,
    lifecycle.policy,
    insight.compare,
    insight.lineage,
    insight.history,
    insight.audit,
    events.events,
    insight.gc,
    fsck,
    scan,
    backup,
    restore,
    export,
    admin.users,
    admin.tokens,
    admin.grant,
    admin.revoke,
    webhooks.webhooks,
    signing.sign,
    signing.verify,
    signing.keys,
    sources,
    deployments.deployments,
    imports.import_group,
    db,
    server,
    serve,
    deliver,
):
    cli.add_command(command)
imports.import_group.add_command(import_bundle)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map errors to DESIGN.md's exit codes instead of Click's defaults."""
    state = Ctx(None)
    try:
        cli.main(args=argv, prog_name="modelreg", standalone_mode=False, obj=state)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        # Usage errors are invalid input too (exit 1, not Click's 2, which means "not found").
        exc.show()
        if "--json" in (argv if argv is not None else sys.argv[1:]):
            emit({"error": {"code": "usage_error", "message": exc.format_message(), "detail": {}}})
        return 1
    except RegistryError as exc:
        hints.explain(exc, state.existing())
        # The Click context is gone by now, so read the flag from the arguments themselves.
        if "--json" in (argv if argv is not None else sys.argv[1:]):
            emit({"error": exc.to_dict()})
        if isinstance(exc, PolicyViolation) and exc.failed_criteria:
            # One line per failed gate, with the value it saw: what a CI log reader needs.
            request = (exc.detail.get("promotion") or {}).get("id")
            stored = f" (request #{request})" if request else ""
            click.echo(f"error: refused by policy{stored}:", err=True)
            lifecycle.print_criteria(exc.failed_criteria, err=True)
        else:
            click.echo(f"error: {exc.message}", err=True)
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    finally:
        state.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

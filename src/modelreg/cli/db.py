"""``modelreg db``: create, inspect and upgrade the metadata database schema."""

from __future__ import annotations

import json

import click


def _settings(ctx: click.Context):  # type: ignore[no-untyped-def]
    from modelreg.config import Settings
    from modelreg.errors import InvalidInput
    from modelreg.location import is_remote, resolve_uri

    uri = resolve_uri(ctx.find_root().params.get("registry"))
    if is_remote(uri):
        raise InvalidInput("`modelreg db` works on a registry folder, not a server URL", detail={})
    return Settings.for_home(uri)


@click.group()
def db() -> None:
    """Create, inspect and upgrade the registry's database schema."""


@db.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Migrate the database to this modelreg's schema (back it up first).

    \b
    Example:
      modelreg db upgrade
    """
    from modelreg.db.schema import SCHEMA_REVISION, current_revision
    from modelreg.db.schema import upgrade as run_upgrade
    from modelreg.db.session import make_engine

    settings = _settings(ctx)
    if not settings.db:
        settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    try:
        before = current_revision(engine)
        run_upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"schema already at {SCHEMA_REVISION}")
    else:
        click.echo(f"schema upgraded: {before or 'empty'} → {after}")


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.pass_context
def current(ctx: click.Context, as_json: bool) -> None:
    """Print the database's schema revision and the one this modelreg expects.

    \b
    Example:
      modelreg db current --json
    """
    from modelreg.db.schema import SCHEMA_REVISION, current_revision
    from modelreg.db.session import make_engine

    settings = _settings(ctx)
    engine = make_engine(settings.db_url)
    try:
        revision = current_revision(engine) if (settings.db or settings.home.exists()) else None
    finally:
        engine.dispose()
    data = {
        "current": revision,
        "expected": SCHEMA_REVISION,
        "up_to_date": revision == SCHEMA_REVISION,
    }
    if as_json:
        click.echo(json.dumps(data))
    else:
        click.echo(f"database: {revision or 'no schema'}; modelreg expects {SCHEMA_REVISION}")

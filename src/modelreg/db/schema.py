"""Creating and upgrading the schema: only on first use of an empty database or on request.

An existing database is never upgraded silently (STYLE.md §12): opening an old one raises
``SchemaOutdated`` naming the command to run.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from modelreg.errors import SchemaOutdated

# The revision this code expects; a test pins it to Alembic's head.
SCHEMA_REVISION = "0014"
_MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(connection: Connection | None = None, url: str | None = None):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def current_revision(engine: Engine) -> str | None:
    """The database's Alembic revision, or ``None`` when it has no modelreg schema."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (``modelreg db upgrade``)."""
    from alembic import command

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two servers starting on one empty database must not both create it.
            conn.execute(text("SELECT pg_advisory_xact_lock(726172)"))
        command.upgrade(_alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database down to ``revision`` (for tests and emergencies)."""
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), revision)


def ensure_schema(engine: Engine, *, create: bool = True) -> None:
    """Check the schema is current; create it when the database is empty and ``create``.

    Raises:
        SchemaOutdated: the database is older or newer than this modelreg.
    """
    revision = current_revision(engine)
    if revision == SCHEMA_REVISION:
        return
    if revision is None:
        with engine.connect() as conn:
            foreign = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
        if foreign:
            raise SchemaOutdated(
                "this database holds tables but no modelreg schema; point modelreg at an "
                "empty database",
                detail={"tables": sorted(foreign)[:10]},
            )
        if create:
            upgrade(engine)
            return
        raise SchemaOutdated(
            "this database has no modelreg schema yet; run `modelreg db upgrade`",
            detail={"current": None, "expected": SCHEMA_REVISION},
        )
    if revision > SCHEMA_REVISION:
        raise SchemaOutdated(
            f"the database schema ({revision}) is newer than this modelreg expects "
            f"({SCHEMA_REVISION}); upgrade modelreg",
            detail={"current": revision, "expected": SCHEMA_REVISION},
        )
    raise SchemaOutdated(
        f"the database schema ({revision}) is older than this modelreg ({SCHEMA_REVISION}); "
        "back it up, then run `modelreg db upgrade`",
        detail={"current": revision, "expected": SCHEMA_REVISION},
    )

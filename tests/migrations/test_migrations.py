"""Migrations: the head matches the code, models match the schema, and the chain round-trips."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from modelreg.db import schema
from modelreg.db.session import make_engine


def test_schema_revision_is_alembic_head():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(schema._alembic_config())
    assert script.get_current_head() == schema.SCHEMA_REVISION


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def test_models_match_migrations(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from modelreg.db.base import Base

    schema.ensure_schema(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_and_upgrade_round_trip(engine):
    schema.ensure_schema(engine)
    schema.downgrade(engine, "base")
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.SCHEMA_REVISION


def test_foreign_tables_are_refused(tmp_path):
    from sqlalchemy import text

    from modelreg.errors import SchemaOutdated

    eng = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE something_else (id INTEGER)"))
    with pytest.raises(SchemaOutdated, match="empty database"):
        schema.ensure_schema(eng)
    eng.dispose()


def test_upgrade_keeps_data_and_is_never_silent(tmp_path):
    """An old registry refuses to open until `modelreg db upgrade`, which keeps its rows."""
    import modelreg
    from modelreg import errors
    from modelreg.cli.main import main

    home = tmp_path / "reg"
    reg = modelreg.Registry(home)
    (tmp_path / "m.bin").write_bytes(b"weights")
    reg.register("m", tmp_path / "m.bin", capture=False)
    reg.close()
    engine = make_engine(f"sqlite:///{home / 'registry.db'}")
    schema.downgrade(engine, "0001")
    assert schema.current_revision(engine) == "0001"
    with pytest.raises(errors.SchemaOutdated, match="db upgrade"):
        modelreg.Registry(home).get_version("m:1")
    assert main(["--registry", str(home), "db", "upgrade"]) == 0
    assert schema.current_revision(engine) == schema.SCHEMA_REVISION
    engine.dispose()
    reopened = modelreg.Registry(home)
    assert reopened.get_version("m:1").files[0].size == 7
    assert reopened.verify_audit()["ok"]
    reopened.close()

"""Fixtures: a real PostgreSQL server for the session, and registries on both databases."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import modelreg
from mlflow_env import require_mlflow_python
from pg import PostgresServer, find_pg_bin
from registry_folders import DATABASES, LiveServer, fresh_pg_database
from s3_endpoint import MotoServer
from server_process import use_test_deadlines

use_test_deadlines()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the ``reg`` fixture's remote backend on SQLite only, unless a test asks for more.

    ``reg`` x ``db_url`` is four registries per test. Embedded on both databases covers the
    dialects; remote on SQLite covers HTTP. Remote on PostgreSQL adds what only the two together
    can do wrong: a database error of one dialect crossing the HTTP door (hostile input is the
    place for that, and is marked ``full_matrix``).
    """
    kept, dropped = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        params = params.params if params is not None else {}
        remote_pg = params.get("reg") == "remote" and params.get("db_url") == "postgresql"
        if remote_pg and _uses_shared_reg(item) and not item.get_closest_marker("full_matrix"):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _uses_shared_reg(item: pytest.Item) -> bool:
    """Whether the test's ``reg`` is this file's fixture (a module may define its own)."""
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.get("reg", ()) if info is not None else ()
    return bool(definitions) and definitions[-1].func.__module__ == __name__


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A real PostgreSQL started for this test session (CI must have it; elsewhere skip)."""
    if os.environ.get("MODELREG_TEST_NO_PG"):
        pytest.skip("MODELREG_TEST_NO_PG is set")
    if find_pg_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries are missing; .ci/run must install them")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgresServer()
    server.start()
    try:
        # Build the schema once; every test then clones it, which is fast and isolated.
        template_url = server.create_database("modelreg_template")
        from modelreg.db.schema import upgrade
        from modelreg.db.session import make_engine

        engine = make_engine(template_url)
        upgrade(engine)
        engine.dispose()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite registry database, made once per test process to be copied.

    Migrating a database costs more than most tests (every revision since 0001); PostgreSQL
    tests clone a migrated template database for the same reason (``pg_server``).
    """
    from service_db import migrated_template

    return migrated_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture
def sqlite_db_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh SQLite registry database (a copy of the template); ``db_url`` on SQLite only."""
    path = tmp_path / "registry.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh registry database with the current schema and no data, on SQLite and PostgreSQL.

    Both are copies of a migrated template, so a test pays for a copy, not a migration. A test
    of creating the schema on first use starts from an empty database instead (``sqlite_reg``,
    tests/migrations, the cold start in tests/services/test_processes.py).
    """
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_db_url"))
    server: PostgresServer = request.getfixturevalue("pg_server")
    return fresh_pg_database(server)


@pytest.fixture
def home(tmp_path: Path, db_url: str) -> Path:
    """A registry folder whose modelreg.toml points at ``db_url``."""
    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / "modelreg.toml").write_text(f'db = "{db_url}"\n')
    return folder


@pytest.fixture
def live_server(home: Path) -> Iterator[LiveServer]:
    """A real HTTP server on loopback serving ``home``."""
    with LiveServer(home) as server:
        yield server


@pytest.fixture(params=["embedded", "remote"])
def reg(request: pytest.FixtureRequest, home: Path) -> Iterator[modelreg.Registry]:
    """A ``Registry`` on a fresh database (both dialects), embedded and through a live server.

    One client suite, two backends: the same calls must give the same objects and errors.
    Remote runs on SQLite only unless the test is marked ``full_matrix`` (see
    ``pytest_collection_modifyitems``).
    """
    if request.param == "embedded":
        registry = modelreg.Registry(home)
        yield registry
        registry.close()
        return
    server: LiveServer = request.getfixturevalue("live_server")
    registry = modelreg.Registry(server.url)
    yield registry
    registry.close()


@pytest.fixture
def sqlite_reg(tmp_path: Path) -> Iterator[modelreg.Registry]:
    """An embedded registry exactly as a user gets it: a folder, SQLite, nothing configured."""
    registry = modelreg.Registry(tmp_path / "embedded")
    yield registry
    registry.close()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A folder of small model files: model.pkl, and model_dir/ with a nested tree."""
    root = tmp_path / "inputs"
    (root / "model_dir" / "sub").mkdir(parents=True)
    (root / "model.pkl").write_bytes(b"pickle-bytes" * 100)
    (root / "model_dir" / "weights.bin").write_bytes(b"\x00\x01" * 500)
    (root / "model_dir" / "sub" / "config.json").write_text('{"layers": 3}')
    return root


@pytest.fixture(scope="session")
def mlflow_python() -> Path:
    """The python of the venv with the real MLflow client and server (tests/mlflow_env.py).

    Made on first use when missing (.ci/run makes it before the tests).
    """
    return require_mlflow_python()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3 server, a real process on loopback, for the session (tests/s3_endpoint.py)."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_artifacts(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://BUCKET/PREFIX`` of a fresh bucket, with boto3 pointed at moto by AWS_* only."""
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    return f"s3://{moto_server.new_bucket()}/registry"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test ever touches the real user's registry or inherits a registry from the shell."""
    for var in ("MODELREG_URI", "MODELREG_DB", "MODELREG_ARTIFACTS", "MODELREG_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MODELREG_HOME", str(tmp_path / "default-home"))
    # Nor the user's digest cache (~/.cache/modelreg): each test gets its own.
    monkeypatch.setenv("MODELREG_DIGEST_CACHE", str(tmp_path / "digest-cache.sqlite"))
    # Nor the user's model cache (files of loaded versions): each test gets its own.
    monkeypatch.setenv("MODELREG_MODEL_CACHE", str(tmp_path / "model-cache"))

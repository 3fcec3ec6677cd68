"""Registry folders and servers the tests share, importable from any test module.

Test modules import these from here, never from ``conftest``: with a ``conftest.py`` in a
sub-folder too (tests/ui), ``import conftest`` finds whichever was imported last.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from pg import PostgresServer
from server_process import ThreadedServer

DATABASES = ["sqlite", "postgresql"]


def fresh_pg_database(server: PostgresServer) -> str:
    """A new database cloned from the migrated template."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    base = server.url_base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE modelreg_template')
    return f"{server.url_base}/{name}"


def module_registry_folder(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, label: str
) -> Path:
    """A registry folder on the database ``request.param`` names, for module-scoped fixtures."""
    home = tmp_path_factory.mktemp(f"{label}-{request.param}")
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), home / "registry.db")
        url = f"sqlite:///{home / 'registry.db'}"
    else:
        url = fresh_pg_database(request.getfixturevalue("pg_server"))
    (home / "modelreg.toml").write_text(f'db = "{url}"\n')
    return home


class LiveServer(ThreadedServer):
    """A real uvicorn server for a registry folder, on a free loopback port, in a thread."""

    def __init__(self, home: Path) -> None:
        from modelreg.api.app import create_app
        from modelreg.config import Settings

        super().__init__(create_app(Settings.for_home(home)))

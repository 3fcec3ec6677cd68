"""Fixtures for the scoring server: a registry server, and ``modelreg serve``'s app on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from serving_fakes import write_model

import modelreg
from registry_folders import LiveServer


@pytest.fixture
def registry_url(tmp_path: Path, sqlite_db_url: str) -> Iterator[str]:
    """A registry server (SQLite) on loopback; serve follows it over HTTP like in production."""
    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / "modelreg.toml").write_text(f'db = "{sqlite_db_url}"\n')
    with LiveServer(folder) as server:
        yield server.url


@pytest.fixture
def reg(registry_url: str) -> Iterator[modelreg.Registry]:
    """A client of that registry (the one promoting, in the tests)."""
    with modelreg.Registry(registry_url) as registry:
        yield registry


@pytest.fixture
def add_version(reg: modelreg.Registry, tmp_path: Path) -> Callable[..., int]:
    """Register a ``serving_fakes`` model (``x * factor``); returns its version number."""
    count = [0]

    def add(name: str = "churn", factor: float = 1.0, broken: str = "") -> int:
        count[0] += 1
        path = write_model(tmp_path / f"model-{count[0]}", factor, broken)
        return reg.register(name, path, capture=False).version

    return add

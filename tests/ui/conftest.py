"""Fixtures for the web UI's tests: a seeded registry, its app in process, signed-in clients.

Pages are tested in process (``httpx.ASGITransport``) on SQLite: the services under them are
tested on both databases already. ``tests/ui/test_ui_browser.py`` drives a real Chromium.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from ui_support import World, client_for, sign_in

import modelreg
from modelreg.api.app import create_app
from modelreg.config import Settings


@pytest.fixture
def laptop_app(tmp_path: Path, files: Path) -> Iterator[FastAPI]:
    """A registry without users (laptop mode) holding ``fraud`` v1–v3, and its app."""
    home = tmp_path / "laptop"
    home.mkdir()
    local = modelreg.Registry(home)
    for n, acc in enumerate((0.81, 0.86, 0.9), start=1):
        local.register(
            "fraud",
            files / "model.pkl",
            metrics={"acc": acc, "loss": 1 - acc},
            params={"lr": 0.1 * n},
            capture=False,
        )
    local.close()
    app = create_app(Settings.for_home(home))
    yield app
    app.state.registry.engine.dispose()


@pytest.fixture
async def laptop(laptop_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser on the laptop: no sign-in needed."""
    async with client_for(laptop_app) as http:
        yield http


@pytest.fixture
def world(tmp_path: Path, files: Path) -> Iterator[World]:
    """Users root (admin), ann (contributor), appr (approver), vic (viewer); model ``fraud``
    with 3 versions whose production rule needs ``metrics.acc >= 0.8`` and one approval."""
    home = tmp_path / "world"
    home.mkdir()
    local = modelreg.Registry(home)
    for n, acc in enumerate((0.7, 0.85, 0.9), start=1):
        local.register(
            "fraud",
            files / "model.pkl",
            metrics={"acc": acc, "loss": 1 - acc},
            params={"lr": 0.1 * n},
            capture=False,
        )
    local.set_policy_rule("fraud", "production", requires=["metrics.acc >= 0.8"], approvals=1)
    roles = {"root": "admin", "ann": "contributor", "appr": "approver", "vic": "viewer"}
    for name, role in roles.items():
        local.create_user(name, role=role)
    tokens = {name: local.create_token(name)["token"] for name in roles}
    local.close()
    app = create_app(Settings.for_home(home))
    yield World(home=home, app=app, tokens=tokens)
    app.state.registry.engine.dispose()


@pytest.fixture
def as_user(world: World) -> Callable[[str], Any]:
    """``async with as_user("ann") as http``: a browser signed in as a user of ``world``."""

    @contextlib.asynccontextmanager
    async def signed_in(name: str) -> AsyncIterator[httpx.AsyncClient]:
        async with client_for(world.app) as http:
            answer = await sign_in(http, world.tokens[name])
            assert answer.status_code == 303, answer.text
            yield http

    return signed_in

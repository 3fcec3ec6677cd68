"""Issue 18, finding 10: a model the caller may not read answers exactly like a missing one.

A per-model principal used to get 403 for a model that exists and 404 for one that does not,
on ``/api/v1`` and on MLflow's ``registered-models/get``: a way to list another team's names.
``models.get_model(…, actor=…)`` now answers both alike, once, for every door. The test is a
class test: every GET route of both doors (enumerated from the app, as the authorization
tests do) and every write route that names a model in its path is asked about an existing
but unreadable model and about an absent one, and the two answers must be the same status,
the same error code and the same message up to the name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg
from modelreg.api.app import create_app, iter_routes
from modelreg.config import Settings

pytestmark = pytest.mark.anyio
HIDDEN, ABSENT = "secret", "absent"  # same length: answers are compared up to the name
API = "/api/v1"
MLF = "/api/2.0/mlflow"
# name -> (role, model the role is limited to)
PEOPLE: dict[str, tuple[str, str | None]] = {
    "pv": ("viewer", "alpha"),
    "carol": ("contributor", "alpha"),
    "boss": ("admin", "alpha"),
}
WIDE = "vic"  # a registry-wide viewer, who may read every model


@dataclass
class World:
    clients: dict[str, httpx.AsyncClient]
    app: Any


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Models alpha and secret (each v1, alias champion, in staging); PEOPLE see only alpha."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "model.bin").write_bytes(b"weights")
    tokens = {}
    with modelreg.Registry(home) as local:
        for name in ("alpha", HIDDEN):
            local.register(name, tmp_path / "model.bin", capture=False)
            local.set_alias(name, "champion", 1)
            local.promote(name, 1, "staging")
        for person, (role, model) in {**PEOPLE, WIDE: ("viewer", None)}.items():
            local.create_user(person, role=role, model=model)
            tokens[person] = local.create_token(person)["token"]
    app = create_app(Settings.for_home(home))
    transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 5000))
    clients = {
        person: httpx.AsyncClient(
            transport=transport,
            base_url="http://127.0.0.1",
            headers={"authorization": f"Bearer {token}"},
        )
        for person, token in tokens.items()
    }
    yield World(clients, app)
    for client in clients.values():
        await client.aclose()
    app.state.registry.engine.dispose()


def _filled(path: str, name: str) -> str:
    """``path`` with its parameters filled in, naming model ``name``."""
    file = f"_registry/{name}/1/model.bin" if "mlflow-artifacts" in path else "model.bin"
    for key, value in {
        "{name:model}": name,
        "{version}": "1",
        "{path:path}": file,
        "{target}": "staging",
        "{alias}": "champion",
    }.items():
        path = path.replace(key, value)
    return path


def _requests(app: Any, name: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``(method, path, params)`` for every GET route, and every write naming a model."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    for route in iter_routes(app):
        methods = route.methods or set()
        queries = {p.name for p in route.dependant.query_params}
        if "GET" in methods:
            params: dict[str, Any] = {}
            if route.path.startswith("/api/2.0/mlflow"):
                # MLflow's reads take the name as a parameter; routes that ignore it answer
                # both requests the same anyway.
                params = {"name": name, "version": "1", "alias": "champion"}
                if "artifacts" in route.path:
                    params = {"path": f"_registry/{name}/1"}
            for key, ref in {"uri": f"{name}:1", "ref": f"{name}:1", "model": name}.items():
                if key in queries:
                    params[key] = ref
            if {"a", "b"} <= queries:
                params |= {"a": 1, "b": 1}
            found.append(("GET", _filled(route.path, name), params))
            if "uri" in queries:  # every reference form the resolver reads
                for ref in (f"{name}@champion", f"{name}/staging", f"models:/{name}/latest"):
                    found.append(("GET", route.path, {"uri": ref}))
        elif "{name:model}" in route.path:
            found.extend((m, _filled(route.path, name), {}) for m in sorted(methods))
    return found


async def _ask(client: httpx.AsyncClient, method: str, path: str, params: dict[str, Any]) -> Any:
    if method == "GET":
        response = await client.get(path, params=params)
    else:
        response = await client.request(method, path, json={})
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return response.status_code, body


def _neutral(value: Any, name: str) -> Any:
    """``value`` with the model's name replaced, recursively (answers equal "up to the name")."""
    if isinstance(value, str):
        return value.replace(name, "NAME")
    if isinstance(value, list | tuple):
        return [_neutral(v, name) for v in value]
    if isinstance(value, dict):
        return {k: _neutral(v, name) for k, v in value.items()}
    return value


@pytest.mark.parametrize("person", sorted(PEOPLE))
async def test_an_unreadable_model_answers_like_a_missing_one(world: World, person: str) -> None:
    client = world.clients[person]
    hidden, absent = _requests(world.app, HIDDEN), _requests(world.app, ABSENT)
    assert len(hidden) == len(absent)
    assert len(hidden) >= 40, hidden
    not_found = 0
    for (method, path, params), (_m, other_path, other_params) in zip(hidden, absent, strict=True):
        seen = await _ask(client, method, path, params)
        missing = await _ask(client, method, other_path, other_params)
        where = (person, method, path, params)
        assert _neutral(seen, HIDDEN) == _neutral(missing, ABSENT), (where, seen, missing)
        names_it = HIDDEN in path or any(HIDDEN in str(v) for v in params.values())
        if method == "GET" and names_it:
            assert seen[0] != 403, (where, seen)
        not_found += seen[0] == 404
    # Every name-taking read of both doors is a 404 here, not only "alike".
    assert not_found >= 20, not_found


async def test_the_mlflow_door_answers_resource_does_not_exist(world: World) -> None:
    for name in (HIDDEN, ABSENT):
        response = await world.clients["pv"].get(
            f"{MLF}/registered-models/get", params={"name": name}
        )
        assert response.status_code == 404
        assert response.json() == {
            "error_code": "RESOURCE_DOES_NOT_EXIST",
            "message": f"no model named {name!r}",
        }


async def test_a_reader_still_gets_403_on_writes(world: World) -> None:
    """Hiding is only for callers with no read right: a reader learns nothing new from 403."""
    pv = world.clients["pv"]
    response = await pv.patch(f"{API}/models/alpha", json={"description": "x"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    response = await pv.post(
        f"{MLF}/registered-models/set-tag", json={"name": "alpha", "key": "k", "value": "v"}
    )
    assert response.status_code == 403
    # A contributor of alpha changing the unreadable model: 404, as if it did not exist.
    carol = world.clients["carol"]
    for name in (HIDDEN, ABSENT):
        response = await carol.patch(f"{API}/models/{name}", json={"description": "x"})
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "model_not_found"


async def test_warm_cache_does_not_reveal_the_name(world: World) -> None:
    """A read remembered for a wide reader is not answered 403 to one who may not read it."""
    reads = [
        (f"{API}/resolve", {"uri": f"{HIDDEN}:1"}),
        (f"{API}/models/{HIDDEN}/versions/1", {}),
        (f"{MLF}/registered-models/get", {"name": HIDDEN}),
        (f"{MLF}/model-versions/get", {"name": HIDDEN, "version": "1"}),
        (f"{MLF}/registered-models/get-latest-versions", {"name": HIDDEN}),
    ]
    for path, params in reads:
        assert (await world.clients[WIDE].get(path, params=params)).status_code == 200, path
        # Every one of PEOPLE, even alpha's model-scoped admin, is a stranger to "secret".
        for person in sorted(PEOPLE):
            response = await world.clients[person].get(path, params=params)
            assert response.status_code == 404, (person, path, response.text)

"""Issue 18, finding 13: a JSON body that names a key twice is refused, never half-read.

``json.loads`` keeps the last of two equal keys: ``PUT /api/v1/policies`` with ``production``
twice kept the later, empty rule and dropped a 2-approval requirement. Every JSON body of both
doors is parsed by ``modelreg.api.bodies.strict_loads``; a repeated key (at any depth) answers
400 naming it, and nothing changes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelreg.api.app import create_app, iter_routes
from modelreg.api.bodies import StrictJsonRoute, strict_loads
from modelreg.api.mlflow._common import PREFIXES
from modelreg.config import Settings
from modelreg.errors import InvalidInput

pytestmark = pytest.mark.anyio
JSON = {"content-type": "application/json"}
POLICY = (
    '{"scopes": {"*": {"production": {"approvals": 2, "approver_role": "approver"},'
    ' "production": {}}}}'
)
# Values for path parameters, so every route is reached (the body is refused before anything
# looks the names up).
FILL = {
    "{name:model}": "fraud",
    "{name}": "fraud",
    "{version}": "1",
    "{alias}": "champion",
    "{target}": "production",
    "{request_id}": "1",
    "{promotion_id}": "1",
    "{token_id}": "00000000-0000-0000-0000-000000000000",
    "{digest}": "sha256:" + "0" * 64,
    "{path:path}": "x",
    "{model_id}": "m-" + "0" * 32,
    "{tag_key}": "k",
    "{key}": "k",
    "{user}": "ann",
    "{webhook_id}": "00000000-0000-0000-0000-000000000000",
    "{delivery_id}": "msg_" + "0" * 32,
    "{deployment_id}": "00000000-0000-0000-0000-000000000000",
    "{signature_id}": "00000000-0000-0000-0000-000000000000",
    "{upload_id}": "0" * 32,
}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The registry owner on loopback (no users yet): every route is reachable."""
    (tmp_path / "home").mkdir()
    app = create_app(Settings.for_home(tmp_path / "home"))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        c.app = app  # type: ignore[attr-defined]
        yield c
    app.state.registry.engine.dispose()


def test_strict_loads_names_the_repeated_key_at_any_depth() -> None:
    assert strict_loads('{"a": 1, "b": {"a": 2}}') == {"a": 1, "b": {"a": 2}}
    for text, key in [
        ('{"a": 1, "a": 1}', "a"),
        ('{"x": [{"k": 1, "k": 2}]}', "k"),
        ('{"p": {"q": {"r": 0, "s": 1, "r": 0}}}', "r"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            strict_loads(text)
        assert caught.value.detail == {"key": key}
        assert repr(key) in caught.value.message
    with pytest.raises(json.JSONDecodeError):
        strict_loads("{not json")


async def test_policy_document_with_a_repeated_target_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    good = {"scopes": {"*": {"production": {"approvals": 2, "approver_role": "approver"}}}}
    assert (await client.put("/api/v1/policies", json=good)).status_code == 200
    before = (await client.get("/api/v1/policies")).json()
    response = await client.put("/api/v1/policies", content=POLICY, headers=JSON)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["detail"] == {"key": "production"}
    assert "'production'" in error["message"]
    assert (await client.get("/api/v1/policies")).json() == before
    # A single rule route, a repeated field inside the rule.
    response = await client.put(
        "/api/v1/policy/production", content='{"approvals": 2, "approvals": 0}', headers=JSON
    )
    assert response.status_code == 400
    assert response.json()["error"]["detail"] == {"key": "approvals"}
    assert (await client.get("/api/v1/policies")).json() == before


def _filled(path: str) -> str:
    for key, value in FILL.items():
        path = path.replace(key, value)
    assert "{" not in path, path
    return path


async def test_every_json_body_of_both_doors_refuses_repeated_keys(
    client: httpx.AsyncClient,
) -> None:
    app: Any = client.app  # type: ignore[attr-defined]
    rest, mlflow = [], []
    for route in iter_routes(app):
        methods = sorted((route.methods or set()) - {"GET", "HEAD"})
        if route.path.startswith(PREFIXES):
            # Artifact uploads (PUT) are file bytes, not JSON.
            mlflow += [(m, _filled(route.path)) for m in methods if m != "PUT"]
        elif route.body_field is not None:
            assert isinstance(route, StrictJsonRoute), route.path
            rest += [(m, _filled(route.path)) for m in methods]
    assert len(rest) >= 15, rest
    assert len(mlflow) >= 30, mlflow
    body = '{"zz_repeated": 1, "zz_repeated": 2}'
    for method, path in rest:
        response = await client.request(method, path, content=body, headers=JSON)
        assert response.status_code == 400, (method, path, response.text)
        assert response.json()["error"]["detail"] == {"key": "zz_repeated"}, (method, path)
    for method, path in mlflow:
        response = await client.request(method, path, content=body, headers=JSON)
        assert response.status_code == 400, (method, path, response.text)
        answer = response.json()
        assert answer["error_code"] == "INVALID_PARAMETER_VALUE", (method, path)
        assert "'zz_repeated'" in answer["message"], (method, path)
    # Nothing was created by any of them.
    assert (await client.get("/api/v1/models")).json()["items"] == []


async def test_malformed_json_is_answered_as_before(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/models", content="{not json", headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"
    created = await client.post("/api/v1/models", content=json.dumps({"name": "ok"}), headers=JSON)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "ok"

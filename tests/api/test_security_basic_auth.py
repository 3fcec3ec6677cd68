"""HTTP Basic only on the MLflow door (issue 18, "Basic auth on /api/v1").

MLflow's client sends ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` as Basic credentials, so the
MLflow door takes a token as the password. Nothing else needs Basic, and browsers remember it
and send it on their own, so ``/api/v1`` takes Bearer tokens only, on every route and on the
cached-read fast path alike.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import modelreg
from modelreg.api.app import create_app, iter_routes
from modelreg.config import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def team(tmp_path: Path, files: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A registry with an admin's token, and a client for its app in process."""
    home = tmp_path / "team"
    local = modelreg.Registry(home)
    local.register("m", files / "model.pkl", capture=False)
    local.set_alias("m", "champion", 1)
    local.create_user("alice", role="admin")
    token = str(local.create_token("alice", label="t")["token"])
    local.close()
    app = create_app(Settings.for_home(home))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
        yield http, token
    app.state.registry.engine.dispose()


def basic(token: str, user: str = "alice") -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class TestBasicOnlyOnTheMlflowDoor:
    async def test_the_mlflow_door_takes_basic(self, team: tuple[httpx.AsyncClient, str]) -> None:
        http, token = team
        for path in (
            "/api/2.0/mlflow/registered-models/search",
            "/api/2.0/mlflow/registered-models/get?name=m",
        ):
            assert (await http.get(path, headers=basic(token))).status_code == 200

    async def test_api_v1_refuses_basic_on_every_route(
        self, team: tuple[httpx.AsyncClient, str]
    ) -> None:
        http, token = team
        app = http._transport.app  # type: ignore[attr-defined]
        checked = 0
        for route in iter_routes(app):
            if not route.path.startswith("/api/v1"):
                continue
            path = re.sub(r"\{(\w+)(?::\w+)?\}", "x", route.path)
            for method in sorted(route.methods - {"HEAD"}):
                response = await http.request(method, path, json={}, headers=basic(token))
                assert response.status_code == 401, (method, path, response.text)
                error = response.json()["error"]
                assert error["code"] == "unauthenticated"
                assert "Bearer" in error["message"]
                checked += 1
        assert checked > 30

    async def test_the_cached_reads_refuse_basic_too(
        self, team: tuple[httpx.AsyncClient, str]
    ) -> None:
        """A resolve remembered for a Bearer caller is not served to the same token as Basic."""
        http, token = team
        url = "/api/v1/resolve?uri=m@champion"
        for _ in range(2):
            assert (await http.get(url, headers=bearer(token))).status_code == 200
        # The same credentials through the door Basic belongs to: its actor is now cached too.
        door = "/api/2.0/mlflow/registered-models/get?name=m"
        assert (await http.get(door, headers=basic(token))).status_code == 200
        response = await http.get(url, headers=basic(token))
        assert response.status_code == 401, response.text

    async def test_api_v1_takes_bearer(self, team: tuple[httpx.AsyncClient, str]) -> None:
        http, token = team
        assert (await http.get("/api/v1/models", headers=bearer(token))).status_code == 200

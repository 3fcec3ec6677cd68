"""A 401 names the variables of the client that knocked (issue 19 #9).

MLflow's client reads ``MLFLOW_TRACKING_TOKEN`` (or ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``),
not ``MODELREG_TOKEN``: the MLflow door's refusals say so, on every route of the door, for a
missing, a forged and a Basic-carried bad token alike; ``/api/v1`` keeps naming modelreg's own.
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
from modelreg.api.deps import MLFLOW_PREFIXES
from modelreg.config import Settings

pytestmark = pytest.mark.anyio

BAD = {
    "missing": {},
    "forged bearer": {"authorization": "Bearer mr_forged"},
    "forged basic": {"authorization": "Basic " + base64.b64encode(b"alice:mr_forged").decode()},
}


@pytest.fixture
async def team(tmp_path: Path, files: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A registry with users (so every request needs a token), served in process."""
    home = tmp_path / "team"
    local = modelreg.Registry(home)
    local.register("m", files / "model.pkl", capture=False)
    local.create_user("alice", role="admin")
    local.close()
    app = create_app(Settings.for_home(home))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
        yield http
    app.state.registry.engine.dispose()


def _message(response: httpx.Response) -> str:
    body = response.json()
    # The MLflow door answers in MLflow's envelope, /api/v1 in modelreg's.
    return str(body["message"] if "message" in body else body["error"]["message"])


async def test_the_mlflow_door_names_mlflow_variables(team: httpx.AsyncClient) -> None:
    app = team._transport.app  # type: ignore[attr-defined]
    checked = 0
    for route in iter_routes(app):
        if not route.path.startswith(MLFLOW_PREFIXES):
            continue
        path = re.sub(r"\{(\w+)(?::\w+)?\}", "x", route.path)
        for method in sorted(route.methods - {"HEAD"}):
            for label, headers in BAD.items():
                response = await team.request(method, path, json={}, headers=headers)
                assert response.status_code == 401, (method, path, label, response.text)
                message = _message(response)
                assert "MLFLOW_TRACKING_TOKEN" in message, (method, path, label, message)
                assert "MLFLOW_TRACKING_PASSWORD" in message
                assert "MODELREG_TOKEN" not in message
                checked += 1
    assert checked > 20


async def test_api_v1_names_modelreg_token(team: httpx.AsyncClient) -> None:
    for label, headers in BAD.items():
        if label == "forged basic":
            continue  # refused earlier: Basic is for the MLflow door only
        response = await team.get("/api/v1/models", headers=headers)
        assert response.status_code == 401, label
        message = _message(response)
        assert "MODELREG_TOKEN" in message
        assert "MLFLOW_TRACKING" not in message

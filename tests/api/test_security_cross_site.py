"""Cross-site state changes (issue 18 finding 2; SECURITY.md rules 6, 14): every write route.

A web page can send a POST to any address without a CORS preflight when its body is untyped,
``text/plain``, a form or multipart, and it chooses the query string. Each write route of the
app, both doors, is enumerated (``iter_routes``) and sent such requests, with fields in the
query string and the body; each must be refused and leave the database exactly as it was. The
registry has no users, so a request that got through would act as its owner.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

import modelreg
from modelreg.api.app import RAW_BODY_PREFIXES, create_app, iter_routes
from modelreg.api.ui import is_ui_path
from modelreg.config import Settings
from modelreg.db.base import Base

pytestmark = pytest.mark.anyio

ORIGIN = "http://127.0.0.1:8080"
EVIL = "http://evil.example"
# Plausible values for every path parameter, naming things that exist where they can.
PATH_VALUES = {
    "name": "m",
    "version": "1",
    "alias": "champion",
    "target": "production",
    "promotion_id": "1",
    "digest": "0" * 64,
    "token_id": "t",
    "model_id": "x",
    "tag_key": "t",
    "path": "0/artifacts/a.txt",
}
# MLflow's and /api/v1's fields, as an attacker would put them in a link or a form.
FIELDS = {
    "name": "m",
    "version": "1",
    "stage": "Production",
    "archive_existing_versions": "true",
    "alias": "champion",
    "key": "k",
    "value": "v",
    "new_name": "m2",
    "description": "pwned",
    "reason": "pwned",
    "experiment_id": "0",
    "run_id": "r",
    "target": "production",
    "role": "admin",
    "principal": "evil",
}
# The request bodies a page can send without a preflight (the "bare" one has none).
SIMPLE_BODIES: dict[str, dict[str, Any]] = {
    "bare": {},
    "untyped": {"content": json.dumps(FIELDS).encode()},
    "text-plain": {
        "content": json.dumps(FIELDS).encode(),
        "headers": {"content-type": "text/plain"},
    },
    "form": {"data": FIELDS},
    "multipart": {"data": FIELDS, "files": {"file": ("a.txt", b"x", "text/plain")}},
}


def write_routes() -> Iterator[tuple[str, str]]:
    """``(method, concrete path)`` of every write route of the app, both doors."""
    app = create_app(Settings(home=Path("/nonexistent"), db="sqlite://"))
    for route in iter_routes(app):
        for method in sorted(route.methods - {"GET", "HEAD"}):
            path = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PATH_VALUES.get(m[1], "x"), route.path)
            yield method, path
    app.state.registry.engine.dispose()


WRITES = sorted(set(write_routes()))


def test_every_write_route_is_enumerated() -> None:
    methods = {m for m, _ in WRITES}
    assert methods == {"POST", "PUT", "PATCH", "DELETE"}
    assert len(WRITES) > 50
    assert ("POST", "/api/2.0/mlflow/model-versions/transition-stage") in WRITES


@pytest.fixture
def laptop(tmp_path: Path, files: Path) -> Iterator[Settings]:
    """A registry without users holding ``m`` version 1 (a file, tags, ``@champion``)."""
    home = tmp_path / "laptop"
    local = modelreg.Registry(home)
    local.register("m", files / "model.pkl", capture=False)
    local.set_alias("m", "champion", 1)
    local.close()
    return Settings.for_home(home)


@pytest.fixture
async def client(laptop: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The laptop registry's app, in process, from a loopback peer under a loopback name."""
    app = create_app(laptop)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield http
    app.state.registry.engine.dispose()


def snapshot(http: httpx.AsyncClient) -> dict[str, list[str]]:
    """Every row of every table: "nothing changed" is this, unchanged."""
    registry = http._transport.app.state.registry  # type: ignore[attr-defined]
    with registry.read() as session:
        return {
            table.name: sorted(repr(tuple(row)) for row in session.execute(select(table)))
            for table in Base.metadata.sorted_tables
        }


def refusal_code(response: httpx.Response) -> str:
    """The error code of a refusal in either door's format, or the web UI's error page."""
    if response.headers["content-type"].startswith("text/html"):
        match = re.search(r'<meta name="modelreg-error" content="([^"]*)">', response.text)
        return match[1] if match else ""
    body = response.json()
    return str(body["error"]["code"] if "error" in body else body["error_code"])


class TestCrossSiteWrites:
    """Every write route refuses what a page of another site can send."""

    @pytest.mark.parametrize("body", list(SIMPLE_BODIES))
    async def test_writes_from_another_origin_are_refused(
        self, client: httpx.AsyncClient, body: str
    ) -> None:
        before = snapshot(client)
        for method, path in WRITES:
            kwargs = SIMPLE_BODIES[body]
            headers = {**kwargs.get("headers", {}), "origin": EVIL}
            response = await client.request(
                method, path, params=FIELDS, **{**kwargs, "headers": headers}
            )
            assert response.status_code == 403, (method, path, response.text)
            assert refusal_code(response) in ("cross_site_request", "PERMISSION_DENIED")
            assert response.headers["x-content-type-options"] == "nosniff"
        assert snapshot(client) == before

    @pytest.mark.parametrize("site", ["cross-site", "same-site"])
    async def test_writes_a_page_of_another_site_started_are_refused(
        self, client: httpx.AsyncClient, site: str
    ) -> None:
        before = snapshot(client)
        for method, path in WRITES:
            response = await client.request(
                method, path, params=FIELDS, json=FIELDS, headers={"sec-fetch-site": site}
            )
            assert response.status_code == 403, (method, path, response.text)
        assert snapshot(client) == before

    @pytest.mark.parametrize("body", list(SIMPLE_BODIES))
    async def test_writes_not_declared_json_are_refused(
        self, client: httpx.AsyncClient, body: str
    ) -> None:
        """Even with no ``Origin`` (a browser may omit it): the content type alone refuses."""
        before = snapshot(client)
        checked = 0
        for method, path in WRITES:
            if method == "PUT" and path.startswith(RAW_BODY_PREFIXES):
                continue  # byte uploads: PUT cannot be sent cross-site without a preflight
            if method == "DELETE" and body == "bare":
                continue  # nor can DELETE: a bodiless one passes (MLflow's client sends them)
            response = await client.request(method, path, params=FIELDS, **SIMPLE_BODIES[body])
            if is_ui_path(path) and body == "form":
                # The web UI's writes are forms, refused without the page's CSRF token.
                assert response.status_code == 403, (method, path, response.text)
                assert refusal_code(response) == "csrf_failed"
                checked += 1
                continue
            assert response.status_code == 415, (method, path, response.text)
            assert refusal_code(response) in ("unsupported_media_type", "BAD_REQUEST")
            checked += 1
        assert checked > 40
        assert snapshot(client) == before

    async def test_mlflow_writes_ignore_the_query_string(self, client: httpx.AsyncClient) -> None:
        """Typed JSON with the fields in the query string only: they are not read."""
        before = snapshot(client)
        response = await client.post(
            "/api/2.0/mlflow/model-versions/transition-stage",
            params={"name": "m", "version": "1", "stage": "Production"},
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert response.json()["message"].startswith("Missing value for required parameter")
        assert snapshot(client) == before

    async def test_same_origin_and_non_browser_writes_pass(self, client: httpx.AsyncClient) -> None:
        """The control: the same write as JSON, from the page's own origin or no browser."""
        url = "/api/2.0/mlflow/model-versions/set-tag"
        for headers in (
            {},
            {"origin": ORIGIN, "sec-fetch-site": "same-origin"},
            {"origin": "http://127.0.0.1:8080", "sec-fetch-site": "none"},
        ):
            before = snapshot(client)
            body = {"name": "m", "version": "1", "key": "k", "value": str(len(headers))}
            response = await client.post(url, json=body, headers=headers)
            assert response.status_code == 200, response.text
            assert snapshot(client) != before

    async def test_a_bare_delete_still_works(self, client: httpx.AsyncClient) -> None:
        """MLflow's client deletes logged-model tags and artifacts with no body and no type."""
        response = await client.delete("/api/v1/models/m/aliases/champion")
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 1

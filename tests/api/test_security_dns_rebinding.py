"""DNS rebinding (issue 18 finding 1; SECURITY.md rule 15): the Host a request names.

A page at ``evil.example`` that rebinds its name to 127.0.0.1 reaches a laptop registry from a
loopback peer, as its owner; only the ``Host`` header tells. A registry without users answers
loopback names only (``localhost``, ``*.localhost``, loopback addresses, any port) unless
``allowed_hosts`` lists the names it is served as; with users, every request needs a token
(a rebound page has none), so any name passes unless ``allowed_hosts`` is set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

import modelreg
from modelreg.api.app import SECURITY_HEADERS, create_app
from modelreg.api.deps import is_local
from modelreg.api.origin import host_allowed, is_loopback_name, same_origin, split_host
from modelreg.config import Settings
from modelreg.db.tables import AuditEvent

FOREIGN = [
    "evil.example",
    "evil.example:8080",
    "127.0.0.1.nip.io:8080",
    "localhost.evil.example",
    "0.0.0.0:8080",
    "10.0.0.1",
    "[::2]:8080",
    "[fe80::1]",
    "local host",
]
LOOPBACK = [
    "localhost",
    "localhost:8080",
    "LOCALHOST:8080",
    "registry.localhost:8080",
    "127.0.0.1",
    "127.0.0.1:8080",
    "127.1.2.3:80",
    "[::1]",
    "[::1]:8080",
]
# Reads and a write of each door, and the cached reads the fast path answers before routing.
REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/v1/audit", {}),
    ("GET", "/api/v1/models", {}),
    ("GET", "/api/v1/resolve", {"params": {"uri": "m@champion"}}),
    ("GET", "/api/2.0/mlflow/registered-models/get", {"params": {"name": "m"}}),
    ("GET", "/healthz", {}),
    ("GET", "/openapi.json", {}),
    ("POST", "/api/v1/models", {"json": {"name": "planted"}}),
    (
        "POST",
        "/api/2.0/mlflow/model-versions/transition-stage",
        {"json": {"name": "m", "version": "1", "stage": "Production"}},
    ),
]

pytestmark = pytest.mark.anyio


def registry_with_m(home: Path, files: Path) -> Path:
    local = modelreg.Registry(home)
    local.register("m", files / "model.pkl", capture=False)
    local.set_alias("m", "champion", 1)
    local.close()
    return home


@pytest.fixture
def laptop_home(home: Path, files: Path) -> Path:
    """A registry without users (both databases) holding ``m`` 1 as ``@champion``."""
    return registry_with_m(home, files)


class App:
    """An app in process, asked from a loopback peer under any ``Host``."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 5000))
        self.http = httpx.AsyncClient(transport=self.transport, base_url="http://localhost")

    async def ask(
        self, method: str, path: str, host: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"host": host, **kwargs.pop("headers", {})}
        if token:
            headers["authorization"] = f"Bearer {token}"
        return await self.http.request(method, path, headers=headers, **kwargs)

    def events(self) -> int:
        with self.app.state.registry.read() as session:
            return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)

    async def close(self) -> None:
        await self.http.aclose()
        self.app.state.registry.engine.dispose()


@pytest.fixture
async def laptop(laptop_home: Path) -> AsyncIterator[App]:
    app = App(Settings.for_home(laptop_home))
    yield app
    await app.close()


async def warm(app: App, host: str = "localhost") -> None:
    """Ask every cached read twice under a loopback name, so the fast path holds its answer."""
    for _ in range(2):
        for method, path, kwargs in REQUESTS:
            if method == "GET":
                assert (await app.ask(method, path, host, **kwargs)).status_code == 200


def assert_invalid_host(response: httpx.Response, path: str) -> None:
    assert response.status_code == 400, (path, response.text)
    body = response.json()
    if path.startswith("/api/2.0/mlflow"):
        assert body["error_code"] == "BAD_REQUEST"
        assert "loopback" in body["message"] or "allowed_hosts" in body["message"]
    else:
        assert body["error"]["code"] == "invalid_host"
    for key, value in SECURITY_HEADERS.items():
        assert response.headers[key] == value


class TestLaptopModeAnswersLoopbackNamesOnly:
    @pytest.mark.parametrize("host", FOREIGN)
    async def test_a_foreign_host_is_refused_everywhere(self, laptop: App, host: str) -> None:
        await warm(laptop)  # a cached answer must not leak either
        before = laptop.events()
        for method, path, kwargs in REQUESTS:
            assert_invalid_host(await laptop.ask(method, path, host, **kwargs), path)
        assert laptop.events() == before

    @pytest.mark.parametrize("host", LOOPBACK)
    async def test_loopback_names_pass(self, laptop: App, host: str) -> None:
        await warm(laptop, host)
        response = await laptop.ask("POST", "/api/v1/models", host, json={"name": "fine"})
        assert response.status_code == 201, response.text

    async def test_the_message_says_what_to_do(self, laptop: App) -> None:
        message = (await laptop.ask("GET", "/api/v1/models", "evil.example")).json()["error"]
        assert message["detail"] == {"host": "evil.example"}
        assert "localhost" in message["message"]
        assert "allowed_hosts" in message["message"]

    async def test_the_first_user_ends_laptop_mode(self, laptop: App, laptop_home: Path) -> None:
        """With users every request needs a token, so any name is answered (with 401)."""
        assert (await laptop.ask("GET", "/api/v1/models", "registry.corp")).status_code == 400
        local = modelreg.Registry(laptop_home)
        local.create_user("alice", role="admin")
        token = local.create_token("alice", label="t")["token"]
        local.close()
        refused = await laptop.ask("GET", "/api/v1/models", "registry.corp")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthenticated"
        answered = await laptop.ask("GET", "/api/v1/models", "registry.corp", token=token)
        assert answered.status_code == 200


class TestAllowedHosts:
    @pytest.fixture
    async def pinned(self, laptop_home: Path) -> AsyncIterator[App]:
        settings = Settings.for_home(laptop_home).model_copy(
            update={"allowed_hosts": ["registry.internal", "*.corp.example"]}
        )
        app = App(settings)
        yield app
        await app.close()

    @pytest.mark.parametrize(
        "host", ["registry.internal", "registry.internal:8080", "a.corp.example", "B.CORP.EXAMPLE"]
    )
    async def test_listed_names_pass(self, pinned: App, host: str) -> None:
        await warm(pinned, host)

    @pytest.mark.parametrize("host", ["evil.example", "corp.example", "localhost", "127.0.0.1"])
    async def test_only_listed_names_pass(self, pinned: App, host: str) -> None:
        """The list is the whole list: add localhost to it to keep using that name."""
        await warm(pinned, "registry.internal")
        for method, path, kwargs in REQUESTS:
            response = await pinned.ask(method, path, host, **kwargs)
            assert_invalid_host(response, path)

    async def test_they_pin_a_registry_with_users_too(self, tmp_path: Path, files: Path) -> None:
        home = registry_with_m(tmp_path / "team", files)
        local = modelreg.Registry(home)
        local.create_user("alice", role="admin")
        token = local.create_token("alice", label="t")["token"]
        local.close()
        settings = Settings.for_home(home).model_copy(update={"allowed_hosts": ["registry.corp"]})
        app = App(settings)
        try:
            ok = await app.ask("GET", "/api/v1/models", "registry.corp", token=token)
            assert ok.status_code == 200
            bad = await app.ask("GET", "/api/v1/models", "evil.example", token=token)
            assert_invalid_host(bad, "/api/v1/models")
        finally:
            await app.close()


def test_a_real_server_refuses_a_rebound_name(laptop_home: Path, live_server: Any) -> None:
    """Over a socket, through uvicorn: the Host header a browser would send after rebinding."""
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        assert http.get("/api/v1/models").status_code == 200
        response = http.get("/api/v1/models", headers={"host": "evil.example:8080"})
        assert_invalid_host(response, "/api/v1/models")
        write = http.post(
            "/api/v1/models", json={"name": "x"}, headers={"host": "evil.example:8080"}
        )
        assert_invalid_host(write, "/api/v1/models")


# -- the name checks themselves ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("localhost", ("localhost", "")),
        ("LocalHost:8080", ("localhost", "8080")),
        ("[::1]:8080", ("::1", "8080")),
        ("[::1]", ("::1", "")),
        ("", None),
        (":8080", None),
        ("[::1", None),
        ("[::1]x", None),
        ("host:port", None),
        ("host:８０", None),
    ],
)
def test_split_host(value: str, expected: tuple[str, str] | None) -> None:
    assert split_host(value) == expected


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_names(host: str) -> None:
    parts = split_host(host)
    assert parts is not None
    assert is_loopback_name(parts[0])


@pytest.mark.parametrize("host", FOREIGN)
def test_foreign_names(host: str) -> None:
    parts = split_host(host)
    assert parts is None or not is_loopback_name(parts[0])


def test_allowed_host_patterns() -> None:
    patterns = ["registry.internal", "*.corp.example"]
    assert host_allowed("registry.internal", patterns)
    assert host_allowed("a.b.corp.example", patterns)
    assert not host_allowed("corp.example", patterns)
    assert not host_allowed("evilcorp.example", patterns)
    assert host_allowed("anything", ["*"])


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
        ("http://localhost", "localhost:80", True),
        ("https://registry.corp", "registry.corp", True),
        ("https://registry.corp", "registry.corp:443", True),
        ("http://[::1]:8080", "[::1]:8080", True),
        ("http://evil.example", "127.0.0.1:8080", False),
        ("http://127.0.0.1:9999", "127.0.0.1:8080", False),
        ("http://localhost:8080", "127.0.0.1:8080", False),
        ("https://registry.corp", "registry.corp:80", False),
        ("null", "127.0.0.1:8080", False),
        ("file://", "localhost", False),
        ("http://[::1", "localhost", False),
    ],
)
def test_same_origin(origin: str, host: str, same: bool) -> None:
    assert same_origin(origin, host) is same


def test_authentication_does_not_trust_a_foreign_name_either(tmp_path: Path) -> None:
    """``HostAndOrigin`` refuses first; laptop mode's owner needs a loopback peer AND name."""
    settings = Settings(home=tmp_path)
    assert is_local("127.0.0.1", "localhost:8080", settings)
    assert not is_local("127.0.0.1", "evil.example", settings)
    assert not is_local("10.0.0.2", "localhost", settings)
    pinned = settings.model_copy(update={"allowed_hosts": ["registry.internal"]})
    assert is_local("127.0.0.1", "registry.internal", pinned)

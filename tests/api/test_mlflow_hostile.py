"""Hostile requests against the MLflow door on a real server (SECURITY.md rules 1, 2, 5, 7, 8, 10).

An attacker's view of ``/api/2.0/mlflow…`` and ``/api/2.0/mlflow-artifacts``: client-chosen
``source`` URIs and artifact paths, per-model grants, policy gates reached through MLflow's
RPCs, malformed input (every answer a 4xx in MLflow's ``{"error_code", "message"}`` format,
never a 500), concurrent logging and registration, and gc next to the artifact tree.

Most checks share one SQLite server per module (one start, many users); the concurrency checks
run on SQLite and PostgreSQL, where the dialects differ.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg
from modelreg.api.app import iter_routes
from modelreg.api.mlflow._common import PREFIXES
from server_process import ServerProcess

MLF = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"
API = "/api/v1"
LIMIT = 64 * 1024  # the world's max_upload_bytes
ALPHA_BYTES = b"alpha-bytes!" * 64
BETA_BYTES = b"beta-SECRET!" * 64
LOGGED = {"MLmodel": b"flavors: {}\n", "model.pkl": b"logged-model" * 40, "sub/conf.json": b"{}"}
NO_RUN = "f" * 32
NO_MODEL = "m-" + "0" * 32
# name -> (role, model the role is limited to)
PEOPLE: dict[str, tuple[str, str | None]] = {
    "root": ("admin", None),
    "ann": ("approver", None),
    "con": ("contributor", None),
    "vic": ("viewer", None),
    "carol": ("contributor", "alpha"),
    "pv": ("viewer", "alpha"),
    "dave": ("contributor", "beta"),
    "rev": ("contributor", None),
    "late": ("contributor", None),
}


@dataclass
class World:
    """One live server: models alpha and beta, the people of ``PEOPLE``, one logged model."""

    url: str
    home: Path
    app: Any
    tokens: dict[str, str]
    token_ids: dict[str, str]
    run_id: str = ""
    model_id: str = ""
    clients: dict[str | None, httpx.Client] = field(default_factory=dict)

    def __getitem__(self, who: str | None) -> httpx.Client:
        """An HTTP client acting as ``who`` with a bearer token (``None``: no token)."""
        if who not in self.clients:
            headers = {"authorization": f"Bearer {self.tokens[who]}"} if who else {}
            # No keep-alive: after an unhandled 500 the server drops the connection without
            # saying so, and the next request on it would fail for a reason not its own.
            self.clients[who] = httpx.Client(
                base_url=self.url,
                headers=headers,
                timeout=60,
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return self.clients[who]

    @property
    def logged(self) -> str:
        """The artifacts folder of the world's logged model."""
        return f"0/models/{self.model_id}/artifacts"

    def fill(self, value: Any) -> Any:
        """``value`` with ``{run}``, ``{mid}`` and ``{m}`` replaced, recursively."""
        if isinstance(value, str):
            return (
                value.replace("{run}", self.run_id)
                .replace("{mid}", self.model_id)
                .replace("{m}", self.logged)
            )
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value


def call(client: httpx.Client, method: str, rpc: str, **params: Any) -> httpx.Response:
    """An MLflow RPC: GET parameters in the query string, others as a JSON body."""
    url = rpc if rpc.startswith("/") else f"{MLF}/{rpc}"
    if method == "GET":
        return client.get(url, params=params)
    return client.request(method, url, json=params)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def mlflow_error(
    response: httpx.Response, statuses: int | tuple[int, ...], code: str | None = None
) -> dict[str, Any]:
    """MLflow's error body, after checking the status (one of ``statuses``) and the shape."""
    allowed = (statuses,) if isinstance(statuses, int) else statuses
    assert response.status_code in allowed, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    if code is not None:
        assert body["error_code"] == code, body
    result: dict[str, Any] = body
    return result


def raw(
    url: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """A request whose path is sent byte for byte (httpx would normalise ``..``)."""
    target = httpx.URL(url)
    conn = http.client.HTTPConnection(target.host, target.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def log_model(
    client: httpx.Client,
    files: dict[str, bytes],
    *,
    experiment: str = "0",
    name: str = "model",
    metrics: dict[str, float] | None = None,
) -> tuple[str, str]:
    """What ``mlflow.<flavor>.log_model`` does: a run, a logged model, its files; ``(run, id)``."""
    run = ok(call(client, "POST", "runs/create", experiment_id=experiment))["run"]["info"]
    if metrics:
        points = [{"key": k, "value": v, "timestamp": 1, "step": 0} for k, v in metrics.items()]
        ok(call(client, "POST", "runs/log-batch", run_id=run["run_id"], metrics=points))
    model = ok(
        call(
            client,
            "POST",
            "logged-models",
            experiment_id=experiment,
            name=name,
            source_run_id=run["run_id"],
        )
    )["model"]["info"]
    for path, data in files.items():
        ok(
            client.put(
                f"{ART}/{experiment}/models/{model['model_id']}/artifacts/{path}", content=data
            )
        )
    ok(call(client, "PATCH", f"logged-models/{model['model_id']}", status="LOGGED_MODEL_READY"))
    return run["run_id"], model["model_id"]


def register(client: httpx.Client, name: str, model_id: str) -> str:
    """``create_model_version(name, source="models:/<id>", model_id=<id>)``; the version."""
    body = ok(
        call(
            client,
            "POST",
            "model-versions/create",
            name=name,
            source=f"models:/{model_id}",
            model_id=model_id,
        )
    )
    version: str = body["model_version"]["version"]
    return version


def versions_of(world: World, name: str) -> list[str]:
    found = ok(call(world["root"], "GET", "model-versions/search", filter=f"name = '{name}'"))
    return sorted(v["version"] for v in found.get("model_versions", []))


def walk(client: httpx.Client, path: str) -> list[str]:
    """Every file path under ``path``, listing folder by folder as MLflow's client does."""
    found: list[str] = []
    for entry in ok(call(client, "GET", ART, path=path)).get("files", []):
        child = f"{path}/{entry['path']}"
        found.extend(walk(client, child) if entry["is_dir"] else [child])
    return found


def blob_stored(world: World, data: bytes) -> bool:
    digest = hashlib.sha256(data).hexdigest()
    return any(digest in p.name for p in (world.home / "blobs").rglob("*") if p.is_file())


def _clean_env(env: pytest.MonkeyPatch) -> None:
    for var in (
        "MODELREG_URI",
        "MODELREG_DB",
        "MODELREG_ARTIFACTS",
        "MODELREG_TOKEN",
        "MODELREG_MAX_UPLOAD_BYTES",
    ):
        env.delenv(var, raising=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A real ``modelreg server`` subprocess (its 500 tracebacks land in its log, not here)."""
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    with pytest.MonkeyPatch.context() as env:
        _clean_env(env)
        root = tmp_path_factory.mktemp("mlflow-hostile")
        home = root / "registry"
        home.mkdir()
        (home / "modelreg.toml").write_text(
            f'db = "sqlite:///{home / "registry.db"}"\nmax_upload_bytes = {LIMIT}\n'
        )
        (root / "alpha.pkl").write_bytes(ALPHA_BYTES)
        (root / "beta.pkl").write_bytes(BETA_BYTES)
        with modelreg.Registry(home) as local:
            local.register("alpha", root / "alpha.pkl", capture=False)
            local.register("beta", root / "beta.pkl", capture=False)
            tokens: dict[str, str] = {}
            token_ids: dict[str, str] = {}
            for name, (role, model) in PEOPLE.items():
                local.create_user(name, role=role, model=model)
                issued = local.create_token(name)
                tokens[name], token_ids[name] = issued["token"], issued["id"]
            local.revoke_token(token_ids["rev"])
        app = create_app(Settings.for_home(home))
        with ServerProcess(home, log=root / "server.log") as server:
            crew = World(server.url, home, app, tokens, token_ids)
            crew.run_id, crew.model_id = log_model(crew["root"], LOGGED)
            yield crew
            for client in crew.clients.values():
                client.close()


@pytest.fixture
def server(home: Path) -> Iterator[ServerProcess]:
    """A ``modelreg server`` subprocess on ``home`` (SQLite and PostgreSQL), no users."""
    with ServerProcess(home) as process:
        yield process


# -- 1. source URIs (rules 1 and 2) --------------------------------------------------------------

BAD_SOURCES = [
    "file:///etc/passwd",
    "file://./model",
    "FILE:/etc/passwd",
    "s3://someone-else/model",
    "gs://bucket/model",
    "hdfs://namenode/model",
    "dbfs:/model",
    "http://169.254.169.254/latest/meta-data/",
    "https://example.com/model.tar.gz",
    "mlflow-artifacts://otherhost/0/models/{mid}/artifacts",
    "mlflow-artifacts:///0/models/{mid}/artifacts",
    "mlflow-artifacts://proc/self/root",
    "mlflow-artifacts:/0/models/{mid}/artifacts/../../..",
    "mlflow-artifacts:/0/models/{mid}/artifacts#x",
    "mlflow-artifacts:/0/models/{mid}/artifacts?x=1",
    "mlflow-artifacts:/0/models/{mid}/artifacts;x",
    "mlflow-artifacts:/C:/x",
    "runs:/{run}/../../",
    "runs:/{run}/../../../etc/passwd",
    "runs:/{run}/%2e%2e/%2e%2e",
    "runs:/{run}/%252e%252e/x",
    "runs:/{run}\\..\\..",
    "runs:/{run}/./model",
    "models:/{mid}/../",
    "models:/{mid}/../../etc/passwd",
    "models:/{mid}%2f..",
    "/etc/passwd",
    "C:/model",
    "C:\\model",
    "{mid}",
    "",
    "runs:/" + NO_RUN + "/model",
    "models:/" + NO_MODEL,
    "runs:/{run}",  # the run's own folder is empty: MLflow 3 logs models outside it
    "runs:/{run}/nothing-here",
    "mlflow-artifacts:/0/{run}/artifacts",
    "mlflow-artifacts:/_registry",
    "mlflow-artifacts:/_registry/alpha",
    "mlflow-artifacts:/_registry/alpha/99",
    "models:/alpha/99",
    "models:/no-such-model/1",
    "x" * 5000,
    "runs:/" + "/" * 3000,
    "mlflow-artifacts:/" + "a/" * 700 + "b",
]


class TestSourceUris:
    @pytest.mark.parametrize("source", BAD_SOURCES)
    def test_refused_and_nothing_registered(self, world: World, source: str) -> None:
        name = "src-" + hashlib.sha256(source.encode()).hexdigest()[:12]
        response = call(
            world["root"], "POST", "model-versions/create", name=name, source=world.fill(source)
        )
        mlflow_error(response, (400, 404))
        assert versions_of(world, name) == []

    def test_model_id_that_is_not_the_source(self, world: World) -> None:
        response = call(
            world["root"],
            "POST",
            "model-versions/create",
            name="alpha",
            source="models:/alpha/1",
            model_id=NO_MODEL,
        )
        mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")

    def test_an_allowed_source_works(self, world: World) -> None:
        """The control: the same caller and model with a source of this server's."""
        assert register(world["root"], "src-ok", world.model_id) == "1"
        files = ok(call(world["root"], "GET", ART, path="_registry/src-ok/1"))["files"]
        assert {f["path"] for f in files} == {"MLmodel", "model.pkl", "sub"}

    @pytest.mark.parametrize(
        "source", ["models:/beta/1", "models:/beta/latest", "mlflow-artifacts:/_registry/beta/1"]
    )
    def test_per_model_contributor_cannot_copy_an_unreadable_model(
        self, world: World, source: str
    ) -> None:
        """carol contributes to alpha only: beta's files must not become an alpha version."""
        before = versions_of(world, "alpha")
        response = call(
            world["carol"], "POST", "model-versions/create", name="alpha", source=source
        )
        mlflow_error(response, (403, 404))
        assert versions_of(world, "alpha") == before

    def test_per_model_contributor_can_copy_her_own_model(self, world: World) -> None:
        before = versions_of(world, "alpha")
        ok(
            call(
                world["carol"],
                "POST",
                "model-versions/create",
                name="alpha",
                source="models:/alpha/1",
            )
        )
        assert len(versions_of(world, "alpha")) == len(before) + 1


# -- 2. artifact paths ----------------------------------------------------------------------------

BAD_PUT_PATHS = [
    "{m}/../../../x",
    "{m}/../x",
    "{m}/%2e%2e/%2e%2e/x",
    "{m}/%2E%2E/x",
    "{m}/%252e%252e/x",
    "{m}/%25252e%25252e/x",
    "{m}/a%5cb",
    "{m}/..%5c..%5cx",
    "{m}/a\\b",
    "{m}/./x",
    "{m}//x",
    "{m}/a%00b",
    "{m}/a%0ab",
    "{m}/" + "a" * 300,
    "{m}/" + "a/" * 600 + "x",
    "%2Fetc%2Fpasswd",
    "/etc/passwd",
    "C:/x",
    "C:%5cx",
    "..",
    "_registry/alpha/1/model.pkl",
    "_registry/alpha/1/new.bin",
    "_registry/alpha/99/new.bin",
    "_registry/beta/1/model.pkl",
    f"0/{NO_RUN}/artifacts/x",
    f"0/models/{NO_MODEL}/artifacts/x",
    "7/{run}/artifacts/x",
    "7/models/{mid}/artifacts/x",
    "1/models/{mid}/artifacts/x",
    "0/{run}/x",
    "0/{run}/artifacts",
    "{m}",
    "0/models/{mid}/x",
    "0/x",
    "x",
]


class TestArtifactPaths:
    @pytest.mark.parametrize("path", BAD_PUT_PATHS)
    def test_put_is_refused_before_storing(self, world: World, path: str) -> None:
        payload = b"hostile-put:" + path.encode()
        status, body = raw(
            world.url,
            "PUT",
            f"{ART}/{world.fill(path)}",
            payload,
            {"authorization": f"Bearer {world.tokens['root']}"},
        )
        assert status in (400, 403, 404), (status, body[:300])
        assert set(json.loads(body)) == {"error_code", "message"}
        assert not blob_stored(world, payload)
        listed = ok(call(world["root"], "GET", ART, path=world.logged))["files"]
        assert {f["path"] for f in listed} == {"MLmodel", "model.pkl", "sub"}

    @pytest.mark.parametrize(
        "path", ["{m}/../../../x", "{m}/%2e%2e/x", "_registry/alpha/1/model.pkl"]
    )
    def test_delete_is_refused(self, world: World, path: str) -> None:
        status, _ = raw(
            world.url,
            "DELETE",
            f"{ART}/{world.fill(path)}",
            headers={"authorization": f"Bearer {world.tokens['root']}"},
        )
        assert status in (400, 403, 404)
        got = world["root"].get(f"{ART}/_registry/alpha/1/alpha.pkl")
        assert got.content == ALPHA_BYTES

    def test_file_over_folder_and_folder_over_file(self, world: World) -> None:
        _, mid = log_model(world["con"], {"dir/file": b"1", "flat": b"2"})
        base = f"{ART}/0/models/{mid}/artifacts"
        mlflow_error(world["con"].put(f"{base}/dir", content=b"x"), 400)
        mlflow_error(world["con"].put(f"{base}/flat/inner", content=b"x"), 400)
        assert world["con"].get(f"{base}/dir/file").content == b"1"
        assert world["con"].get(f"{base}/flat").content == b"2"

    @pytest.mark.parametrize("who", ["carol", "pv"])
    def test_unreadable_version_view_leaks_nothing(self, world: World, who: str) -> None:
        client = world[who]
        got = client.get(f"{ART}/_registry/beta/1/beta.pkl")
        mlflow_error(got, (403, 404))
        assert BETA_BYTES not in got.content
        mlflow_error(call(client, "GET", ART, path="_registry/beta/1"), (403, 404))
        mlflow_error(call(client, "GET", ART, path="_registry/beta/1/beta.pkl"), (403, 404))

    def test_readable_version_view_is_served(self, world: World) -> None:
        got = world["pv"].get(f"{ART}/_registry/alpha/1/alpha.pkl")
        assert got.content == ALPHA_BYTES
        assert got.headers["content-disposition"].startswith("attachment")
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["content-type"] == "application/octet-stream"

    def test_per_model_viewer_cannot_list_the_root(self, world: World) -> None:
        mlflow_error(call(world["pv"], "GET", ART, path=""), 403, "PERMISSION_DENIED")

    def test_per_model_viewer_cannot_list_an_experiment(self, world: World) -> None:
        """Listing experiment 0 is the root listing one level down: every team's runs."""
        mlflow_error(call(world["pv"], "GET", ART, path="0"), 403, "PERMISSION_DENIED")
        mlflow_error(call(world["pv"], "GET", ART, path="0/models"), 403, "PERMISSION_DENIED")

    def test_registered_bytes_do_not_leak_through_the_tree(self, world: World) -> None:
        """beta's files stay in the tree after registration; alpha's viewer must not get them."""
        secret = b"beta-v2-secret" * 30
        _, mid = log_model(world["root"], {"model.pkl": secret})
        register(world["root"], "beta", mid)
        got = world["pv"].get(f"{ART}/0/models/{mid}/artifacts/model.pkl")
        assert got.status_code in (403, 404), got.status_code
        assert secret not in got.content

    def test_oversized_body_with_length(self, world: World) -> None:
        path = f"{ART}/{world.logged}/too-big.bin"
        mlflow_error(world["root"].put(path, content=b"x" * (LIMIT + 1)), (400, 413))
        mlflow_error(world["root"].get(path), 404)
        ok(world["root"].put(path.replace("too-big", "just-fits"), content=b"y" * LIMIT))

    def test_oversized_chunked_body(self, world: World) -> None:
        path = f"{ART}/{world.logged}/too-big-chunked.bin"

        def chunks() -> Iterator[bytes]:
            for _ in range(6):
                yield b"z" * (16 * 1024)

        response = world["root"].put(path, content=chunks())
        assert "content-length" not in response.request.headers
        mlflow_error(response, (400, 413))
        mlflow_error(world["root"].get(path), 404)

    @pytest.mark.parametrize("chunked", [False, True])
    def test_killed_upload_leaves_no_row(self, world: World, chunked: bool) -> None:
        name = f"killed-{chunked}.bin"
        target = httpx.URL(world.url)
        with socket.create_connection((target.host, target.port), timeout=10) as sock:
            head = (
                f"PUT {ART}/{world.logged}/{name} HTTP/1.1\r\nHost: {target.host}\r\n"
                f"Authorization: Bearer {world.tokens['root']}\r\n"
            )
            if chunked:
                head += "Transfer-Encoding: chunked\r\n\r\n"
                sock.sendall(head.encode() + b"2000\r\n" + b"k" * 0x2000 + b"\r\n")
            else:
                head += "Content-Length: 60000\r\n\r\n"
                sock.sendall(head.encode() + b"k" * 10_000)
            time.sleep(0.3)
        time.sleep(0.5)
        mlflow_error(world["root"].get(f"{ART}/{world.logged}/{name}"), 404)
        listed = ok(call(world["root"], "GET", ART, path=world.logged))["files"]
        assert name not in {f["path"] for f in listed}


# -- 3. immutability (rule 7) ---------------------------------------------------------------------


class TestImmutability:
    def test_overwriting_the_logged_model_does_not_touch_the_version(self, world: World) -> None:
        original = b"original-weights" * 50
        _, mid = log_model(world["root"], {"model.pkl": original, "MLmodel": b"a: 1\n"})
        assert register(world["root"], "immut", mid) == "1"
        tree = f"{ART}/0/models/{mid}/artifacts"
        ok(world["root"].put(f"{tree}/model.pkl", content=b"evil-weights" * 50))
        ok(world["root"].put(f"{tree}/extra.py", content=b"import os"))
        assert world["root"].get(f"{ART}/_registry/immut/1/model.pkl").content == original
        own = world["root"].get(f"{API}/models/immut/versions/1/files/model.pkl")
        assert own.status_code == 200
        assert own.content == original
        listed = ok(call(world["root"], "GET", ART, path="_registry/immut/1"))["files"]
        assert {f["path"] for f in listed} == {"MLmodel", "model.pkl"}
        uri = ok(
            call(world["root"], "GET", "model-versions/get-download-uri", name="immut", version="1")
        )
        assert uri["artifact_uri"] == "mlflow-artifacts:/_registry/immut/1"
        # Removing the logged model's files does not remove the version's either.
        for name in ("model.pkl", "MLmodel", "extra.py"):
            ok(world["root"].request("DELETE", f"{tree}/{name}"))
        assert world["root"].get(f"{ART}/_registry/immut/1/model.pkl").content == original


# -- 4. authentication and authorization (rule 5) -------------------------------------------------


def _mlflow_routes(app: Any) -> list[tuple[str, str]]:
    fill = {"{path:path}": "0/x", "{model_id}": NO_MODEL, "{tag_key}": "k"}
    found = []
    for route in iter_routes(app):
        if not route.path.startswith(PREFIXES):
            continue
        path = route.path
        for key, value in fill.items():
            path = path.replace(key, value)
        found.extend((method, path) for method in sorted(route.methods or ()))
    return sorted(set(found))


class TestAuth:
    def test_every_mlflow_route_needs_a_token(self, world: World) -> None:
        routes = _mlflow_routes(world.app)
        assert len(routes) >= 45
        anonymous = world[None]
        for method, path in routes:
            if method == "PUT":
                response = anonymous.put(path, content=b"bytes")
            elif method == "GET":
                response = anonymous.get(path)
            else:
                response = anonymous.request(method, path, json={})
            assert response.status_code == 401, (method, path, response.status_code)
            mlflow_error(response, 401, "UNAUTHENTICATED")

    @pytest.mark.parametrize(
        ("make_header", "status"),
        [
            (lambda t: "Basic " + base64.b64encode(f"anyone:{t['vic']}".encode()).decode(), 200),
            (lambda t: "basic " + base64.b64encode(f":{t['vic']}".encode()).decode(), 200),
            (lambda t: "Basic " + base64.b64encode(b"vic:not-a-token").decode(), 401),
            (lambda t: "Basic " + base64.b64encode(f"{t['vic']}:".encode()).decode(), 401),
            (lambda t: "Basic " + base64.b64encode(f"{t['vic']}".encode()).decode(), 401),
            (lambda t: "Basic " + base64.b64encode(f"x:{t['vic']}x".encode()).decode(), 401),
            (lambda t: "Basic " + base64.b64encode(f"x:{t['rev']}".encode()).decode(), 401),
            (lambda t: "Basic !!!not-base64", 401),
            (lambda t: "Basic " + t["vic"], 401),
            (lambda t: "Bearer " + base64.b64encode(f"x:{t['vic']}".encode()).decode(), 401),
            (lambda t: "Bearer " + t["rev"], 401),
            (lambda t: "Digest " + t["vic"], 401),
        ],
    )
    def test_basic_and_bearer(
        self, world: World, make_header: Callable[[dict[str, str]], str], status: int
    ) -> None:
        response = world[None].get(
            f"{MLF}/registered-models/search",
            headers={"authorization": make_header(world.tokens)},
        )
        if status == 200:
            ok(response)
        else:
            mlflow_error(response, 401, "UNAUTHENTICATED")

    def test_revoking_stops_basic_at_once(self, world: World) -> None:
        header = {
            "authorization": "Basic "
            + base64.b64encode(f"late:{world.tokens['late']}".encode()).decode()
        }
        url = f"{MLF}/registered-models/search"
        ok(world[None].get(url, headers=header))
        revoked = world["root"].delete(f"{API}/tokens/{world.token_ids['late']}")
        assert revoked.status_code == 200, revoked.text
        mlflow_error(world[None].get(url, headers=header), 401, "UNAUTHENTICATED")

    WRITES: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "experiments/create", {"name": "vic-exp"}),
        (
            "POST",
            "experiments/set-experiment-tag",
            {"experiment_id": "0", "key": "k", "value": "v"},
        ),
        ("POST", "runs/create", {"experiment_id": "0"}),
        ("POST", "runs/update", {"run_id": "{run}", "status": "FAILED"}),
        ("POST", "runs/delete", {"run_id": "{run}"}),
        ("POST", "runs/log-batch", {"run_id": "{run}", "metrics": [{"key": "x", "value": 1}]}),
        ("POST", "runs/log-metric", {"run_id": "{run}", "key": "x", "value": 1}),
        ("POST", "runs/log-parameter", {"run_id": "{run}", "key": "x", "value": "1"}),
        ("POST", "runs/set-tag", {"run_id": "{run}", "key": "x", "value": "1"}),
        ("POST", "runs/outputs", {"run_id": "{run}", "models": [{"model_id": "{mid}"}]}),
        ("POST", "logged-models", {"experiment_id": "0"}),
        ("PATCH", "logged-models/{mid}", {"status": "LOGGED_MODEL_UPLOAD_FAILED"}),
        ("PATCH", "logged-models/{mid}/tags", {"tags": [{"key": "x", "value": "y"}]}),
        ("POST", "registered-models/create", {"name": "vic-model"}),
        ("PATCH", "registered-models/update", {"name": "alpha", "description": "x"}),
        ("POST", "registered-models/rename", {"name": "alpha", "new_name": "alpha2"}),
        ("DELETE", "registered-models/delete", {"name": "alpha"}),
        ("POST", "registered-models/set-tag", {"name": "alpha", "key": "k", "value": "v"}),
        ("POST", "registered-models/alias", {"name": "alpha", "alias": "x", "version": "1"}),
        ("POST", "model-versions/create", {"name": "alpha", "source": "models:/{mid}"}),
        ("PATCH", "model-versions/update", {"name": "alpha", "version": "1", "description": "x"}),
        (
            "POST",
            "model-versions/set-tag",
            {"name": "alpha", "version": "1", "key": "k", "value": "v"},
        ),
        (
            "POST",
            "model-versions/transition-stage",
            {"name": "alpha", "version": "1", "stage": "Staging"},
        ),
        ("DELETE", "model-versions/delete", {"name": "alpha", "version": "1"}),
    ]

    @pytest.mark.parametrize(("method", "rpc", "params"), WRITES)
    def test_viewer_cannot_write(
        self, world: World, method: str, rpc: str, params: dict[str, Any]
    ) -> None:
        response = call(world["vic"], method, world.fill(rpc), **world.fill(params))
        mlflow_error(response, 403, "PERMISSION_DENIED")

    @pytest.mark.parametrize("method", ["PUT", "DELETE"])
    def test_viewer_cannot_touch_artifacts(self, world: World, method: str) -> None:
        body = b"evil" if method == "PUT" else None
        response = world["vic"].request(method, f"{ART}/{world.logged}/model.pkl", content=body)
        mlflow_error(response, 403, "PERMISSION_DENIED")
        assert world["root"].get(f"{ART}/{world.logged}/model.pkl").content == LOGGED["model.pkl"]

    def test_viewer_left_the_run_alone(self, world: World) -> None:
        run = ok(call(world["vic"], "GET", "runs/get", run_id=world.run_id))["run"]
        assert run["info"]["status"] == "RUNNING"
        assert run["data"]["metrics"] == []

    BETA_WRITES: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "model-versions/create", {"name": "beta", "source": "models:/{mid}"}),
        (
            "POST",
            "model-versions/transition-stage",
            {"name": "beta", "version": "1", "stage": "Staging"},
        ),
        ("POST", "registered-models/alias", {"name": "beta", "alias": "champ", "version": "1"}),
        ("DELETE", "registered-models/alias", {"name": "beta", "alias": "champ"}),
        ("POST", "registered-models/set-tag", {"name": "beta", "key": "k", "value": "v"}),
        ("PATCH", "registered-models/update", {"name": "beta", "description": "x"}),
        (
            "POST",
            "model-versions/set-tag",
            {"name": "beta", "version": "1", "key": "k", "value": "v"},
        ),
        ("DELETE", "model-versions/delete", {"name": "beta", "version": "1"}),
        ("POST", "registered-models/rename", {"name": "beta", "new_name": "beta-x"}),
        ("DELETE", "registered-models/delete", {"name": "beta"}),
        ("DELETE", "registered-models/delete-tag", {"name": "beta", "key": "k"}),
        ("PATCH", "model-versions/update", {"name": "beta", "version": "1", "description": "x"}),
        ("DELETE", "model-versions/delete-tag", {"name": "beta", "version": "1", "key": "k"}),
        ("GET", "registered-models/get", {"name": "beta"}),
        ("GET", "registered-models/get-latest-versions", {"name": "beta"}),
        ("GET", "model-versions/get", {"name": "beta", "version": "1"}),
        ("GET", "model-versions/get-download-uri", {"name": "beta", "version": "1"}),
    ]

    @pytest.mark.parametrize(("method", "rpc", "params"), BETA_WRITES)
    def test_per_model_contributor_stays_in_her_model(
        self, world: World, method: str, rpc: str, params: dict[str, Any]
    ) -> None:
        response = call(world["carol"], method, rpc, **world.fill(params))
        # beta is answered as if it did not exist (issue 18, finding 10): creating a version
        # needs the right to create the model, anything else does not find it.
        if rpc == "model-versions/create":
            mlflow_error(response, 403, "PERMISSION_DENIED")
        else:
            mlflow_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
        absent = call(world["carol"], method, rpc, **world.fill({**params, "name": "gone"}))
        assert absent.status_code == response.status_code
        assert absent.json() == json.loads(response.text.replace("beta", "gone"))
        assert versions_of(world, "beta")[0] == "1"

    def test_per_model_contributor_registers_her_model(self, world: World) -> None:
        _, mid = log_model(world["carol"], {"model.pkl": b"carol"})
        assert int(register(world["carol"], "alpha", mid)) >= 2

    @pytest.mark.parametrize("who", ["carol", "pv"])
    def test_search_shows_only_readable_models(self, world: World, who: str) -> None:
        models = ok(call(world[who], "GET", "registered-models/search", filter="name LIKE '%'"))
        assert {m["name"] for m in models["registered_models"]} == {"alpha"}
        found = ok(call(world[who], "GET", "model-versions/search", filter="name LIKE '%'"))
        assert {v["name"] for v in found["model_versions"]} == {"alpha"}

    # What carol (contributor on alpha only) could do to dave's (beta) run and logged model
    # before dave registers it: swap its bytes, or its metrics (which a registration copies
    # into the version, where beta's production gate reads them).
    TAMPER: list[tuple[str, str, Any]] = [
        ("PUT", f"{ART}/0/models/{{mid}}/artifacts/model.pkl", b"carol-trojan"),
        ("PUT", f"{ART}/0/models/{{mid}}/artifacts/extra.py", b"import os"),
        ("DELETE", f"{ART}/0/models/{{mid}}/artifacts/model.pkl", None),
        ("POST", "runs/log-batch", {"run_id": "{run}", "metrics": [{"key": "auc", "value": 0.99}]}),
        ("POST", "runs/log-parameter", {"run_id": "{run}", "key": "lr", "value": "9"}),
        ("POST", "runs/delete", {"run_id": "{run}"}),
        ("PATCH", "logged-models/{mid}", {"status": "LOGGED_MODEL_UPLOAD_FAILED"}),
    ]

    @pytest.mark.parametrize(("method", "target", "body"), TAMPER)
    def test_other_teams_run_and_logged_model_are_not_writable(
        self, world: World, method: str, target: str, body: Any
    ) -> None:
        run, mid = log_model(world["dave"], {"model.pkl": b"dave-weights"}, metrics={"auc": 0.5})
        target = target.replace("{mid}", mid)
        if isinstance(body, dict):
            body = {
                k: (v.replace("{run}", run) if isinstance(v, str) else v) for k, v in body.items()
            }
            response = call(world["carol"], method, target, **body)
        else:
            response = world["carol"].request(method, target, content=body)
        mlflow_error(response, (403, 404))
        assert world["dave"].get(f"{ART}/0/models/{mid}/artifacts/model.pkl").content == (
            b"dave-weights"
        )
        data = ok(call(world["dave"], "GET", "runs/get", run_id=run))["run"]
        assert {m["key"]: m["value"] for m in data["data"]["metrics"]} == {"auc": 0.5}

    def test_runs_uri_cannot_be_hijacked_by_another_team(self, world: World) -> None:
        """``runs:/RUN/model`` names the run's newest logged model called "model": carol must
        not be able to add one to dave's run, or dave's ``register_model`` takes her bytes."""
        run, _ = log_model(world["dave"], {"model.pkl": b"dave-weights"})
        hijack = call(
            world["carol"],
            "POST",
            "logged-models",
            experiment_id="0",
            name="model",
            source_run_id=run,
        )
        if hijack.status_code == 200:
            mid = hijack.json()["model"]["info"]["model_id"]
            world["carol"].put(f"{ART}/0/models/{mid}/artifacts/model.pkl", content=b"carol-trojan")
        version = ok(
            call(
                world["dave"],
                "POST",
                "model-versions/create",
                name="beta",
                source=f"runs:/{run}/model",
            )
        )["model_version"]["version"]
        got = world["dave"].get(f"{ART}/_registry/beta/{version}/model.pkl")
        assert got.content == b"dave-weights"

    @pytest.mark.parametrize(
        "source",
        [
            "mlflow-artifacts:/0",
            "mlflow-artifacts:/0/models",
            "mlflow-artifacts:/0/models/{mid}",
            "mlflow-artifacts:/0/models/{mid}/artifacts",
            "models:/{mid}",
            "runs:/{run}/model",
        ],
    )
    def test_other_teams_files_cannot_be_copied_into_her_model(
        self, world: World, source: str
    ) -> None:
        """carol may read alpha's versions, so registering dave's unregistered files as an
        alpha version is reading them."""
        run, mid = log_model(world["dave"], {"model.pkl": b"dave-secret-weights"})
        source = source.replace("{mid}", mid).replace("{run}", run)
        response = call(
            world["carol"], "POST", "model-versions/create", name="alpha", source=source
        )
        if response.status_code == 200:
            version = response.json()["model_version"]["version"]
            files = walk(world["carol"], f"_registry/alpha/{version}")
            got = [world["carol"].get(f"{ART}/{f}").content for f in files]
            assert b"dave-secret-weights" not in got, (source, files)
        else:
            mlflow_error(response, (400, 403, 404))

    # What pv (viewer of alpha only) could read of dave's (beta) tracking data.
    PEEK: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"{ART}/0/models/{{mid}}/artifacts/model.pkl", {}),
        ("GET", ART, {"path": "0/models/{mid}/artifacts"}),
        ("GET", "runs/get", {"run_id": "{run}"}),
        ("GET", "metrics/get-history", {"run_id": "{run}", "metric_key": "auc"}),
        ("GET", "logged-models/{mid}", {}),
        ("POST", "logged-models/search", {"experiment_ids": ["0"]}),
    ]

    @pytest.mark.parametrize(("method", "target", "params"), PEEK)
    def test_per_model_viewer_cannot_read_other_teams_tracking(
        self, world: World, method: str, target: str, params: dict[str, Any]
    ) -> None:
        run, mid = log_model(world["dave"], {"model.pkl": b"dave-secret"}, metrics={"auc": 0.5})
        params = {
            k: (v.replace("{run}", run).replace("{mid}", mid) if isinstance(v, str) else v)
            for k, v in params.items()
        }
        response = call(world["pv"], method, target.replace("{mid}", mid), **params)
        if target.endswith("/search"):
            # A search may answer, without dave's model in it.
            assert response.status_code in (200, 403), response.text[:300]
            assert mid not in response.text
        else:
            assert response.status_code in (403, 404), (response.status_code, response.text[:300])
        assert b"dave-secret" not in response.content

    def test_rename_onto_a_deleted_name_never_reuses_its_numbers(self, world: World) -> None:
        root = world["root"]
        for _ in range(3):
            register(root, "tomb", world.model_id)
        ok(call(root, "DELETE", "registered-models/delete", name="tomb"))
        register(root, "tomb-other", world.model_id)
        ok(call(root, "POST", "registered-models/rename", name="tomb-other", new_name="tomb"))
        assert int(register(root, "tomb", world.model_id)) > 3


# -- 4b. experiments belong to their creator (issue 18, finding 7) --------------------------------


class TestExperiments:
    """Experiments are owned like runs: seen by their creator and registry-wide readers (and
    the shared Default by everyone), changed by their creator or an admin; an experiment the
    caller may not see answers as absent."""

    @staticmethod
    def _make(world: World, who: str, name: str) -> str:
        made = ok(call(world[who], "POST", "experiments/create", name=name))
        experiment_id: str = made["experiment_id"]
        return experiment_id

    @staticmethod
    def _tags(world: World, experiment_id: str) -> dict[str, str]:
        got = ok(call(world["root"], "GET", "experiments/get", experiment_id=experiment_id))
        return {t["key"]: t["value"] for t in got["experiment"]["tags"]}

    def test_another_teams_experiment_is_absent(self, world: World) -> None:
        theirs = self._make(world, "dave", "exp-dave-secret")
        mine = self._make(world, "carol", "exp-carol-own")
        carol = world["carol"]
        # Unseen answers exactly as a missing one, by id and by name.
        for rpc, key, hidden, absent in [
            ("experiments/get", "experiment_id", theirs, "999999"),
            ("experiments/get-by-name", "experiment_name", "exp-dave-secret", "exp-nobody-xx"),
        ]:
            seen = mlflow_error(
                call(carol, "GET", rpc, **{key: hidden}), 404, "RESOURCE_DOES_NOT_EXIST"
            )
            missing = mlflow_error(
                call(carol, "GET", rpc, **{key: absent}), 404, "RESOURCE_DOES_NOT_EXIST"
            )
            assert seen["message"].replace(hidden, "X") == missing["message"].replace(absent, "X")
        listed = ok(call(carol, "GET", "experiments/search"))["experiments"]
        assert {"0", mine} <= {e["experiment_id"] for e in listed}
        assert theirs not in {e["experiment_id"] for e in listed}
        # Nothing can be written into it either: tags, runs, logged models.
        for rpc, params in [
            ("experiments/set-experiment-tag", {"key": "owner", "value": "carol"}),
            ("runs/create", {}),
            ("logged-models", {"name": "planted"}),
        ]:
            response = call(carol, "POST", rpc, experiment_id=theirs, **params)
            mlflow_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
        assert self._tags(world, theirs) == {}
        # Her own experiment is hers to read, tag and log into.
        ok(call(carol, "GET", "experiments/get", experiment_id=mine))
        ok(
            call(
                carol,
                "POST",
                "experiments/set-experiment-tag",
                experiment_id=mine,
                key="k",
                value="v",
            )
        )
        ok(call(carol, "POST", "runs/create", experiment_id=mine))
        assert self._tags(world, mine) == {"k": "v"}

    def test_wide_readers_see_all_and_only_owners_and_admins_change(self, world: World) -> None:
        theirs = self._make(world, "dave", "exp-dave-shared")
        for who in ("vic", "con", "root"):
            ok(call(world[who], "GET", "experiments/get", experiment_id=theirs))
            listed = ok(call(world[who], "GET", "experiments/search"))["experiments"]
            assert theirs in {e["experiment_id"] for e in listed}
        # A registry-wide contributor logs runs into any experiment (as into any run) but does
        # not change another's experiment; the owner and an admin do.
        ok(call(world["con"], "POST", "runs/create", experiment_id=theirs))
        for who in ("con", "vic"):
            response = call(
                world[who],
                "POST",
                "experiments/set-experiment-tag",
                experiment_id=theirs,
                key="k",
                value=who,
            )
            mlflow_error(response, 403, "PERMISSION_DENIED")
        for who in ("dave", "root"):
            ok(
                call(
                    world[who],
                    "POST",
                    "experiments/set-experiment-tag",
                    experiment_id=theirs,
                    key=who,
                    value="1",
                )
            )
        assert self._tags(world, theirs) == {"dave": "1", "root": "1"}

    def test_the_default_experiment_is_shared_and_only_admins_change_it(self, world: World) -> None:
        for who in ("carol", "dave", "con"):
            ok(call(world[who], "POST", "runs/create", experiment_id="0"))
            got = ok(call(world[who], "GET", "experiments/get", experiment_id="0"))
            assert got["experiment"]["name"] == "Default"
            response = call(
                world[who],
                "POST",
                "experiments/set-experiment-tag",
                experiment_id="0",
                key="team",
                value=who,
            )
            mlflow_error(response, 403, "PERMISSION_DENIED")
        assert "team" not in self._tags(world, "0")
        ok(
            call(
                world["root"],
                "POST",
                "experiments/set-experiment-tag",
                experiment_id="0",
                key="team",
                value="platform",
            )
        )
        assert self._tags(world, "0")["team"] == "platform"


# -- 5. policy bypass -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gated(world: World) -> World:
    """The world plus model ``gated``: v1 (auc 0.5), v2 (auc 0.95) and a policy."""
    root = world["root"]
    for auc in (0.5, 0.95):
        _, mid = log_model(root, {"model.pkl": str(auc).encode()}, metrics={"auc": auc})
        register(root, "gated", mid)
    rules = {
        "production": {"requires": ["metrics.auc >= 0.9"]},
        "staging": {"approvals": 1},
        "@champion": {"approvals": 1},
    }
    for target, rule in rules.items():
        answer = root.put(f"{API}/models/gated/policy/{target}", json=rule)
        assert answer.status_code == 200, answer.text
    return world


class TestPolicy:
    def _stage(self, world: World, name: str, version: str) -> str:
        body = ok(call(world["root"], "GET", "model-versions/get", name=name, version=version))
        stage: str = body["model_version"]["current_stage"]
        return stage

    def test_gate_refuses_in_mlflow_format(self, gated: World) -> None:
        response = call(
            gated["con"],
            "POST",
            "model-versions/transition-stage",
            name="gated",
            version="1",
            stage="Production",
        )
        error = mlflow_error(response, (400, 409, 422), "INVALID_STATE")
        assert "auc" in error["message"]
        assert self._stage(gated, "gated", "1") == "None"

    def test_approval_leaves_a_pending_request(self, gated: World) -> None:
        response = call(
            gated["con"],
            "POST",
            "model-versions/transition-stage",
            name="gated",
            version="2",
            stage="Staging",
            archive_existing_versions="true",
        )
        mlflow_error(response, 409, "INVALID_STATE")
        assert self._stage(gated, "gated", "2") == "None"
        pending = gated["root"].get(
            f"{API}/promotions", params={"model": "gated", "state": "pending"}
        )
        assert any(p["version"] == 2 and p["target"] == "staging" for p in pending.json()["items"])

    def test_protected_alias_needs_approval(self, gated: World) -> None:
        for who in ("con", "root"):
            response = call(
                gated[who],
                "POST",
                "registered-models/alias",
                name="gated",
                alias="champion",
                version="2",
            )
            mlflow_error(response, 409, "INVALID_STATE")
        missing = call(
            gated["root"], "GET", "registered-models/alias", name="gated", alias="champion"
        )
        mlflow_error(missing, 400, "INVALID_PARAMETER_VALUE")

    def test_approved_protected_alias_cannot_be_removed_or_moved(self, gated: World) -> None:
        asked = call(
            gated["con"],
            "POST",
            "registered-models/alias",
            name="gated",
            alias="champion",
            version="2",
        )
        mlflow_error(asked, 409, "INVALID_STATE")
        pending = gated["root"].get(
            f"{API}/promotions", params={"model": "gated", "state": "pending"}
        )
        request = max(
            (
                p
                for p in pending.json()["items"]
                if p["target"] == "@champion" and p["requested_by"] == "con"
            ),
            key=lambda p: p["id"],
        )
        approved = gated["ann"].post(f"{API}/promotions/{request['id']}/approve", json={})
        assert approved.status_code == 200, approved.text
        holder = ok(
            call(gated["con"], "GET", "registered-models/alias", name="gated", alias="champion")
        )
        assert holder["model_version"]["version"] == "2"
        removed = call(
            gated["con"], "DELETE", "registered-models/alias", name="gated", alias="champion"
        )
        mlflow_error(removed, 403, "PERMISSION_DENIED")
        moved = call(
            gated["con"],
            "POST",
            "registered-models/alias",
            name="gated",
            alias="champion",
            version="1",
        )
        mlflow_error(moved, 409, "INVALID_STATE")
        holder = ok(
            call(gated["con"], "GET", "registered-models/alias", name="gated", alias="champion")
        )
        assert holder["model_version"]["version"] == "2"

    def test_production_version_cannot_be_deleted(self, gated: World) -> None:
        ok(
            call(
                gated["con"],
                "POST",
                "model-versions/transition-stage",
                name="gated",
                version="2",
                stage="Production",
            )
        )
        response = call(gated["ann"], "DELETE", "model-versions/delete", name="gated", version="2")
        mlflow_error(response, 409, "INVALID_STATE")
        assert self._stage(gated, "gated", "2") == "Production"

    def test_rename_keeps_the_rules_and_the_numbers(self, gated: World) -> None:
        root = gated["root"]
        ok(call(root, "POST", "registered-models/rename", name="gated", new_name="gated-renamed"))
        response = call(
            gated["con"],
            "POST",
            "model-versions/transition-stage",
            name="gated-renamed",
            version="1",
            stage="Production",
        )
        mlflow_error(response, (400, 409, 422), "INVALID_STATE")
        assert self._stage(gated, "gated-renamed", "1") == "None"
        ok(call(root, "POST", "registered-models/create", name="gated"))
        _, mid = log_model(root, {"model.pkl": b"new gated"})
        assert int(register(root, "gated", mid)) > 2
        # And the old numbers never resolve to the new model's bytes through the version view.
        got = root.get(f"{ART}/_registry/gated/1/model.pkl")
        mlflow_error(got, 404)


# -- 6. malformed input: always a 4xx in MLflow's format ------------------------------------------


def _token(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


NUMBER_400 = "1" + "0" * 400
MALFORMED: list[tuple[str, str, Any]] = [
    # (method, rpc, body: bytes (raw JSON body) | dict (GET query / JSON body))
    ("POST", "registered-models/create", b"not json"),
    ("POST", "registered-models/create", b"[1, 2]"),
    ("POST", "registered-models/create", b"null"),
    ("POST", "registered-models/create", b'"name"'),
    ("POST", "registered-models/create", b"\xff\xfe{}"),
    ("POST", "registered-models/create", b"[" * 50_000 + b"]" * 50_000),
    ("POST", "registered-models/create", b'{"name": ' * 20_000 + b"1" + b"}" * 20_000),
    ("POST", "registered-models/create", {"name": {"a": 1}}),
    ("POST", "registered-models/create", {"name": ["a", "b"]}),
    ("POST", "registered-models/create", {"name": "x" * 10_000}),
    ("POST", "registered-models/create", {"name": "bad tags", "tags": {"a": "b"}}),
    ("POST", "registered-models/create", {"name": "t1", "tags": [{"key": "a", "value": {"x": 1}}]}),
    ("POST", "registered-models/create", {"name": "t2", "tags": [{"key": 5, "value": "x"}]}),
    ("POST", "registered-models/create", {"name": "t3", "tags": "abc"}),
    ("DELETE", "registered-models/delete", b"garbage"),
    ("GET", "model-versions/get", {"name": "alpha", "version": "0"}),
    ("GET", "model-versions/get", {"name": "alpha", "version": "-1"}),
    ("GET", "model-versions/get", {"name": "alpha", "version": "1e9"}),
    ("GET", "model-versions/get", {"name": "alpha", "version": "abc"}),
    ("GET", "model-versions/get", {"name": "alpha", "version": "1234567890"}),
    ("GET", "model-versions/get", {"name": "alpha", "version": "1.0"}),
    ("GET", "model-versions/get", {"name": "alpha", "version": "\u00b2"}),
    ("GET", "model-versions/get", {"name": "alpha", "version": ""}),
    ("POST", "model-versions/transition-stage", {"name": "alpha", "version": "1", "stage": "Prod"}),
    (
        "POST",
        "model-versions/transition-stage",
        {"name": "alpha", "version": "1", "stage": ["Staging"]},
    ),
    (
        "POST",
        "model-versions/transition-stage",
        {"name": "alpha", "version": 1.5, "stage": "Staging"},
    ),
    ("POST", "registered-models/alias", {"name": "alpha", "alias": "../x", "version": "1"}),
    ("POST", "registered-models/alias", {"name": "alpha", "alias": "ok", "version": "1e9"}),
    ("GET", "registered-models/search", {"page_token": "!!!"}),
    ("GET", "registered-models/search", {"page_token": _token(b"[]")}),
    ("GET", "registered-models/search", {"page_token": _token(b'{"offset": -5}')}),
    ("GET", "registered-models/search", {"page_token": _token(b'{"offset": "x"}')}),
    ("GET", "registered-models/search", {"page_token": _token(b'{"offset": 1e999}')}),
    ("GET", "registered-models/search", {"page_token": _token(b'{"offset": NaN}')}),
    ("GET", "registered-models/search", {"page_token": _token(b"\xff\xfe")}),
    ("GET", "registered-models/search", {"max_results": "0"}),
    ("GET", "registered-models/search", {"max_results": "-1"}),
    ("GET", "registered-models/search", {"max_results": "1000000000"}),
    ("GET", "registered-models/search", {"max_results": "abc"}),
    ("GET", "registered-models/search", {"order_by": "name; DROP TABLE models"}),
    ("GET", "registered-models/search", {"order_by": ["name"] * 2100}),
    ("POST", "logged-models/search", b'{"experiment_ids": ["0"], "max_results": 1e999}'),
    ("POST", "logged-models/search", {"experiment_ids": ["0"], "max_results": 0}),
    ("POST", "logged-models/search", {"experiment_ids": ["0"], "page_token": "%%%"}),
    ("POST", "logged-models/search", {"experiment_ids": ["0"], "filter": "name = 'x' OR 1=1"}),
    ("POST", "experiments/search", b'{"max_results": 1e999}'),
    ("POST", "registered-models/get-latest-versions", {"name": "alpha", "stages": ["Bogus"]}),
    ("POST", "runs/create", b'{"experiment_id": "0", "start_time": 1e999}'),
    ("POST", "runs/create", {"experiment_id": "abc"}),
    ("POST", "runs/create", {"experiment_id": ["0"]}),
    ("POST", "runs/create", {"experiment_id": "999999"}),
    ("POST", "runs/create", {"experiment_id": "0", "tags": [{"key": "k", "value": {"a": 1}}]}),
    (
        "POST",
        "runs/log-metric",
        b'{"run_id": "{run}", "key": "m", "value": ' + NUMBER_400.encode() + b"}",
    ),
    ("POST", "runs/log-metric", b'{"run_id": "{run}", "key": "m", "value": 1, "timestamp": 1e999}'),
    ("POST", "runs/log-metric", b'{"run_id": "{run}", "key": "m", "value": 1, "step": 1e999}'),
    ("POST", "runs/log-metric", {"run_id": "{run}", "key": "m", "value": "abc"}),
    ("POST", "runs/log-metric", {"run_id": "{run}", "key": "m", "value": True}),
    ("POST", "runs/log-metric", {"run_id": "{run}", "key": "m", "value": 1, "step": "x"}),
    ("POST", "runs/log-metric", {"run_id": "{run}", "key": "", "value": 1}),
    ("POST", "runs/log-metric", {"run_id": "{run}", "key": {"a": 1}, "value": 1}),
    ("POST", "runs/log-parameter", {"run_id": "{run}", "key": "p", "value": "x" * 7000}),
    ("POST", "runs/update", {"run_id": "{run}", "status": ["FINISHED"]}),
    ("POST", "runs/update", {"run_id": "{run}", "status": {"a": 1}}),
    ("POST", "runs/update", {"run_id": "{run}", "status": "BOGUS"}),
    ("POST", "runs/update", {"run_id": "{run}", "end_time": "yesterday"}),
    ("PATCH", "logged-models/{mid}", {"status": {"a": 1}}),
    ("PATCH", "logged-models/{mid}", {"status": ["LOGGED_MODEL_READY"]}),
    ("PATCH", "logged-models/{mid}/tags", {"tags": {"k": "v"}}),
    (
        "POST",
        "runs/log-batch",
        {"run_id": "{run}", "metrics": [{"key": "m", "value": 1, "model_id": {"x": 1}}]},
    ),
    (
        "POST",
        "runs/log-batch",
        {"run_id": "{run}", "metrics": [{"key": "m", "value": 1, "model_id": ["x"]}]},
    ),
    (
        "POST",
        "runs/log-batch",
        {"run_id": "{run}", "params": [{"key": f"p{i}", "value": "v"} for i in range(2001)]},
    ),
    (
        "POST",
        "runs/log-batch",
        {"run_id": "{run}", "metrics": "not a list of metrics"},
    ),
    ("POST", "runs/log-batch", {"run_id": "{run}", "metrics": [1, 2, 3]}),
    ("POST", "runs/outputs", {"run_id": "{run}", "models": [{"model_id": "{mid}", "step": 1e300}]}),
    ("POST", "runs/outputs", {"run_id": "{run}", "models": ["{mid}"]}),
    ("GET", "runs/get", {"run_id": "../../etc/passwd"}),
    ("GET", "runs/get", {"run_id": ""}),
    ("GET", "metrics/get-history", {"run_id": "{run}"}),
    ("GET", "experiments/get", {"experiment_id": "1e9"}),
    ("GET", "experiments/get", {"experiment_id": "-1"}),
    ("GET", "experiments/get", {"experiment_id": "12345678901"}),
    ("POST", "experiments/create", {"name": "e-s3", "artifact_location": "s3://bucket/x"}),
    ("POST", "experiments/create", {"name": "e-file", "artifact_location": "file:///tmp"}),
    ("GET", "logged-models/m-zzz", {}),
    ("GET", ART, {"path": "../.."}),
    ("GET", ART, {"path": "0/../.."}),
    ("GET", ART, {"path": "_registry"}),
    ("GET", ART, {"path": "_registry/alpha/\u00b2"}),
    ("GET", ART, {"path": "a\x00b"}),
    ("GET", ART, {"path": "x" * 2000}),
    ("GET", f"{ART}/_registry/alpha/\u00b2/alpha.pkl", {}),
    ("GET", f"{ART}/_registry/alpha/1/%2e%2e/%2e%2e/x", {}),
    ("GET", f"{ART}/_registry/..%2f..%2fx/1/a", {}),
]
FILTERS = [
    "name = 'x' OR 1=1",
    "name = 'x",
    'name = "x',
    "name = 'x' AND",
    "name = 'x') OR ('1'='1",
    "tags.`a` = 'b'; DROP TABLE models",
    "name ~ 'x'",
    "name NOT LIKE 'x'",
    "name IN ()",
    "name IN ('a',)",
    "tags.k IN 'a'",
    "`name` = `x`",
    " AND ".join(["name = 'a'"] * 70),
    " AND ".join(["name = 'a'"] * 800),
    "name = " + "'" * 3,
    "bogus_field = 'x'",
]
VERSION_FILTERS = [
    "version_number = 99999999999999999999",
    "version_number = 1.5",
    "version_number IN (1, 'a')",
    "run_id = 'x' OR run_id = 'y'",
    "source_path = 'x' UNION SELECT 1",
]


def _case_id(index: int, method: str, rpc: str, body: Any) -> str:
    shown = body.decode(errors="replace") if isinstance(body, bytes) else json.dumps(body)
    text = f"{index:02d}-{method}-{rpc.removeprefix(ART).strip('/') or 'list'}-{shown[:48]}"
    return re.sub(r"[^A-Za-z0-9_.:=+-]+", "_", text)


def _send(world: World, method: str, rpc: str, body: Any) -> httpx.Response:
    client = world["root"]
    url = world.fill(rpc if rpc.startswith("/") else f"{MLF}/{rpc}")
    if isinstance(body, bytes):
        content = body.replace(b"{run}", world.run_id.encode()).replace(
            b"{mid}", world.model_id.encode()
        )
        headers = {"content-type": "application/json"}
        return client.request(method, url, content=content, headers=headers)
    if method == "GET":
        return client.get(url, params=world.fill(body))
    return client.request(method, url, json=world.fill(body))


def _assert_4xx(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert set(response.json()) == {"error_code", "message"}, response.text[:300]


class TestMalformed:
    @pytest.mark.parametrize(
        ("method", "rpc", "body"),
        MALFORMED,
        ids=[_case_id(i, m, r, b) for i, (m, r, b) in enumerate(MALFORMED)],
    )
    def test_answered_with_an_mlflow_4xx(
        self, world: World, method: str, rpc: str, body: Any
    ) -> None:
        _assert_4xx(_send(world, method, rpc, body))

    @pytest.mark.parametrize("text", FILTERS)
    @pytest.mark.parametrize("rpc", ["registered-models/search", "model-versions/search"])
    def test_filters(self, world: World, rpc: str, text: str) -> None:
        _assert_4xx(call(world["root"], "GET", rpc, filter=text))

    @pytest.mark.parametrize("text", VERSION_FILTERS)
    def test_version_filters(self, world: World, text: str) -> None:
        _assert_4xx(call(world["root"], "GET", "model-versions/search", filter=text))

    def test_text_plain_is_refused(self, world: World) -> None:
        response = world["root"].post(
            f"{MLF}/registered-models/create",
            content=b'{"name": "csrf"}',
            headers={"content-type": "text/plain"},
        )
        mlflow_error(response, 415)

    def test_unknown_route_and_method(self, world: World) -> None:
        mlflow_error(world["root"].get(f"{MLF}/nope"), 404, "ENDPOINT_NOT_FOUND")
        mlflow_error(world["root"].get(f"{MLF}/registered-models/create"), 405)

    def test_nan_and_infinity_metrics_round_trip(self, world: World) -> None:
        run = ok(call(world["con"], "POST", "runs/create", experiment_id="0"))["run"]["info"]
        body = (
            b'{"run_id": "%s", "metrics": [{"key": "a", "value": NaN, "timestamp": 1, "step": 0},'
            b' {"key": "b", "value": "Infinity", "timestamp": 1, "step": 0},'
            b' {"key": "c", "value": -Infinity, "timestamp": 1, "step": 0}]}'
        ) % run["run_id"].encode()
        ok(
            world["con"].post(
                f"{MLF}/runs/log-batch", content=body, headers={"content-type": "application/json"}
            )
        )
        data = ok(call(world["con"], "GET", "runs/get", run_id=run["run_id"]))["run"]["data"]
        values = {m["key"]: m["value"] for m in data["metrics"]}
        assert values == {"a": "NaN", "b": "Infinity", "c": "-Infinity"}
        history = ok(
            call(world["con"], "GET", "metrics/get-history", run_id=run["run_id"], metric_key="a")
        )
        assert history["metrics"][0]["value"] == "NaN"

    def test_nan_in_logged_inputs_does_not_break_the_run(self, world: World) -> None:
        run = ok(call(world["con"], "POST", "runs/create", experiment_id="0"))["run"]["info"]
        body = b'{"run_id": "%s", "datasets": [{"dataset": {"name": "d", "digest": NaN}}]}' % (
            run["run_id"].encode()
        )
        answer = world["con"].post(
            f"{MLF}/runs/log-inputs", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code in (200, 400), answer.text
        got = call(world["con"], "GET", "runs/get", run_id=run["run_id"])
        assert got.status_code == 200, got.text[:300]

    def test_conflicting_param_refuses_the_whole_batch(self, world: World) -> None:
        run = ok(call(world["con"], "POST", "runs/create", experiment_id="0"))["run"]["info"]
        rid = run["run_id"]
        ok(call(world["con"], "POST", "runs/log-parameter", run_id=rid, key="lr", value="0.1"))
        response = call(
            world["con"],
            "POST",
            "runs/log-batch",
            run_id=rid,
            params=[{"key": "lr", "value": "0.2"}, {"key": "other", "value": "1"}],
            metrics=[{"key": "loss", "value": 1.0, "timestamp": 1, "step": 0}],
            tags=[{"key": "t", "value": "1"}],
        )
        mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")
        data = ok(call(world["con"], "GET", "runs/get", run_id=rid))["run"]["data"]
        assert {p["key"]: p["value"] for p in data["params"]} == {"lr": "0.1"}
        assert data["metrics"] == []
        assert "t" not in {t["key"] for t in data["tags"]}

    def test_duplicate_params_in_one_batch_are_refused(self, world: World) -> None:
        """MLflow refuses one batch naming a param twice with different values; keeping either
        value silently loses the other."""
        run = ok(call(world["con"], "POST", "runs/create", experiment_id="0"))["run"]["info"]
        rid = run["run_id"]
        response = call(
            world["con"],
            "POST",
            "runs/log-batch",
            run_id=rid,
            params=[{"key": "lr", "value": "0.1"}, {"key": "lr", "value": "0.2"}],
            metrics=[{"key": "loss", "value": 1.0, "timestamp": 1, "step": 0}],
        )
        mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")
        data = ok(call(world["con"], "GET", "runs/get", run_id=rid))["run"]["data"]
        assert data["params"] == []
        assert data["metrics"] == []

    def test_2001_metrics_are_refused_whole(self, world: World) -> None:
        run = ok(call(world["con"], "POST", "runs/create", experiment_id="0"))["run"]["info"]
        metrics = [{"key": "m", "value": i, "timestamp": 1, "step": i} for i in range(2001)]
        response = call(
            world["con"], "POST", "runs/log-batch", run_id=run["run_id"], metrics=metrics
        )
        mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")
        data = ok(call(world["con"], "GET", "runs/get", run_id=run["run_id"]))["run"]["data"]
        assert data["metrics"] == []


# -- 8. gc keeps what the tree references ---------------------------------------------------------


class TestGc:
    def test_gc_keeps_unregistered_logged_models(self, world: World) -> None:
        unregistered = b"only-in-the-tree" * 64
        _, mid = log_model(world["con"], {"model.pkl": unregistered})
        _, mid2 = log_model(world["con"], {"model.pkl": b"registered-then-dropped" * 10})
        version = register(world["root"], "gc-kept", mid2)
        ok(world["root"].request("DELETE", f"{ART}/0/models/{mid2}/artifacts/model.pkl"))
        collected = world["root"].post(f"{API}/gc", json={"grace_seconds": 0})
        assert collected.status_code == 200, collected.text
        got = world["vic"].get(f"{ART}/0/models/{mid}/artifacts/model.pkl")
        assert got.status_code == 200, got.text
        assert got.content == unregistered
        kept = world["vic"].get(f"{ART}/_registry/gc-kept/{version}/model.pkl")
        assert kept.content == b"registered-then-dropped" * 10
        # The world's registered versions survive too.
        assert world["vic"].get(f"{ART}/_registry/alpha/1/alpha.pkl").content == ALPHA_BYTES


# -- 7. concurrency (both dialects) ---------------------------------------------------------------


def _parallel(jobs: list[Callable[[], list[int]]]) -> list[int]:
    barrier = threading.Barrier(len(jobs))

    def run(job: Callable[[], list[int]]) -> list[int]:
        barrier.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return [s for statuses in pool.map(run, jobs) for s in statuses]


class TestConcurrency:
    ROUNDS = 12

    def test_parallel_logging_loses_no_point(self, server: ServerProcess) -> None:
        base = server.url
        with httpx.Client(base_url=base, timeout=60) as setup:
            rid = ok(call(setup, "POST", "runs/create", experiment_id="0"))["run"]["info"]["run_id"]

        def logger(thread: int) -> Callable[[], list[int]]:
            def job() -> list[int]:
                statuses = []
                with httpx.Client(base_url=base, timeout=60) as client:
                    for i in range(self.ROUNDS):
                        if thread % 2:
                            r = call(
                                client,
                                "POST",
                                "runs/log-metric",
                                run_id=rid,
                                key="m",
                                value=i,
                                timestamp=1,
                                step=thread * 100 + i,
                            )
                        else:
                            points = [
                                {"key": "m", "value": j, "timestamp": 1, "step": thread * 100 + i}
                                for j in range(3)
                            ]
                            r = call(
                                client,
                                "POST",
                                "runs/log-batch",
                                run_id=rid,
                                metrics=points,
                                params=[{"key": f"p{thread}-{i}", "value": "v"}],
                            )
                        statuses.append(r.status_code)
                return statuses

            return job

        statuses = _parallel([logger(t) for t in range(8)])
        assert statuses == [200] * len(statuses), sorted(set(statuses))
        with httpx.Client(base_url=base, timeout=60) as client:
            history = ok(call(client, "GET", "metrics/get-history", run_id=rid, metric_key="m"))
            data = ok(call(client, "GET", "runs/get", run_id=rid))["run"]["data"]
        assert len(history["metrics"]) == 4 * self.ROUNDS + 4 * self.ROUNDS * 3
        assert len(data["params"]) == 4 * self.ROUNDS

    @pytest.mark.parametrize("precreated", [True, False])
    def test_parallel_registrations_number_contiguously(
        self, server: ServerProcess, precreated: bool
    ) -> None:
        base = server.url
        name = f"race-{precreated}".lower()
        with httpx.Client(base_url=base, timeout=60) as setup:
            if precreated:
                ok(call(setup, "POST", "registered-models/create", name=name))
            _, mid = log_model(setup, {"model.pkl": b"race"})
        numbers: list[str] = []

        def job() -> list[int]:
            with httpx.Client(base_url=base, timeout=60) as client:
                r = call(
                    client,
                    "POST",
                    "model-versions/create",
                    name=name,
                    source=f"models:/{mid}",
                    model_id=mid,
                )
                if r.status_code == 200:
                    numbers.append(r.json()["model_version"]["version"])
                return [r.status_code]

        statuses = _parallel([job] * 8)
        assert statuses == [200] * 8, statuses
        assert sorted(numbers, key=int) == [str(n) for n in range(1, 9)]

    def _logged_folder(self, base: str) -> tuple[str, str]:
        with httpx.Client(base_url=base, timeout=60) as setup:
            _, mid = log_model(setup, {"seed": b"s"})
        return f"0/models/{mid}/artifacts", f"{ART}/0/models/{mid}/artifacts"

    @staticmethod
    def _put(base: str, url: str) -> Callable[[], list[int]]:
        def job() -> list[int]:
            with httpx.Client(base_url=base, timeout=60) as client:
                return [client.put(url, content=url.encode()).status_code]

        return job

    def test_parallel_puts_of_one_new_path(self, server: ServerProcess) -> None:
        """MLflow clients retry uploads: the same new path written twice at once is not a 500."""
        _, folder = self._logged_folder(server.url)
        statuses = []
        for i in range(10):
            statuses += _parallel([self._put(server.url, f"{folder}/same{i}")] * 6)
        assert statuses == [200] * len(statuses), statuses

    def test_parallel_file_and_folder_never_both_land(self, server: ServerProcess) -> None:
        """``PUT cN`` and ``PUT cN/f`` racing: the tree keeps one of them, never both."""
        tree, folder = self._logged_folder(server.url)
        for i in range(10):
            _parallel(
                [self._put(server.url, f"{folder}/c{i}"), self._put(server.url, f"{folder}/c{i}/f")]
            )
        with httpx.Client(base_url=server.url, timeout=60) as client:
            listed = ok(call(client, "GET", ART, path=tree))["files"]
            clashes = [
                e["path"]
                for e in listed
                if e["is_dir"] and client.get(f"{folder}/{e['path']}").status_code == 200
            ]
        assert clashes == []

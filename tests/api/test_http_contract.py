"""The REST contract over real HTTP (httpx → uvicorn), table-driven: DESIGN.md §5 "REST".

SQLite only: these tests are about HTTP behaviour; the database suites cover both dialects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg
from server_process import ThreadedServer, unlogged_server_errors

API = "/api/v1"
SMALL = 1000  # max_upload_bytes and max_json_bytes of the small-limits server
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def db_url(sqlite_db_url: str) -> str:
    """SQLite only (see the module docstring)."""
    return sqlite_db_url


@dataclass
class Seeded:
    url: str
    home: Path
    inputs: Path
    v1: modelreg.Version
    v2: modelreg.Version


def _inputs(root: Path) -> Path:
    """Model files like conftest's ``files``: model.pkl and a nested model_dir/."""
    (root / "model_dir" / "sub").mkdir(parents=True)
    (root / "model.pkl").write_bytes(b"pickle-bytes" * 100)
    (root / "model_dir" / "weights.bin").write_bytes(b"\x00\x01" * 500)
    (root / "model_dir" / "sub" / "config.json").write_text('{"layers": 3}')
    return root


def _seed(url: str, settings: Any, inputs: Path) -> Seeded:
    """``fraud`` v1 (model.pkl + model_dir/, alias champion, stage production) and v2."""
    with modelreg.Registry(url) as reg:
        v1 = reg.register(
            "fraud",
            [inputs / "model.pkl", inputs / "model_dir"],
            metrics={"auc": 0.9},
            capture=False,
        )
        v2 = reg.register("fraud", inputs / "model.pkl", metrics={"auc": 0.95}, capture=False)
        reg.set_alias("fraud", "champion", 1)
    _set_stage(settings.db_url, "fraud", 1, "production")
    return Seeded(url, settings.home, inputs, v1, v2)


def _set_stage(db_url: str, name: str, number: int, stage: str) -> None:
    # No promotion route exists yet, so the test puts the stage in place in the database.
    from sqlalchemy import select

    from modelreg.db.session import make_engine, transaction
    from modelreg.db.tables import Model, Version
    from modelreg.names import Stage

    engine = make_engine(db_url)
    try:
        with transaction(engine, write=True) as session:
            version = session.scalars(
                select(Version).join(Model).where(Model.name == name, Version.number == number)
            ).one()
            version.stage = Stage(stage)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One seeded server for the read-mostly tables of this module (fast: seeded once).

    Tests using it may add models and blobs but never versions of ``fraud``.
    """
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    root = tmp_path_factory.mktemp("contract")
    home = root / "registry"
    home.mkdir()
    settings = Settings(home=home)
    with ThreadedServer(create_app(settings)) as server:
        yield _seed(server.url, settings, _inputs(root / "inputs"))


@pytest.fixture
def seeded(live_server: Any, home: Path, tmp_path: Path) -> Seeded:
    """A seeded server of this test's own, for tests that change ``fraud``."""
    from modelreg.config import Settings

    return _seed(live_server.url, Settings.for_home(home), _inputs(tmp_path / "seed-inputs"))


@pytest.fixture
def client(shared: Seeded) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared.url, timeout=30) as http:
        yield http


@pytest.fixture
def _no_server_tracebacks() -> Iterator[None]:
    """For tests that provoke a 500 on purpose (see ``unlogged_server_errors``)."""
    with unlogged_server_errors():
        yield


@pytest.fixture
def small(home: Path) -> Iterator[ThreadedServer]:
    """A second server on the same registry whose upload and JSON limits are ``SMALL`` bytes."""
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    settings = Settings.for_home(home).model_copy(
        update={"max_upload_bytes": SMALL, "max_json_bytes": SMALL}
    )
    with ThreadedServer(create_app(settings)) as server:
        yield server


def _assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "detail"}
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["detail"], dict)
    return error


def _assert_security_headers(response: httpx.Response) -> None:
    from modelreg.api.ui import is_ui_path
    from modelreg.api.ui.render import UI_CSP, UI_REFERRER_POLICY

    expected = dict(SECURITY_HEADERS)
    if is_ui_path(response.url.path):
        # A web UI page: its own policy, as strict (no inline script or style, no framing).
        expected["content-security-policy"] = UI_CSP
        expected["referrer-policy"] = UI_REFERRER_POLICY
    for key, value in expected.items():
        assert response.headers.get(key) == value, (key, response.status_code, response.url)


# -- the error envelope ---------------------------------------------------------------------

ZERO = "0" * 64
ERRORS = [
    # (id, method, path, request kwargs, status, code)
    ("unknown-model", "GET", f"{API}/models/nope", {}, 404, "model_not_found"),
    ("unknown-route", "GET", f"{API}/nowhere", {}, 404, "not_found"),
    ("unknown-version", "GET", f"{API}/models/fraud/versions/99", {}, 404, "version_not_found"),
    ("unknown-blob", "GET", f"{API}/blobs/sha256:{ZERO}", {}, 404, "blob_not_found"),
    (
        "unknown-alias",
        "GET",
        f"{API}/resolve",
        {"params": {"uri": "fraud@nope"}},
        404,
        "alias_not_found",
    ),
    (
        "bad-uri",
        "GET",
        f"{API}/resolve",
        {"params": {"uri": "models:/"}},
        400,
        "invalid_reference",
    ),
    ("missing-query", "GET", f"{API}/resolve", {}, 400, "invalid_input"),
    ("bad-page-size", "GET", f"{API}/models", {"params": {"page_size": 0}}, 400, "invalid_input"),
    (
        "bad-filter",
        "GET",
        f"{API}/models",
        {"params": {"filter": "name ==="}},
        400,
        "invalid_query",
    ),
    ("bad-name", "POST", f"{API}/models", {"json": {"name": "-bad"}}, 400, "invalid_name"),
    ("missing-field", "POST", f"{API}/models", {"json": {}}, 400, "invalid_input"),
    (
        "extra-field",
        "POST",
        f"{API}/models",
        {"json": {"name": "x", "owner": "me"}},
        400,
        "invalid_input",
    ),
    (
        "malformed-json",
        "POST",
        f"{API}/models",
        {"content": b"{", "headers": {"content-type": "application/json"}},
        400,
        "invalid_input",
    ),
    (
        "path-escape",
        "GET",
        f"{API}/models/fraud/versions/1/files/..%2Fsecret",
        {},
        400,
        "invalid_path",
    ),
    ("bad-digest", "PUT", f"{API}/blobs/sha256:xyz", {"content": b"x"}, 400, "invalid_input"),
    (
        "unregistered-blob",
        "POST",
        f"{API}/models/fraud/versions",
        {"json": {"files": [{"path": "a.bin", "sha256": ZERO, "size": 1}]}},
        404,
        "blob_not_found",
    ),
    ("wrong-method", "DELETE", f"{API}/versions", {}, 405, "method_not_allowed"),
    (
        "untyped-bodiless-write",
        "POST",
        f"{API}/promotions/1/approve",
        {},
        415,
        "unsupported_media_type",
    ),
    ("exists", "POST", f"{API}/models", {"json": {"name": "fraud"}}, 409, "already_exists"),
    (
        "text-plain",
        "POST",
        f"{API}/models",
        {"content": b'{"name": "x"}', "headers": {"content-type": "text/plain"}},
        415,
        "unsupported_media_type",
    ),
    (
        "form",
        "POST",
        f"{API}/models",
        {"data": {"name": "x"}},
        415,
        "unsupported_media_type",
    ),
    (
        "untyped-body",
        "PATCH",
        f"{API}/models/fraud",
        {"content": b'{"description": "x"}'},
        415,
        "unsupported_media_type",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [pytest.param(*case[1:], id=case[0]) for case in ERRORS],
)
def test_error_envelope(
    client: httpx.Client,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    _assert_envelope(client.request(method, path, **kwargs), status, code)


def test_json_body_over_the_limit_is_413(small: ThreadedServer) -> None:
    body = json.dumps({"name": "big", "description": "y" * 2 * SMALL})
    response = httpx.post(
        f"{small.url}{API}/models", content=body, headers={"content-type": "application/json"}
    )
    _assert_envelope(response, 413, "too_large")
    assert httpx.get(f"{small.url}{API}/models/big").status_code == 404
    # just under the limit is fine
    ok = httpx.post(f"{small.url}{API}/models", json={"name": "fine", "description": "y" * 100})
    assert ok.status_code == 201, ok.text


def test_chunked_json_body_over_the_limit_is_413(small: ThreadedServer) -> None:
    body = json.dumps({"name": "big", "description": "y" * 5 * SMALL}).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 256):
            yield body[i : i + 256]

    response = httpx.post(
        f"{small.url}{API}/models", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    _assert_envelope(response, 413, "too_large")
    assert httpx.get(f"{small.url}{API}/models/big").status_code == 404


@pytest.mark.parametrize("path", [f"{API}/models", f"{API}/versions"])
@pytest.mark.usefixtures("_no_server_tracebacks")
def test_huge_number_in_filter_is_invalid_input(client: httpx.Client, path: str) -> None:
    response = client.get(path, params={"filter": "metrics.auc > " + "9" * 5000})
    _assert_envelope(response, 400, "invalid_query")


# -- blobs ----------------------------------------------------------------------------------


def test_put_blob_with_wrong_digest_is_refused_and_stores_nothing(
    client: httpx.Client, shared: Seeded
) -> None:
    data = b"these bytes are not what the URL says"
    claimed = _digest(b"something else")
    response = client.put(f"{API}/blobs/sha256:{claimed}", content=data)
    _assert_envelope(response, 400, "digest_mismatch")
    assert client.head(f"{API}/blobs/sha256:{claimed}").status_code == 404
    assert client.head(f"{API}/blobs/sha256:{_digest(data)}").status_code == 404
    assert _stored_files(shared.home, claimed) == []
    assert _stored_files(shared.home, _digest(data)) == []
    assert _temporary_files(shared.home) == []


def _stored_files(home: Path, digest: str) -> list[Path]:
    return list((home / "blobs").rglob(f"*{digest}*"))


def _temporary_files(home: Path) -> list[Path]:
    tmp = home / "blobs" / "tmp"
    return list(tmp.iterdir()) if tmp.is_dir() else []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_blob_is_refused_and_stores_nothing(
    small: ThreadedServer, home: Path, chunked: bool
) -> None:
    data = b"x" * (SMALL + 1)
    digest = _digest(data)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(data), 100):
            yield data[i : i + 100]

    response = httpx.put(
        f"{small.url}{API}/blobs/sha256:{digest}", content=chunks() if chunked else data
    )
    assert ("content-length" in response.request.headers) is not chunked
    error = _assert_envelope(response, 400, "invalid_input")
    assert "limit" in error["message"]
    assert httpx.head(f"{small.url}{API}/blobs/sha256:{digest}").status_code == 404
    assert _stored_files(home, digest) == []
    assert _temporary_files(home) == []
    # exactly the limit is accepted
    fits = b"y" * SMALL
    ok = httpx.put(f"{small.url}{API}/blobs/sha256:{_digest(fits)}", content=fits)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"sha256": _digest(fits), "size": SMALL, "created": True}


def test_blob_upload_head_and_download(client: httpx.Client) -> None:
    data = b"fresh blob bytes"
    url = f"{API}/blobs/sha256:{_digest(data)}"
    assert client.head(url).status_code == 404
    first = client.put(url, content=data)
    assert first.status_code == 200
    assert first.json() == {"sha256": _digest(data), "size": len(data), "created": True}
    again = client.put(url, content=data)
    assert again.json()["created"] is False
    head = client.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(data))
    got = client.get(url)
    assert got.content == data
    assert got.headers["content-disposition"].startswith("attachment")


# -- files ----------------------------------------------------------------------------------


def test_file_download_is_an_attachment(client: httpx.Client, shared: Seeded) -> None:
    response = client.get(f"{API}/models/fraud/versions/1/files/model_dir/sub/config.json")
    assert response.status_code == 200
    assert response.content == (shared.inputs / "model_dir" / "sub" / "config.json").read_bytes()
    assert response.headers["content-type"] == "application/octet-stream"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment")
    assert 'filename="config.json"' in disposition


def test_range_request_on_a_file_download(client: httpx.Client, shared: Seeded) -> None:
    whole = (shared.inputs / "model.pkl").read_bytes()
    url = f"{API}/models/fraud/versions/1/files/model.pkl"
    response = client.get(url, headers={"range": "bytes=0-9"})
    assert response.status_code == 206
    assert response.content == whole[:10]
    assert response.headers["content-range"] == f"bytes 0-9/{len(whole)}"
    tail = client.get(url, headers={"range": "bytes=-5"})
    assert tail.status_code == 206
    assert tail.content == whole[-5:]


# -- security headers -----------------------------------------------------------------------

HEADER_REQUESTS = [
    ("model", "GET", f"{API}/models/fraud", {}),
    ("list", "GET", f"{API}/models", {}),
    ("create", "POST", f"{API}/models", {"json": {"name": "new"}}),
    ("resolve", "GET", f"{API}/resolve", {"params": {"uri": "fraud@champion"}}),
    ("file", "GET", f"{API}/models/fraud/versions/1/files/model.pkl", {}),
    (
        "range",
        "GET",
        f"{API}/models/fraud/versions/1/files/model.pkl",
        {"headers": {"range": "bytes=0-9"}},
    ),
    ("blob-head", "HEAD", f"{API}/blobs/sha256:{ZERO}", {}),
    ("not-found", "GET", f"{API}/models/nope", {}),
    ("no-route", "GET", "/nowhere", {}),
    ("bad-input", "GET", f"{API}/models", {"params": {"page_size": 0}}),
    ("wrong-method", "DELETE", f"{API}/versions", {}),
    ("openapi", "GET", "/openapi.json", {}),
    ("healthz", "GET", "/healthz", {}),
    ("readyz", "GET", "/readyz", {}),
]
MIDDLEWARE_ANSWERS = [
    (
        "415",
        "POST",
        f"{API}/models",
        {"content": b"{}", "headers": {"content-type": "text/plain"}},
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [pytest.param(*case[1:], id=case[0]) for case in HEADER_REQUESTS]
    + [pytest.param(*case[1:], id=case[0]) for case in MIDDLEWARE_ANSWERS],
)
def test_security_headers_on_every_response(
    client: httpx.Client, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    _assert_security_headers(client.request(method, path, **kwargs))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_security_headers_on_a_413(small: ThreadedServer, chunked: bool) -> None:
    body = json.dumps({"name": "big", "description": "y" * 2 * SMALL}).encode()
    response = httpx.post(
        f"{small.url}{API}/models",
        content=iter([body[:100], body[100:]]) if chunked else body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    _assert_security_headers(response)


# -- uploads are deduplicated ---------------------------------------------------------------


def test_reregistering_identical_files_sends_no_blob_bytes(seeded: Seeded) -> None:
    files = seeded.inputs
    puts: list[httpx.Request] = []
    others: list[httpx.Request] = []

    def count(request: httpx.Request) -> None:
        if request.method == "PUT" and "/blobs/" in request.url.path:
            puts.append(request)
        else:
            others.append(request)

    with modelreg.Registry(seeded.url) as reg:
        backend = reg.backend
        from modelreg.client._http import HttpBackend

        assert isinstance(backend, HttpBackend)
        backend._http.event_hooks["request"].append(count)
        again = reg.register(
            "fraud", [files / "model.pkl", files / "model_dir"], capture=False, metrics={"auc": 1}
        )
        # The manifest goes first and the server has every blob: one request, no HEADs.
        assert puts == []
        assert [(r.method, r.url.path) for r in others] == [
            ("POST", f"{API}/models/fraud/versions")
        ]
        assert len(again.files) == 3
        assert {f.sha256 for f in again.files} == {f.sha256 for f in seeded.v1.files}

        (files / "new.bin").write_bytes(b"never seen before")
        reg.register("fraud", [files / "model.pkl", files / "new.bin"], capture=False)
        assert [p.url.path for p in puts] == [f"{API}/blobs/sha256:{_digest(b'never seen before')}"]


# -- resolve --------------------------------------------------------------------------------

RESOLVE = [
    ("models:/fraud/1", 1),
    ("models:/fraud/2", 2),
    ("models:/fraud/production", 1),
    ("models:/fraud/Production", 1),
    ("models:/fraud@champion", 1),
    ("models:/fraud/latest", 2),
    ("fraud:1", 1),
    ("fraud:latest", 2),
    ("fraud@champion", 1),
    ("fraud/production", 1),
    ("fraud/latest", 2),
    ("fraud/2", 2),
]


@pytest.mark.parametrize(("uri", "number"), RESOLVE)
def test_resolve_every_uri_form(client: httpx.Client, uri: str, number: int) -> None:
    response = client.get(f"{API}/resolve", params={"uri": uri})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["version"]) == ("fraud", number)
    if number == 1:
        assert body["aliases"] == ["champion"]
        assert body["stage"] == "production"


@pytest.mark.parametrize(
    ("uri", "status", "code"),
    [
        ("models:/fraud/staging", 404, "version_not_found"),
        ("models:/fraud@nobody", 404, "alias_not_found"),
        ("models:/fraud/9", 404, "version_not_found"),
        ("models:/ghost/1", 404, "model_not_found"),
        ("models:/fraud", 400, "invalid_reference"),
        ("fraud", 400, "invalid_reference"),
        ("fraud:one", 400, "invalid_reference"),
        ("models:/../x/1", 400, "invalid_reference"),
        ("", 400, "invalid_reference"),
    ],
)
def test_resolve_refuses_what_names_no_version(
    client: httpx.Client, uri: str, status: int, code: str
) -> None:
    _assert_envelope(client.get(f"{API}/resolve", params={"uri": uri}), status, code)


def test_resolve_answers_the_same_as_the_version_route(client: httpx.Client) -> None:
    by_uri = client.get(f"{API}/resolve", params={"uri": "fraud@champion"}).json()
    by_number = client.get(f"{API}/models/fraud/versions/1").json()
    assert by_uri == by_number

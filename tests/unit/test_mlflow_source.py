"""The MLflow reader of ``modelreg import mlflow``, against canned answers (httpx.MockTransport).

SECURITY.md rule 1: only the ``--from`` server is contacted, only its ``mlflow-artifacts:`` store
is fetched from, redirects are not followed, and paths from its listings are checked before a
byte is written. Credentials go where MLflow's client sends them and never into lineage.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from modelreg import errors
from modelreg.client._mlflow_source import MlflowSource, SourceError, SourceFile


def source(handler, url="http://mlflow.test:5000"):
    return MlflowSource(url, transport=httpx.MockTransport(handler))


def answer(data, status=200):
    return httpx.Response(status, content=json.dumps(data).encode())


@pytest.fixture(autouse=True)
def _no_mlflow_env(monkeypatch):
    for var in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(var, raising=False)


class TestUrl:
    @pytest.mark.parametrize(
        ("given", "clean"),
        [
            ("http://mlflow.test:5000", "http://mlflow.test:5000"),
            ("http://mlflow.test:5000/", "http://mlflow.test:5000"),
            ("https://bob:s3cret@mlflow.test/prefix/?x=1#frag", "https://mlflow.test/prefix"),
            ("http://[::1]:5000", "http://[::1]:5000"),
        ],
    )
    def test_credentials_query_and_fragment_are_dropped(self, given, clean):
        assert source(lambda r: answer({}), given).url == clean

    @pytest.mark.parametrize("given", ["ftp://x", "mlflow.test:5000", "file:///tmp", "http://"])
    def test_only_http_urls(self, given):
        with pytest.raises(errors.InvalidInput):
            MlflowSource(given)


class TestCredentials:
    def seen(self, url="http://mlflow.test"):
        headers = {}

        def handler(request):
            headers.update(request.headers)
            return answer({})

        source(handler, url).check()
        return headers

    def test_none(self):
        assert "authorization" not in self.seen()

    def test_bearer_token(self, monkeypatch):
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok")
        assert self.seen()["authorization"] == "Bearer tok"

    def test_basic_from_env(self, monkeypatch):
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")
        assert self.seen()["authorization"] == httpx.BasicAuth("bob", "pw")._auth_header

    def test_basic_from_url(self):
        seen = self.seen("http://bob:pw@mlflow.test")
        assert seen["authorization"] == httpx.BasicAuth("bob", "pw")._auth_header

    @pytest.mark.parametrize("status", [401, 403])
    def test_refused_credentials(self, status):
        with pytest.raises(errors.Unauthenticated, match="MLFLOW_TRACKING_TOKEN"):
            source(lambda r: answer({"error_code": "UNAUTHENTICATED"}, status)).check()


class TestCheck:
    @pytest.mark.parametrize(
        "response",
        [
            httpx.Response(404, text="<html>not found</html>"),
            httpx.Response(200, text="<html>a web page</html>"),
            answer({"items": []}),
            answer([1, 2]),
        ],
    )
    def test_not_mlflow(self, response):
        with pytest.raises(errors.InvalidInput, match="does not answer as an MLflow server"):
            source(lambda r: response).check()

    def test_redirects_are_not_followed(self):
        def handler(request):
            if request.url.host == "elsewhere.test":
                raise AssertionError("followed a redirect")
            return httpx.Response(302, headers={"location": "http://elsewhere.test/"})

        with pytest.raises(errors.InvalidInput):
            source(handler).check()

    def test_unreachable(self):
        def handler(request):
            raise httpx.ConnectError("refused")

        with pytest.raises(errors.Unavailable, match="cannot reach the MLflow server"):
            source(handler).check()


class TestArtifactRoot:
    @pytest.mark.parametrize(
        ("uri", "root"),
        [
            ("mlflow-artifacts:/1/abc/artifacts/model", "1/abc/artifacts/model"),
            ("mlflow-artifacts://mlflow.test:5000/1/abc", "1/abc"),
            ("mlflow-artifacts://other.test:5000/1/abc", None),
            ("s3://bucket/model", None),
            ("file:///etc", None),
            ("dbfs:/models/x", None),
            ("http://mlflow.test:5000/x", None),
            ("runs:/abc/model", None),
            ("mlflow-artifacts:/1/../../etc", None),
            ("mlflow-artifacts:/", None),
            ("mlflow-artifacts:/1/x?y=1", None),
        ],
    )
    def test_only_this_servers_store(self, uri, root):
        assert source(lambda r: answer({})).artifact_root(uri) == root


def listing_handler(tree):
    def handler(request):
        assert request.url.path == "/api/2.0/mlflow-artifacts/artifacts"
        return answer({"files": tree.get(request.url.params["path"], [])})

    return handler


class TestFiles:
    def test_recurses_into_folders(self):
        tree = {
            "r": [
                {"path": "MLmodel", "is_dir": False, "file_size": 3},
                {"path": "sub", "is_dir": True},
            ],
            "r/sub": [{"path": "w.bin", "is_dir": False, "file_size": "5"}],
        }
        assert source(listing_handler(tree)).files("r") == [
            SourceFile("MLmodel", "r/MLmodel", 3),
            SourceFile("sub/w.bin", "r/sub/w.bin", 5),
        ]

    @pytest.mark.parametrize("name", ["..", "a\\b", "\x00x", " x"])
    def test_unsafe_names_fail_the_version(self, name):
        tree = {"r": [{"path": name, "is_dir": False, "file_size": 1}]}
        with pytest.raises(SourceError, match="cannot be stored"):
            source(listing_handler(tree)).files("r")

    def test_a_listing_cannot_climb_out(self):
        tree = {"r": [{"path": "../../etc/passwd", "is_dir": False, "file_size": 1}]}
        assert source(listing_handler(tree)).files("r") == [SourceFile("passwd", "r/passwd", 1)]


class TestFetch:
    def test_streams_and_checks_the_size(self, tmp_path: Path):
        body = b"x" * 3000
        seen = []
        got = source(lambda r: httpx.Response(200, content=body)).fetch(
            SourceFile("a/b.bin", "r/a/b.bin", 3000), tmp_path / "a" / "b.bin", seen.append
        )
        assert got == (3000, hashlib.sha256(body).hexdigest())
        assert sum(seen) == 3000
        assert (tmp_path / "a" / "b.bin").read_bytes() == body

    def test_a_short_file_fails(self, tmp_path: Path):
        with pytest.raises(SourceError, match="received 2 bytes, the listing said 3"):
            source(lambda r: httpx.Response(200, content=b"xx")).fetch(
                SourceFile("f", "r/f", 3), tmp_path / "f", None
            )

    def test_the_path_is_quoted(self, tmp_path: Path):
        paths = []

        def handler(request):
            paths.append(request.url.raw_path.decode())
            return httpx.Response(200, content=b"1")

        source(handler).fetch(SourceFile("a b#c", "r/a b#c", 1), tmp_path / "f", None)
        assert paths == ["/api/2.0/mlflow-artifacts/artifacts/r/a%20b%23c"]

    def test_an_error_answer_fails(self, tmp_path: Path):
        with pytest.raises(SourceError, match="HTTP 500"):
            source(lambda r: answer({"message": "boom"}, 500)).fetch(
                SourceFile("f", "r/f", 1), tmp_path / "f", None
            )

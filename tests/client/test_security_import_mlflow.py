"""``modelreg import mlflow`` against an MLflow server that cannot be trusted (issue 18).

Finding 11 ("the importer trusts its source", SECURITY.md rule 18): a real HTTP server on
loopback (a Starlette app served by uvicorn in a thread) lies about file sizes, streams
bodies with no end, repeats or never ends page tokens, sends huge or absurdly nested JSON and
redirects elsewhere. Each time the import must stop on its own bound with an error naming
what broke it, and leave no version with partial files behind.

Finding 6, importer side ("import poisoning"): a version already here whose
``lineage.imported_from`` names the MLflow version counts as imported only if its files
(paths, sizes, SHA-256) are MLflow's; a planted one is a conflict that no alias moves to.

"The MLflow import moves an MLflow Production version straight to production even under a
2-approval rule": stages are applied only with ``keep_stages`` (``--keep-stages``), and then
audited as a policy bypass; by default no stage is given and the summary says how to promote.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

import modelreg
from modelreg.client._mlflow_source import SourceLimits
from modelreg.client.mlflow_import import import_mlflow
from modelreg.errors import NotFound, Unavailable
from server_process import ThreadedServer

MiB = 1024 * 1024


class HostileMlflow:
    """MLflow's registry and artifact API, honest by default; each attribute is one lie."""

    def __init__(self) -> None:
        self.models: list[dict[str, Any]] = []
        self.versions: dict[str, list[dict[str, Any]]] = {}
        self.files: dict[str, bytes] = {}  # artifact path -> bytes
        self.listed_size: dict[str, Any] = {}  # artifact path -> the size the listing claims
        self.endless_file: dict[str, int] = {}  # artifact path -> bytes streamed instead
        self.announced: dict[str, int] = {}  # artifact path -> a Content-Length to send
        self.drip: set[str] = set()  # artifact paths sent one byte at a time, slowly
        self.listings: dict[str, list[dict[str, Any]]] = {}  # folder -> entries, instead
        self.model_pages = "one"  # "one", "repeat" (same token again) or "endless"
        self.version_pages: dict[str, str] = {}  # model -> "repeat" | "huge" | "nested"
        self.redirect_to: str | None = None  # answer artifact downloads with a redirect
        self.requests: list[str] = []
        self.sent = 0  # bytes of streamed file bodies actually produced
        self.lock = threading.Lock()

    def model(self, name: str, **fields: Any) -> None:
        self.models.append({"name": name, **fields})
        self.versions.setdefault(name, [])

    def version(self, name: str, number: int, files: dict[str, bytes], **fields: Any) -> None:
        self.versions[name].append(
            {
                "name": name,
                "version": str(number),
                "status": "READY",
                "uri": f"mlflow-artifacts:/art/{name}/{number}",
                **fields,
            }
        )
        for rel, data in files.items():
            self.files[f"art/{name}/{number}/{rel}"] = data

    def app(self) -> Starlette:
        prefix = "/api/2.0/mlflow"
        return Starlette(
            routes=[
                Route(f"{prefix}/registered-models/search", self.search_models),
                Route(f"{prefix}/model-versions/search", self.search_versions),
                Route(f"{prefix}/model-versions/get-download-uri", self.download_uri),
                Route(f"{prefix}/runs/get", self.run),
                Route("/api/2.0/mlflow-artifacts/artifacts", self.listing),
                Route("/api/2.0/mlflow-artifacts/artifacts/{path:path}", self.artifact),
            ]
        )

    async def search_models(self, request: Request) -> Response:
        self.requests.append("models")
        token = request.query_params.get("page_token")
        if self.model_pages == "repeat":
            return JSONResponse({"registered_models": self.models, "next_page_token": "again"})
        if self.model_pages == "endless":
            following = str(int(token or "0") + 1)
            return JSONResponse({"registered_models": [], "next_page_token": following})
        return JSONResponse({"registered_models": self.models})

    async def search_versions(self, request: Request) -> Response:
        name = request.query_params["filter"].split("=", 1)[1][1:-1]
        self.requests.append(f"versions {name}")
        mode = self.version_pages.get(name)
        if mode == "repeat":
            page = {"model_versions": self.versions[name], "next_page_token": "same"}
            return JSONResponse(page)
        if mode == "huge":
            return StreamingResponse(self._endless_json(request), media_type="application/json")
        if mode == "nested":
            return Response("[" * 200_000 + "]" * 200_000, media_type="application/json")
        return JSONResponse({"model_versions": self.versions[name]})

    async def _endless_json(self, request: Request) -> AsyncIterator[bytes]:
        yield b'{"model_versions": ["'
        # Made only while the client still reads: `sent` measures what the import took.
        while not await request.is_disconnected():
            chunk = b"x" * 65536
            with self.lock:
                self.sent += len(chunk)
            yield chunk

    async def download_uri(self, request: Request) -> Response:
        name, number = request.query_params["name"], request.query_params["version"]
        found = [v for v in self.versions[name] if v["version"] == number]
        return JSONResponse({"artifact_uri": found[0]["uri"]})

    async def run(self, request: Request) -> Response:
        return JSONResponse({"error_code": "RESOURCE_DOES_NOT_EXIST"}, status_code=404)

    async def listing(self, request: Request) -> Response:
        folder = request.query_params["path"]
        if folder in self.listings:
            return JSONResponse({"files": self.listings[folder]})
        out: dict[str, dict[str, Any]] = {}
        for path, data in self.files.items():
            if path.startswith(folder + "/"):
                first, _, rest = path[len(folder) + 1 :].partition("/")
                size = self.listed_size.get(path, len(data))
                entry = {"path": first, "is_dir": False, "file_size": size}
                out[first] = {"path": first, "is_dir": True} if rest else entry
        return JSONResponse({"files": list(out.values())})

    async def artifact(self, request: Request) -> Response:
        path = request.path_params["path"]
        self.requests.append(f"file {path}")
        if self.redirect_to is not None:
            return RedirectResponse(f"{self.redirect_to}/{path}", status_code=302)
        if path in self.endless_file:
            return StreamingResponse(self._stream(request, self.endless_file[path]))
        if path in self.drip:
            return StreamingResponse(self._drip())
        headers = {}
        if path in self.announced:
            headers["content-length"] = str(self.announced[path])
            return StreamingResponse(self._stream(request, self.announced[path]), headers=headers)
        if path not in self.files:
            return Response(status_code=404)
        return Response(self.files[path])

    async def _stream(self, request: Request, total: int) -> AsyncIterator[bytes]:
        chunk = b"\0" * 65536
        left = total
        while left > 0 and not await request.is_disconnected():
            piece = chunk[: min(left, len(chunk))]
            with self.lock:
                self.sent += len(piece)
            left -= len(piece)
            yield piece

    async def _drip(self) -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(0.05)
            yield b"x"


@pytest.fixture
def mlflow() -> Iterator[tuple[HostileMlflow, str]]:
    fake = HostileMlflow()
    with ThreadedServer(fake.app()) as server:
        yield fake, server.url


@pytest.fixture
def registry(tmp_path):
    reg = modelreg.Registry(tmp_path / "registry")
    yield reg
    reg.close()


def versions_of(summary: Any, name: str) -> dict[int, Any]:
    model = {m.name: m for m in summary.models}[name]
    return {v.version: v for v in model.versions}


def numbers(registry: modelreg.Registry, name: str) -> list[int]:
    try:
        return sorted(v.version for v in registry.list_versions(name))
    except NotFound:
        return []


# --------------------------------------------------------------------------------------------
# Finding 11: every read is bounded.


class TestHostileSource:
    @pytest.mark.parametrize("announce", [False, True], ids=["chunked", "content-length"])
    def test_a_file_larger_than_listed_is_cut_off_at_its_listed_size(
        self, mlflow, registry, announce
    ):
        fake, url = mlflow
        fake.model("m")
        fake.version("m", 1, {"weights.bin": b"0123456789", "MLmodel": b"ok"})
        fake.version("m", 2, {"a.bin": b"fine"})
        lie = "art/m/1/weights.bin"
        (fake.announced if announce else fake.endless_file)[lie] = 32 * MiB
        summary = import_mlflow(registry, url)
        v1 = versions_of(summary, "m")[1]
        assert v1.status == "failed"
        assert "weights.bin" in v1.reason
        assert "10 bytes the listing said" in v1.reason
        # Stopped long before the 32 MiB were made (what socket buffers held is all).
        assert fake.sent < 16 * MiB
        # Nothing half-imported: version 1 does not exist, version 2 is whole.
        assert numbers(registry, "m") == [2]
        assert summary.exit_code == 1

    @pytest.mark.parametrize("size", [None, -1, "ten", "1e3", True, "１０"])
    def test_a_file_without_a_valid_listed_size_is_not_read(self, mlflow, registry, size):
        fake, url = mlflow
        fake.model("m")
        fake.version("m", 1, {"a.bin": b"0123456789"})
        fake.listed_size["art/m/1/a.bin"] = size
        summary = import_mlflow(registry, url)
        v1 = versions_of(summary, "m")[1]
        assert (v1.status, summary.exit_code) == ("failed", 1)
        assert "'a.bin': the listing gives no valid size" in v1.reason
        assert not any(r.startswith("file ") for r in fake.requests)
        assert numbers(registry, "m") == []

    @pytest.mark.parametrize(
        ("entries", "words"),
        [
            (
                [{"path": "a", "is_dir": False, "file_size": 1}] * 2,
                "listed twice ('a'); not read",
            ),
            (
                [{"path": f"d{i}", "is_dir": True} for i in range(100_001)],
                "more than 100,000 entries ('d100000'); not read",
            ),
        ],
        ids=["a name twice", "too many folders"],
    )
    def test_a_listing_beyond_reason_is_not_followed(self, mlflow, registry, entries, words):
        fake, url = mlflow
        fake.model("m")
        fake.version("m", 1, {"a": b"1"})
        fake.listings["art/m/1"] = entries
        summary = import_mlflow(registry, url)
        v1 = versions_of(summary, "m")[1]
        assert v1.status == "failed"
        assert words in v1.reason
        assert not any(r.startswith("file ") for r in fake.requests)
        assert numbers(registry, "m") == []

    def test_a_repeated_page_token_stops_the_listing(self, mlflow, registry):
        fake, url = mlflow
        fake.model("m")
        fake.model_pages = "repeat"
        with pytest.raises(Unavailable, match="sent page token 'again' a second time"):
            import_mlflow(registry, url)
        # The check request, then the first page and the one that repeated its token.
        assert fake.requests.count("models") == 3
        assert list(registry.list_models()) == []

    def test_pagination_that_never_ends_stops_at_the_page_limit(self, mlflow, registry):
        fake, url = mlflow
        fake.model_pages = "endless"
        with pytest.raises(Unavailable, match="more than 5 pages"):
            import_mlflow(registry, url, limits=SourceLimits(max_pages=5))
        assert fake.requests.count("models") == 1 + 5

    def test_a_model_whose_version_pages_repeat_fails_alone(self, mlflow, registry):
        fake, url = mlflow
        for name in ("bad", "good"):
            fake.model(name)
            fake.version(name, 1, {"a": name.encode()})
        fake.version_pages["bad"] = "repeat"
        summary = import_mlflow(registry, url)
        models = {m.name: m for m in summary.models}
        assert models["bad"].status == "failed"
        assert "page token 'same' a second time" in models["bad"].reason
        assert models["good"].versions[0].status == "imported"
        assert (numbers(registry, "bad"), numbers(registry, "good")) == ([], [1])

    @pytest.mark.parametrize(
        ("mode", "words"),
        [("huge", "larger than the 1,048,576 bytes"), ("nested", "did not answer JSON")],
    )
    def test_huge_or_absurd_json_fails_that_listing(self, mlflow, registry, mode, words):
        fake, url = mlflow
        fake.model("m")
        fake.version("m", 1, {"a": b"1"})
        fake.version_pages["m"] = mode
        summary = import_mlflow(registry, url, limits=SourceLimits(max_json_bytes=MiB))
        model = summary.models[0]
        assert model.status == "failed"
        assert words in model.reason
        assert fake.sent < 16 * MiB  # an answer with no end was not read to its end
        assert numbers(registry, "m") == []

    def test_no_redirect_is_followed(self, mlflow, registry):
        fake, url = mlflow
        elsewhere = HostileMlflow()
        fake.model("m")
        fake.version("m", 1, {"a.bin": b"abc"})
        with ThreadedServer(elsewhere.app()) as other:
            elsewhere.model("m")
            elsewhere.version("m", 1, {"a.bin": b"abc"})
            fake.redirect_to = f"{other.url}/api/2.0/mlflow-artifacts/artifacts"
            summary = import_mlflow(registry, url)
        v1 = versions_of(summary, "m")[1]
        assert v1.status == "failed"
        assert "HTTP 302" in v1.reason
        assert elsewhere.requests == []
        assert numbers(registry, "m") == []

    def test_the_whole_import_stops_at_its_time_limit(self, mlflow, registry):
        fake, url = mlflow
        fake.model("m")
        fake.version("m", 1, {"a.bin": b"x" * 100_000})
        fake.drip.add("art/m/1/a.bin")  # would take more than an hour
        with pytest.raises(Unavailable, match="ran longer than its limit of 2 seconds"):
            import_mlflow(registry, url, limits=SourceLimits(max_seconds=2))
        assert numbers(registry, "m") == []

    def test_the_cli_reports_a_broken_limit_and_exits_1(self, mlflow, tmp_path, capsys):
        from modelreg.cli.main import main

        fake, url = mlflow
        fake.model_pages = "endless"
        home = str(tmp_path / "r")
        args = ["--registry", home, "import", "mlflow", "--from", url, "--max-pages", "3"]
        assert main([*args, "--json"]) == 1
        error = json.loads(capsys.readouterr().out)["error"]
        assert "more than 3 pages" in error["message"]
        assert "--max-pages" in error["message"]


# --------------------------------------------------------------------------------------------
# Finding 6, importer side: "already imported" is checked against MLflow's files.


def origin(url: str, name: str, number: int) -> str:
    return f"{url}/#/models/{name}/versions/{number}"


class TestImportPoisoning:
    @pytest.mark.parametrize(
        ("planted", "words"),
        [
            ({"model.bin": b"EVIL"}, "'model.bin' has other bytes here (its SHA-256 differs)"),
            ({"model.bin": b"EVIL!"}, "'model.bin' is 5 bytes here, 4 in MLflow"),
            ({"model.bin": b"GOOD", "extra.py": b"x"}, "'extra.py' is not in MLflow"),
            ({"other.bin": b"GOOD"}, "'model.bin' is missing here"),
        ],
        ids=["same size, other bytes", "other size", "extra file", "missing file"],
    )
    def test_a_planted_copy_is_a_conflict_and_gets_no_alias(
        self, mlflow, registry, tmp_path, planted, words
    ):
        fake, url = mlflow
        fake.model("m", aliases=[{"alias": "champion", "version": "2"}])
        fake.version("m", 1, {"model.bin": b"one"})
        fake.version("m", 2, {"model.bin": b"GOOD"}, current_stage="Production")
        # What a contributor could do before only admins could set imported_from (h3); the
        # registry folder's owner is an admin, which is what a test needs to plant it now.
        folder = tmp_path / "planted"
        for rel, data in planted.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        registry.register("m", folder, number=2, imported_from=origin(url, "m", 2), capture=False)
        summary = import_mlflow(registry, url, keep_stages=True)
        v2 = versions_of(summary, "m")[2]
        assert (v2.status, v2.conflict) == ("failed", True)
        assert words in v2.reason
        assert "not counted as imported" in v2.reason
        assert summary.exit_code == 6
        alias = summary.models[0].aliases[0]
        assert (alias.alias, alias.status) == ("champion", "skipped")
        model = registry.get_model("m")
        assert model.aliases == {}
        assert model.stages == {}  # not made production either

    def test_a_true_copy_is_present_and_gets_its_alias(self, mlflow, registry):
        fake, url = mlflow
        fake.model("m", aliases=[{"alias": "champion", "version": "1"}])
        fake.version("m", 1, {"model.bin": b"GOOD", "sub/conf.json": b"{}"})
        assert import_mlflow(registry, url).exit_code == 0
        registry.delete_alias("m", "champion")
        fake.requests.clear()
        summary = import_mlflow(registry, url)
        assert versions_of(summary, "m")[1].status == "present"
        assert summary.models[0].aliases[0].status == "set"
        assert registry.get_model("m").aliases == {"champion": 1}
        # Checking reads MLflow's files again (hashed, not stored).
        assert {r for r in fake.requests if r.startswith("file ")} == {
            "file art/m/1/model.bin",
            "file art/m/1/sub/conf.json",
        }

    def test_a_copy_whose_mlflow_files_cannot_be_read_is_not_trusted(
        self, mlflow, registry, tmp_path
    ):
        fake, url = mlflow
        fake.model("m")
        fake.version("m", 1, {}, uri="s3://bucket/m/1")
        (tmp_path / "f").write_bytes(b"planted")
        registry.register("m", tmp_path / "f", number=1, imported_from=origin(url, "m", 1))
        v1 = versions_of(import_mlflow(registry, url), "m")[1]
        assert (v1.status, v1.conflict) == ("failed", True)
        assert "it cannot be checked" in v1.reason


# --------------------------------------------------------------------------------------------
# Stages: only with --keep-stages, and then audited as bypassing the policy.


class TestStages:
    def setup(self, fake: HostileMlflow) -> None:
        fake.model("m")
        fake.version("m", 1, {"a": b"1"}, current_stage="Staging")
        fake.version("m", 2, {"a": b"2"}, current_stage="Production")
        fake.version("m", 3, {"a": b"3"}, current_stage="None")

    def test_by_default_no_stage_is_applied_and_the_summary_says_how(self, mlflow, registry):
        fake, url = mlflow
        self.setup(fake)
        registry.set_policy_rule("*", "production", approvals=2)
        summary = import_mlflow(registry, url)
        got = versions_of(summary, "m")
        assert {n: (v.stage, v.mlflow_stage) for n, v in got.items()} == {
            1: ("none", "staging"),
            2: ("none", "production"),
            3: ("none", "none"),
        }
        assert registry.get_model("m").stages == {}
        note = " ".join(summary.models[0].notes)
        assert "MLflow stages not applied" in note
        assert "modelreg promote m 1 --to staging" in note
        assert "modelreg promote m 2 --to production" in note
        assert "--keep-stages" in note
        # The way it names goes through the policy: two approvals are still needed.
        promotion = registry.promote("m", 2, "production")
        assert promotion.state == "pending"

    def test_keep_stages_applies_them_and_audits_the_bypass(self, mlflow, registry):
        fake, url = mlflow
        self.setup(fake)
        registry.set_policy_rule("*", "production", approvals=2)
        summary = import_mlflow(registry, url, keep_stages=True)
        assert summary.models[0].notes == []
        assert registry.get_model("m").stages == {"production": 2, "staging": 1}
        stage_events = [e for e in registry.audit("m") if e.action == "registry:version:stage"]
        assert [(e.target, e.after["stage"]) for e in stage_events] == [
            ("m:1", "staging"),
            ("m:2", "production"),
        ]
        production = stage_events[1]
        assert production.after["action"] == "import"
        assert production.after["bypassed_rule"]["approvals"] == 2
        assert production.after["imported_from"] == origin(url, "m", 2)
        assert "bypassing the promotion policy" in production.reason
        assert registry.verify_audit()["ok"]

    def test_the_cli_flag_and_its_help(self, mlflow, tmp_path, capsys):
        from modelreg.cli.main import main

        fake, url = mlflow
        self.setup(fake)
        home = str(tmp_path / "r")
        assert main(["--registry", home, "import", "mlflow", "--from", url]) == 0
        out = capsys.readouterr().out
        assert "(MLflow: production, not applied)" in out
        assert "modelreg promote m 2 --to production" in out
        assert main(["--registry", home, "import", "mlflow", "--help"]) == 0
        help_text = " ".join(capsys.readouterr().out.split())
        for words in ("--keep-stages", "bypassing this registry's promotion policy", "--max-time"):
            assert words in help_text

    def test_without_keep_stages_a_production_here_does_not_archive_mlflows(
        self, mlflow, registry, tmp_path
    ):
        fake, url = mlflow
        (tmp_path / "f").write_bytes(b"mine")
        registry.register("m", tmp_path / "f", capture=False)
        registry.promote("m", 1, "production")
        fake.model("m")
        fake.version("m", 2, {"a": b"2"}, current_stage="Production")
        summary = import_mlflow(registry, url)
        assert versions_of(summary, "m")[2].mlflow_stage == "production"
        assert "modelreg promote m 2 --to production" in summary.models[0].notes[0]
        assert registry.get_model("m").stages == {"production": 1}

"""Review of the cached-read fast path (api/answers.py): what it must never do.

Real servers on loopback, real SQLite and PostgreSQL. The embedded registry (or a separate
engine) on the same database stands in for another server process writing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

import modelreg
from modelreg.api.answers import CachedReads
from modelreg.api.cache import AnswerCache
from modelreg.db.session import make_engine, transaction
from modelreg.services import models
from modelreg.services.actor import Actor
from server_process import RequestLog, log_requests

MLFLOW = "/api/2.0/mlflow"


def _count_passed(app: Any) -> RequestLog:
    """Record what the running server's ``CachedReads`` layer passes on, to see hits."""
    return log_requests(app, behind=CachedReads)


def _held_bytes(cache: AnswerCache) -> int:
    """What the cache's entries really hold: request-derived keys and answer bodies."""
    total = 0
    for key, (_stamp, answer, _nbytes) in cache._entries._items.items():
        parts = key if isinstance(key, tuple) else (key,)
        total += sum(len(p) for p in parts if isinstance(p, str | bytes))
        total += len(answer.body)
    return total


def _artifact(tmp_path: Path) -> Path:
    artifact = tmp_path / "m.bin"
    artifact.write_bytes(b"w")
    return artifact


def test_remembered_requests_count_against_the_byte_budget(
    home: Path, live_server: Any, tmp_path: Path
) -> None:
    # Keys hold the request's query string, which the client chooses (up to ~80 KB through
    # uvicorn): counting only the answers' bodies let endless distinct queries keep many
    # times the budget (4096 entries x 80 KB = 320 MiB against 32 MiB).
    local = modelreg.Registry(home)
    local.register("m", _artifact(tmp_path))
    local.close()
    budget = 256 * 1024
    cache = AnswerCache(max_bytes=budget)
    live_server.app.state.registry.answers = cache
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        for i in range(30):
            pad = f"{i}-" + "x" * 20_000
            resolved = http.get("/api/v1/resolve", params={"uri": "m:1", "pad": pad})
            assert resolved.status_code == 200
            read = http.get(f"{MLFLOW}/registered-models/get", params={"name": "m", "pad": pad})
            assert read.status_code == 200
            assert _held_bytes(cache) <= budget + 4096, (i, _held_bytes(cache))
        # Still answered from memory: the budget evicts, it does not turn remembering off.
        passed = _count_passed(live_server.app)
        for _ in range(2):
            assert http.get("/api/v1/resolve", params={"uri": "m:1", "pad": "1"}).status_code == 200
        assert passed.paths.count("/api/v1/resolve") == 1


def test_every_kind_of_write_elsewhere_ends_a_remembered_answer(
    home: Path, db_url: str, live_server: Any, tmp_path: Path
) -> None:
    # Each read is first remembered (the second request never reaches the router), then
    # another writer changes what it says: the next request must see the change.
    artifact = _artifact(tmp_path)
    local = modelreg.Registry(home)
    local.register("m", artifact)
    local.register("m", artifact)
    local.register("other", artifact)
    passed = _count_passed(live_server.app)

    def remembered(http: httpx.Client, path: str, params: dict[str, str]) -> httpx.Response:
        first = http.get(path, params=params)
        before = len(passed.paths)
        second = http.get(path, params=params)
        assert len(passed.paths) == before, "the second read was not answered from memory"
        assert second.content == first.content
        return second

    def after_a_write(http: httpx.Client, path: str, params: dict[str, str]) -> httpx.Response:
        # Another request first, so the caller is known under the new stamp: then only the
        # answer's own stamp stands between the caller and the old answer.
        assert http.get("/api/v1/models").status_code == 200
        return http.get(path, params=params)

    staging = {"uri": "models:/m/staging"}
    model = {"name": "m"}
    search = {"filter": "name = 'other'"}
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        local.promote("m", 1, "staging")
        assert remembered(http, "/api/v1/resolve", staging).json()["version"] == 1
        local.promote("m", 2, "staging")  # a stage change
        assert after_a_write(http, "/api/v1/resolve", staging).json()["version"] == 2

        get_model = f"{MLFLOW}/registered-models/get"
        assert "description" not in remembered(http, get_model, model).json()["registered_model"]
        local.set_description("m", "now described")
        described = after_a_write(http, get_model, model).json()["registered_model"]
        assert described["description"] == "now described"

        assert [v["name"] for v in remembered(http, "/api/v1/versions", search).json()["items"]]
        local.delete("other", reason="gone")  # a deleted model leaves every search
        assert after_a_write(http, "/api/v1/versions", search).json()["items"] == []

        remembered(http, "/api/v1/resolve", {"uri": "m:2"})
        engine = make_engine(db_url)  # a rename, by another process's engine
        with transaction(engine, write=True) as session:
            models.rename_model(session, "m", "renamed", actor=Actor("admin"))
        engine.dispose()
        gone = after_a_write(http, "/api/v1/resolve", {"uri": "m:2"})
        assert gone.status_code == 404, gone.text
        assert http.get("/api/v1/resolve", params={"uri": "renamed:2"}).status_code == 200
    local.close()


def test_a_forwarded_peer_never_gets_the_loopback_owners_answers(
    home: Path, live_server: Any, tmp_path: Path
) -> None:
    # Laptop mode answers loopback clients only. uvicorn trusts X-Forwarded-For from
    # 127.0.0.1 (a local reverse proxy), so such a request's peer is the remote client: a
    # remembered answer must not reach it although the TCP peer is loopback.
    local = modelreg.Registry(home)
    local.register("m", _artifact(tmp_path))
    local.close()
    params = {"uri": "m:1"}
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        for _ in range(2):  # remembered for the owner on loopback
            assert http.get("/api/v1/resolve", params=params).status_code == 200
        remote = {"x-forwarded-for": "203.0.113.7"}
        for _ in range(2):
            refused = http.get("/api/v1/resolve", params=params, headers=remote)
            assert refused.status_code == 401, refused.text
        mlflow = f"{MLFLOW}/registered-models/get"
        assert http.get(mlflow, params={"name": "m"}).status_code == 200
        assert http.get(mlflow, params={"name": "m"}, headers=remote).status_code == 401

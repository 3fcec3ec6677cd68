"""The server's answers cached under the change stamp stay correct when anyone else writes.

The server caches resolutions and authenticated actors per process. Every write elsewhere (the
embedded registry on the same database stands in for another server or worker) moves the
audit head, so the next request sees it at once: no stale alias, no revoked token accepted.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg
from modelreg.api import deps
from modelreg.api.answers import CachedReads, answer_key
from modelreg.api.cache import StampedCache
from modelreg.db.schema import ensure_schema
from modelreg.db.session import make_engine, transaction
from modelreg.db.stamp import SqliteStampReader
from modelreg.db.stamp import current as stamp_of
from modelreg.services import auth
from server_process import RequestLog, log_requests


def test_an_alias_moved_elsewhere_is_seen_by_the_next_resolve(home: Path, live_server, tmp_path):
    artifact = tmp_path / "m.bin"
    artifact.write_bytes(b"w")
    local = modelreg.Registry(home)
    local.register("m", artifact, metrics={"acc": 0.5})
    local.register("m", artifact, metrics={"acc": 0.6})
    local.set_alias("m", "champion", 1)
    remote = modelreg.Registry(live_server.url)
    for _ in range(3):  # the second and third come from the cache
        assert remote.get_version("m@champion").version == 1
    local.set_alias("m", "champion", 2)  # another writer: the server's cache is not told
    assert remote.get_version("m@champion").version == 2
    local.set_tags("m:2", {"validated": "yes"})
    assert remote.get_version("m@champion").tags == {"validated": "yes"}
    local.delete_alias("m", "champion")
    with pytest.raises(modelreg.AliasNotFound):
        remote.get_version("m@champion")
    remote.close()
    local.close()


def test_a_token_revoked_elsewhere_stops_working_at_once(home: Path, live_server, tmp_path):
    artifact = tmp_path / "m.bin"
    artifact.write_bytes(b"w")
    local = modelreg.Registry(home)
    local.register("m", artifact)
    local.create_user("reader", role="viewer")
    issued = local.create_token("reader")
    remote = modelreg.Registry(live_server.url, token=issued["token"])
    assert remote.get_version("m:1").version == 1
    assert remote.get_version("m:1").version == 1  # actor and answer cached
    local.revoke_token(issued["id"])
    with pytest.raises(modelreg.Unauthenticated):
        remote.get_version("m:1")
    remote.close()
    local.close()


def test_a_cached_answer_is_still_checked_against_the_reader(home: Path, live_server, tmp_path):
    artifact = tmp_path / "m.bin"
    artifact.write_bytes(b"w")
    local = modelreg.Registry(home)
    local.register("m", artifact)
    local.register("other", artifact)
    local.create_user("wide", role="viewer")
    local.create_user("narrow", role="viewer", model="other")
    wide = modelreg.Registry(live_server.url, token=local.create_token("wide")["token"])
    narrow = modelreg.Registry(live_server.url, token=local.create_token("narrow")["token"])
    assert wide.get_version("m:1").version == 1  # now cached
    with pytest.raises(modelreg.ModelNotFound):  # unreadable is absent, cached or not
        narrow.get_version("m:1")
    for registry in (wide, narrow, local):
        registry.close()


def test_the_cache_is_bounded_and_keyed_by_stamp():
    cache = StampedCache(size=2)
    cache.put("a", 1, "A")
    cache.put("b", 1, "B")
    assert cache.get("a", 1) == "A"
    assert cache.get("a", 2) is None  # another stamp: stale
    cache.put("c", 1, "C")  # evicts the least recently used, "b"
    assert cache.get("b", 1) is None
    assert len(cache) == 2


def test_the_cache_is_bounded_by_bytes_whatever_the_keys():
    cache = StampedCache(size=1000, max_bytes=800)
    for i in range(50):  # endless distinct query strings, 100 bytes each
        cache.put(("answer", "/api/v1/versions", str(i).encode()), 1, b"x" * 100, 100)
        assert cache.nbytes <= 800
    assert len(cache) == 8
    assert cache.get(("answer", "/api/v1/versions", b"49"), 1) == b"x" * 100
    assert cache.get(("answer", "/api/v1/versions", b"0"), 1) is None
    cache.put("big", 1, b"y" * 200, 200)  # over an eighth of the budget: not kept
    assert cache.get("big", 1) is None
    cache.put(("answer", "/api/v1/versions", b"49"), 2, b"z", 1)  # replacing frees the old
    assert cache.nbytes == 7 * 100 + 1


# -- the fast path: remembered answers served before routing (api/answers.py) ----------------


def _count_passed(app: Any) -> RequestLog:
    """Record what the running server's ``CachedReads`` layer passes on, to see hits."""
    return log_requests(app, behind=CachedReads)


def _without_date(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k != "date"}


def test_a_remembered_answer_is_byte_identical_and_skips_the_router(
    home: Path, live_server, tmp_path
):
    artifact = tmp_path / "m.bin"
    artifact.write_bytes(b"w")
    local = modelreg.Registry(home)
    local.register("m", artifact, metrics={"acc": 0.5})
    local.set_alias("m", "champion", 1)
    token = local.create_token(local.create_user("reader", role="viewer")["name"])["token"]
    passed = _count_passed(live_server.app)
    headers = {"authorization": f"Bearer {token}"}
    mlflow = "/api/2.0/mlflow/registered-models/alias"
    with httpx.Client(base_url=live_server.url, headers=headers) as http:
        for path, params in (
            ("/api/v1/resolve", {"uri": "models:/m@champion"}),
            (mlflow, {"name": "m", "alias": "champion"}),
        ):
            first = http.get(path, params=params)  # slow path: computes and remembers
            second = http.get(path, params=params)
            third = http.get(path, params=params)
            assert first.status_code == second.status_code == third.status_code == 200
            assert first.content == second.content == third.content
            assert _without_date(first) == _without_date(second) == _without_date(third)
            assert "x-content-type-options" in second.headers  # the outer guards still apply
            assert passed.paths.count(path) == 1, passed.paths
        # Another query string is another answer; a HEAD, a body or a POST never hit.
        assert http.get("/api/v1/resolve", params={"uri": "m:1"}).json()["version"] == 1
        assert passed.paths.count("/api/v1/resolve") == 2
        at = {"uri": "models:/m@champion", "at": "2999-01-01T00:00:00Z"}
        for _ in range(2):  # "at" may be relative, so its answers are never remembered
            assert http.get("/api/v1/resolve", params=at).status_code == 200
        assert passed.paths.count("/api/v1/resolve") == 4
        body = http.request(
            "GET", "/api/v1/resolve", params={"uri": "models:/m@champion"}, content=b"{}"
        )
        assert body.status_code == 200
        assert passed.paths.count("/api/v1/resolve") == 5
    local.close()


def test_a_remembered_answer_is_never_served_to_someone_else(home: Path, live_server, tmp_path):
    artifact = tmp_path / "m.bin"
    artifact.write_bytes(b"w")
    local = modelreg.Registry(home)
    local.register("m", artifact)
    local.register("other", artifact)
    local.create_user("wide", role="viewer")
    local.create_user("narrow", role="viewer", model="other")
    wide = {"authorization": f"Bearer {local.create_token('wide')['token']}"}
    narrow = {"authorization": f"Bearer {local.create_token('narrow')['token']}"}
    params = {"uri": "m:1"}
    with httpx.Client(base_url=live_server.url) as http:
        for _ in range(2):
            assert http.get("/api/v1/resolve", params=params, headers=wide).status_code == 200
        denied = http.get("/api/v1/resolve", params=params, headers=narrow)
        assert denied.status_code == 404
        assert denied.json()["error"]["code"] == "model_not_found"
        anonymous = http.get("/api/v1/resolve", params=params)
        assert anonymous.status_code == 401
        forged = http.get("/api/v1/resolve", params=params, headers={"authorization": "Bearer x"})
        assert forged.status_code == 401
    local.close()


def test_answer_keys_only_for_bodiless_gets():
    base = {"type": "http", "path": "/api/v1/resolve", "query_string": b"uri=m%3A1"}
    assert answer_key({**base, "method": "GET", "headers": []}) is not None
    assert answer_key({**base, "method": "GET", "headers": [(b"content-length", b"0")]})
    assert answer_key({**base, "method": "HEAD", "headers": []}) is None
    assert answer_key({**base, "method": "POST", "headers": []}) is None
    for header in ((b"content-length", b"2"), (b"transfer-encoding", b"chunked")):
        assert answer_key({**base, "method": "GET", "headers": [header]}) is None
    other = answer_key({**base, "method": "GET", "headers": [], "query_string": b"uri=m%3A2"})
    assert other != answer_key({**base, "method": "GET", "headers": []})


def test_the_sqlite_stamp_reader_agrees_and_never_creates_a_database(tmp_path: Path):
    database = tmp_path / "registry.db"
    engine = make_engine(f"sqlite:///{database}")
    ensure_schema(engine, create=True)
    reader = SqliteStampReader.for_engine(engine)
    assert reader is not None
    with transaction(engine, write=False) as session:
        assert reader.read() == stamp_of(session)
    reader.close()
    engine.dispose()
    database.unlink()
    for suffix in ("-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    assert reader.read() is None  # the slow path then reports the real problem
    assert not database.exists()
    assert SqliteStampReader.for_engine(make_engine("sqlite://")) is None
    assert SqliteStampReader.for_engine(make_engine("postgresql+psycopg://u@h/db")) is None


def test_a_token_that_expires_stops_working_though_its_actor_is_cached(
    home: Path, live_server, tmp_path, monkeypatch
):
    artifact = tmp_path / "m.bin"
    artifact.write_bytes(b"w")
    local = modelreg.Registry(home)
    local.register("m", artifact)
    local.create_user("reader", role="viewer")
    token = local.create_token("reader", expires_days=1)["token"]
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_server.url, headers=headers) as http:
        for _ in range(2):  # actor and answer now cached; nothing changes the stamp below
            assert http.get("/api/v1/resolve", params={"uri": "m:1"}).status_code == 200
        later = deps.utcnow() + timedelta(days=2)
        # The server runs in this process: move its clock past the token's expiry.
        monkeypatch.setattr(deps, "utcnow", lambda: later)
        monkeypatch.setattr(auth, "utcnow", lambda: later)
        expired = http.get("/api/v1/resolve", params={"uri": "m:1"})
        assert expired.status_code == 401
    local.close()


def test_a_remembered_search_is_served_only_to_readers_of_every_model(
    home: Path, live_server, tmp_path
):
    artifact = tmp_path / "m.bin"
    artifact.write_bytes(b"w")
    local = modelreg.Registry(home)
    local.register("m", artifact, metrics={"acc": 0.9})
    local.register("other", artifact, metrics={"acc": 0.8})
    local.create_user("wide", role="viewer")
    local.create_user("narrow", role="viewer", model="other")
    wide = {"authorization": f"Bearer {local.create_token('wide')['token']}"}
    narrow = {"authorization": f"Bearer {local.create_token('narrow')['token']}"}
    passed = _count_passed(live_server.app)
    params = {"filter": "metrics.acc > 0.5"}
    with httpx.Client(base_url=live_server.url) as http:
        pages = [http.get("/api/v1/versions", params=params, headers=wide) for _ in range(3)]
        assert {v["name"] for v in pages[0].json()["items"]} == {"m", "other"}
        assert pages[0].content == pages[1].content == pages[2].content
        assert passed.paths.count("/api/v1/versions") == 1
        for _ in range(2):  # never the remembered page: only what this reader may see
            mine = http.get("/api/v1/versions", params=params, headers=narrow)
            assert [v["name"] for v in mine.json()["items"]] == ["other"]
        assert passed.paths.count("/api/v1/versions") == 3
        local.register("m", artifact, metrics={"acc": 0.95})  # the stamp moves
        fresh = http.get("/api/v1/versions", params=params, headers=wide).json()["items"]
        assert len(fresh) == 3
    local.close()

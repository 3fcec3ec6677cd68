"""The server's answers cached under the change stamp stay correct when anyone else writes.

The server caches resolutions and authenticated actors per process. Every write elsewhere (the
embedded registry on the same database stands in for another server or worker) moves the
audit head, so the next request sees it at once: no stale alias, no revoked token accepted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import modelreg
from modelreg.services.stamp import StampedCache


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
    with pytest.raises(modelreg.PermissionDenied):
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

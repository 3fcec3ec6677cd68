"""Review of the client's digest cache: who can make it answer with a digest of their choosing.

Real files, real SQLite, a real server on loopback.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelreg
from modelreg.client._digest_cache import DigestCache, _signature
from server_process import ThreadedServer

MiB = 1024 * 1024

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the cache is POSIX-only")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadedServer]:
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    home = tmp_path / "registry"
    home.mkdir()
    with ThreadedServer(create_app(Settings.for_home(home))) as running:
        yield running


def _plant_journal(cache_file: Path, rows: list[tuple[str, str, str]]) -> None:
    """What anyone who can write ``cache_file``'s folder can do: leave a "hot" rollback
    journal beside it. SQLite plays a hot journal back into the database when it opens it,
    whoever owns the journal, so its pages (here: the cache with ``rows`` added) become
    the cache's content (file format: sqlite.org/fileformat.html, "the rollback journal").
    """
    image = cache_file.with_name("image.sqlite")
    shutil.copy(cache_file, image)
    with sqlite3.connect(image) as db:
        db.executemany(
            "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?)",
            [(*row, time.time_ns()) for row in rows],
        )
    data = image.read_bytes()
    image.unlink()
    page_size = int.from_bytes(data[16:18], "big") or 65536
    pages = len(data) // page_size
    sector = 512
    magic = bytes.fromhex("d9d505f920a163d7")
    # records, checksum nonce 0, pages before the "transaction", sector and page size
    header = magic + struct.pack(">IIIII", pages, 0, pages, sector, page_size)
    journal = header.ljust(sector, b"\0")
    for number in range(pages):
        page = data[number * page_size : (number + 1) * page_size]
        checksum = sum(page[i] for i in range(page_size - 200, -1, -200)) & 0xFFFFFFFF
        journal += struct.pack(">I", number + 1) + page + struct.pack(">I", checksum)
    planted = cache_file.with_name(cache_file.name + "-journal")
    planted.write_bytes(journal)
    planted.chmod(0o666)


def test_a_cache_in_a_folder_others_can_write_cannot_be_steered(
    server: ThreadedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache file itself is private to its user, but the folder is shared: another user
    # plants a journal naming their own blob as the digest of the victim's file.
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o700)
    cache_file = shared / "digests.sqlite"
    monkeypatch.setenv("MODELREG_DIGEST_CACHE", str(cache_file))
    mine = tmp_path / "model.bin"
    mine.write_bytes(os.urandom(2 * MiB))
    theirs = tmp_path / "theirs.bin"
    theirs.write_bytes(os.urandom(2 * MiB))
    with modelreg.Registry(server.url) as reg:
        planted = reg.register("theirs", theirs, capture=False).files[0].sha256
        with DigestCache(cache_file, margin_ns=0) as cache:
            cache.digest(mine)  # the cache file exists, private to its user
        shared.chmod(0o777)  # e.g. a team folder, or the cache moved into one
        signature = _signature(os.stat(mine))
        _plant_journal(cache_file, [(os.path.realpath(mine), signature, planted)])
        version = reg.register("mine", mine, capture=False)
    assert version.files[0].sha256 == _sha(mine.read_bytes())

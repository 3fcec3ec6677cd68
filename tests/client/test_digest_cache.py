"""The client's digest cache (issue 6): hits only for unchanged files, never breaks a register.

Real files, real SQLite, real server; nothing of ours is mocked. ``margin_ns=0`` in tests
that need a recorded entry: instead of waiting out the 2 s margin, ``_settled()`` waits
until the filesystem clock has passed the file's timestamps, which is what the margin is for.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelreg
from modelreg.client._digest_cache import DigestCache, default_path
from server_process import ThreadedServer

MiB = 1024 * 1024

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the cache is POSIX-only")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _settled(path: Path) -> Path:
    """Wait until a file created now gets a later ctime than ``path`` (one clock tick)."""
    probe = path.with_name(path.name + ".probe")
    target = path.stat().st_ctime_ns
    while True:
        probe.write_bytes(b"")
        if probe.stat().st_ctime_ns > target:
            probe.unlink()
            return path
        time.sleep(0.002)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return _settled(path)


def _rows(cache_file: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(cache_file) as db:
        return db.execute("SELECT path, sha256 FROM digests ORDER BY path").fetchall()


@pytest.fixture
def cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The cache file, also the one ``Registry.register`` uses."""
    path = tmp_path / "cache" / "digests.sqlite"
    monkeypatch.setenv("MODELREG_DIGEST_CACHE", str(path))
    return path


@pytest.fixture
def big(tmp_path: Path) -> Path:
    """A 2 MiB file (above the size under which files are always hashed)."""
    return _write(tmp_path / "model.bin", os.urandom(2 * MiB))


def _digest(cache_file: Path | None, path: Path, **options: int) -> tuple[str, bool]:
    with DigestCache(cache_file, margin_ns=options.pop("margin_ns", 0), **options) as cache:
        found = cache.digest(path)
    assert found.size == path.stat().st_size
    return found.sha256, found.cached


class TestHits:
    def test_an_unchanged_file_is_a_hit(self, cache_file: Path, big: Path) -> None:
        expected = _sha(big.read_bytes())
        assert _digest(cache_file, big) == (expected, False)
        assert _digest(cache_file, big) == (expected, True)

    def test_the_entry_is_keyed_by_the_real_path(self, cache_file: Path, big: Path) -> None:
        link = big.with_name("link.bin")
        link.symlink_to(big)
        _digest(cache_file, big)
        assert _digest(cache_file, link) == (_sha(big.read_bytes()), True)
        assert _rows(cache_file) == [(str(big.resolve()), _sha(big.read_bytes()))]

    def test_small_files_are_hashed_without_the_cache(self, cache_file: Path, tmp_path: Path):
        small = _write(tmp_path / "small.bin", b"x" * 1000)
        assert _digest(cache_file, small) == (_sha(b"x" * 1000), False)
        assert _digest(cache_file, small) == (_sha(b"x" * 1000), False)
        assert not cache_file.exists()


class TestMisses:
    def test_same_size_new_bytes_and_the_old_mtime_is_a_miss(
        self, cache_file: Path, big: Path
    ) -> None:
        # What `touch -d`, `cp -p` or `rsync -t` leave behind: the mtime is put back, but
        # no user call can put back the ctime.
        _digest(cache_file, big)
        before = big.stat()
        changed = os.urandom(2 * MiB)
        big.write_bytes(changed)
        os.utime(big, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = big.stat()
        assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
        assert _digest(cache_file, big) == (_sha(changed), False)

    def test_a_replaced_file_is_a_miss(self, cache_file: Path, big: Path) -> None:
        _digest(cache_file, big)
        other = _write(big.with_name("other.bin"), os.urandom(2 * MiB))
        os.replace(other, big)
        assert _digest(cache_file, big) == (_sha(big.read_bytes()), False)

    def test_a_file_younger_than_the_margin_is_not_recorded(
        self, cache_file: Path, tmp_path: Path
    ) -> None:
        # Racy git: a file written within the margin could be written again without its
        # timestamps moving, so it is hashed every time until it is old enough.
        fresh = tmp_path / "fresh.bin"
        fresh.write_bytes(os.urandom(2 * MiB))
        with DigestCache(cache_file) as cache:
            assert cache.digest(fresh).cached is False
        with DigestCache(cache_file) as cache:
            assert cache.digest(fresh).cached is False
        assert _rows(cache_file) == []

    def test_forget_drops_the_entry(self, cache_file: Path, big: Path) -> None:
        _digest(cache_file, big)
        with DigestCache(cache_file) as cache:
            cache.forget(big)
        assert _rows(cache_file) == []
        assert _digest(cache_file, big)[1] is False


class TestNeverBreaksARegistration:
    def test_a_corrupt_cache_file_falls_back_to_hashing(self, cache_file: Path, big: Path) -> None:
        cache_file.parent.mkdir()
        garbage = b"this is not an SQLite database" * 100
        cache_file.write_bytes(garbage)
        cache_file.chmod(0o600)
        assert _digest(cache_file, big) == (_sha(big.read_bytes()), False)
        assert _digest(cache_file, big) == (_sha(big.read_bytes()), False)
        assert cache_file.read_bytes() == garbage  # left for the user to inspect or delete

    def test_a_cache_folder_that_cannot_be_made_falls_back(self, tmp_path: Path, big: Path) -> None:
        (tmp_path / "a-file").write_text("")
        assert _digest(tmp_path / "a-file" / "digests.sqlite", big)[1] is False

    @pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() == 0, reason="root reads all")
    def test_a_read_only_cache_falls_back(self, cache_file: Path, big: Path) -> None:
        _digest(cache_file, big)
        cache_file.parent.chmod(0o500)
        cache_file.chmod(0o400)
        try:
            other = _write(big.with_name("other.bin"), os.urandom(2 * MiB))
            assert _digest(cache_file, other) == (_sha(other.read_bytes()), False)
        finally:
            cache_file.parent.chmod(0o700)

    def test_a_cache_others_can_write_is_not_used(self, cache_file: Path, big: Path) -> None:
        # Whoever can write the cache chooses the digests this client registers.
        _digest(cache_file, big)
        cache_file.chmod(0o666)
        assert _digest(cache_file, big)[1] is False

    def test_a_damaged_entry_is_not_returned(self, cache_file: Path, big: Path) -> None:
        _digest(cache_file, big)
        with sqlite3.connect(cache_file) as db:
            db.execute("UPDATE digests SET sha256 = 'not-a-digest'")
        assert _digest(cache_file, big) == (_sha(big.read_bytes()), False)

    def test_a_cache_locked_by_another_process_is_skipped(
        self, cache_file: Path, big: Path
    ) -> None:
        _digest(cache_file, big)
        other = _write(big.with_name("other.bin"), os.urandom(2 * MiB))
        with sqlite3.connect(cache_file, isolation_level=None) as holder:
            holder.execute("BEGIN EXCLUSIVE")
            assert _digest(cache_file, big) == (_sha(big.read_bytes()), False)
            holder.execute("ROLLBACK")
        with DigestCache(cache_file, margin_ns=0) as cache:
            assert cache.digest(big).cached is True
            with sqlite3.connect(cache_file, isolation_level=None) as holder:
                holder.execute("BEGIN EXCLUSIVE")
                assert cache.digest(other).sha256 == _sha(other.read_bytes())
                holder.execute("ROLLBACK")
        assert [sha for _, sha in _rows(cache_file)] == [_sha(big.read_bytes())]

    def test_a_table_dropped_underneath_is_survived(self, cache_file: Path, big: Path) -> None:
        with DigestCache(cache_file, margin_ns=0) as cache:
            assert cache.digest(big).cached is False
            with sqlite3.connect(cache_file) as db:
                db.execute("DROP TABLE digests")
            cache.forget(big)
            assert cache.digest(big).cached is False
        with DigestCache(cache_file, margin_ns=0) as cache:
            cache.digest(big)
            with sqlite3.connect(cache_file) as db:
                db.execute("DROP TABLE digests")
        assert _digest(cache_file, big)[1] is False

    def test_forget_without_a_cache_does_nothing(self, big: Path) -> None:
        with DigestCache(None) as cache:
            cache.forget(big)
            assert cache.digest(big).cached is False


class TestConfiguration:
    @pytest.mark.parametrize("value", ["0", "off", "false", "no", " OFF "])
    def test_the_variable_turns_it_off(
        self, monkeypatch: pytest.MonkeyPatch, value: str, big: Path, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("MODELREG_DIGEST_CACHE", value)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert default_path() is None
        assert _digest(None, big) == (_sha(big.read_bytes()), False)
        assert _digest(None, big)[1] is False

    def test_the_variable_names_the_file(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("MODELREG_DIGEST_CACHE", str(tmp_path / "elsewhere.sqlite"))
        assert default_path() == tmp_path / "elsewhere.sqlite"

    def test_the_default_is_in_the_user_cache_folder(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.delenv("MODELREG_DIGEST_CACHE")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        if sys.platform.startswith("linux"):
            assert default_path() == tmp_path / "xdg" / "modelreg" / "digests.sqlite"
        else:
            assert default_path() is not None

    def test_the_cache_file_is_private(self, cache_file: Path, big: Path) -> None:
        _digest(cache_file, big)
        assert cache_file.stat().st_mode & 0o077 == 0

    def test_a_hit_marks_an_old_entry_as_used(self, cache_file: Path, big: Path) -> None:
        _digest(cache_file, big)
        with sqlite3.connect(cache_file) as db:
            db.execute("UPDATE digests SET used_at = 0")
        assert _digest(cache_file, big)[1] is True
        with sqlite3.connect(cache_file) as db:
            assert db.execute("SELECT used_at FROM digests").fetchone()[0] > 0

    def test_the_cache_is_bounded(self, cache_file: Path, tmp_path: Path) -> None:
        paths = [_write(tmp_path / f"f{i}.bin", os.urandom(100)) for i in range(30)]
        for path in paths:
            _digest(cache_file, path, min_size=1, max_entries=10)
        assert 1 <= len(_rows(cache_file)) <= 10


CONCURRENT = """
import hashlib, sys
from pathlib import Path
from modelreg.client._digest_cache import DigestCache
cache_file, *paths = sys.argv[1:]
for _ in range(5):
    for name in paths:
        with DigestCache(Path(cache_file), margin_ns=0) as cache:
            found = cache.digest(Path(name))
        assert found.sha256 == hashlib.sha256(Path(name).read_bytes()).hexdigest(), name
"""


def test_concurrent_processes_share_one_cache(cache_file: Path, tmp_path: Path) -> None:
    paths = [_write(tmp_path / f"m{i}.bin", os.urandom(MiB + i)) for i in range(6)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT, str(cache_file), *map(str, paths)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out.decode()
    assert _rows(cache_file) == sorted((str(p.resolve()), _sha(p.read_bytes())) for p in paths)


# -- through a real server ---------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadedServer]:
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    home = tmp_path / "registry"
    home.mkdir()
    with ThreadedServer(create_app(Settings.for_home(home))) as running:
        yield running


def _record(cache_file: Path, path: Path, sha256: str | None = None) -> None:
    """Record ``path`` as a register would have once it was old enough, then maybe edit it."""
    assert _digest(cache_file, path)[1] is False
    if sha256 is not None:
        with sqlite3.connect(cache_file) as db:
            key = str(path.resolve())
            db.execute("UPDATE digests SET sha256 = ? WHERE path = ?", (sha256, key))


def _register(server: ThreadedServer, path: Path) -> modelreg.Version:
    with modelreg.Registry(server.url) as reg:
        return reg.register("big", path, capture=False)


class TestRegister:
    def test_a_hit_is_trusted_without_reading_the_file(
        self, server: ThreadedServer, cache_file: Path, big: Path, tmp_path: Path
    ) -> None:
        other = _write(tmp_path / "other.bin", os.urandom(2 * MiB))
        with modelreg.Registry(server.url) as reg:
            stored = reg.register("other", other, capture=False)
            # Claim that big.bin holds other.bin's bytes: the server has that blob, so only
            # a client that believed its cache would register it.
            _record(cache_file, big, stored.files[0].sha256)
            version = reg.register("big", big, capture=False)
        assert version.files[0].sha256 == stored.files[0].sha256

    def test_a_stale_entry_is_caught_by_the_server_and_dropped(
        self, server: ThreadedServer, cache_file: Path, big: Path
    ) -> None:
        # An entry that is wrong about a blob the server lacks: the server hashes the upload,
        # refuses the claimed digest, and the client hashes the file and sends it again.
        stale = _sha(b"some other bytes")
        _record(cache_file, big, stale)
        version = _register(server, big)
        assert version.files[0].sha256 == _sha(big.read_bytes())
        assert stale not in {sha256 for _, sha256 in _rows(cache_file)}

    def test_a_register_records_old_enough_files(
        self, server: ThreadedServer, cache_file: Path, big: Path
    ) -> None:
        # Two seconds old, as the racy-git margin wants (ctime cannot be set back).
        time.sleep(2.1)
        _register(server, big)
        assert _rows(cache_file) == [(str(big.resolve()), _sha(big.read_bytes()))]

    def test_a_register_with_the_cache_off_writes_no_cache(
        self, server: ThreadedServer, big: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MODELREG_DIGEST_CACHE", "0")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        version = _register(server, big)
        assert version.files[0].sha256 == _sha(big.read_bytes())
        assert not (tmp_path / "xdg").exists()

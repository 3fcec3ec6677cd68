"""``modelreg backup`` / ``modelreg restore`` (issue 25): a consistent snapshot while a writer
keeps registering (SQLite and PostgreSQL), restored into a fresh folder that passes fsck and
audit verify with the manifest's counts; incremental blobs; damaged backups and non-empty
targets refused, changing nothing."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

import modelreg
from modelreg.config import Settings
from modelreg.storage.base import blob_key
from registry_folders import fresh_pg_database
from server_process import run_cli


def cli(*args: str) -> tuple[int, str, str]:
    done = run_cli(*args)
    return done.returncode, done.stdout, done.stderr


def write_file(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(os.urandom(5000) + name.encode())
    return path


def backup(home: Path, folder: Path) -> dict:
    code, out, err = cli("--registry", str(home), "backup", str(folder), "--json")
    assert code == 0, err
    return json.loads(out)


def restore(folder: Path, target: Path, *extra: str) -> tuple[int, str, str]:
    return cli("restore", str(folder), "--to", str(target), *extra)


@pytest.fixture
def seeded(home: Path, tmp_path: Path) -> Path:
    """``home`` (SQLite or PostgreSQL) with fraud:1 and churn:1, and a webhook secret sealed."""
    with modelreg.Registry(home) as reg:
        reg.register("fraud", write_file(tmp_path / "src", "a.bin"), capture=False)
        reg.register("churn", write_file(tmp_path / "src", "b.bin"), capture=False)
    return home


def test_backup_while_registering_restores_clean(seeded: Path, tmp_path: Path, live_server):
    # The writer registers through a running server, as users do while the backup runs.
    stop = threading.Event()
    registered: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with modelreg.Registry(live_server.url) as reg:
                while not stop.is_set() or len(registered) < 3:
                    n = len(registered)
                    path = write_file(tmp_path / "w" / str(n), f"w{n}.bin")
                    registered.append(reg.register("live", path, capture=False).version)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        report = backup(seeded, tmp_path / "backup")
    finally:
        stop.set()
        thread.join(timeout=120)
    assert not errors
    assert report["ok"]
    assert report["problems"] == []
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["counts"]["model_versions"] == report["versions"] >= 2
    assert set(manifest["blobs"]) == {
        p.name for p in (tmp_path / "backup" / "blobs" / "sha256").glob("*/*/*")
    }

    target = tmp_path / "restored"
    code, out, err = restore(tmp_path / "backup", target)
    assert code == 0, err
    assert "fsck clean, audit chain verifies" in out
    code, out, _ = cli("--registry", str(target), "fsck")
    assert code == 0, out
    code, out, _ = cli("--registry", str(target), "audit", "verify")
    assert code == 0, out
    with modelreg.Registry(target) as reg:
        versions = sum(len(reg.list_versions(m.name).items) for m in reg.list_models().items)
        assert versions == manifest["counts"]["model_versions"]
        assert reg.get_version("fraud:1").files[0].path == "a.bin"
        # The restored registry goes on numbering after the backup's versions.
        live = manifest["counts"]["model_versions"] - 2
        path = write_file(tmp_path / "after", "x.bin")
        assert reg.register("live", path, capture=False).version == live + 1


def test_second_backup_copies_only_new_blobs(seeded: Path, tmp_path: Path):
    first = backup(seeded, tmp_path / "backup")
    assert first["blobs_copied"] == 2
    with modelreg.Registry(seeded) as reg:
        reg.register("fraud", write_file(tmp_path / "src", "c.bin"), capture=False)
        reg.register("fraud", write_file(tmp_path / "src", "d.bin"), capture=False)
        reg.register("fraud", tmp_path / "src" / "a.bin", capture=False)  # no new blob
    second = backup(seeded, tmp_path / "backup")
    assert second["blobs"] == 4
    assert second["blobs_copied"] == 2
    assert second["blobs_already_there"] == 2
    assert second["versions"] == 5
    # One snapshot is kept: the manifest's.
    assert len(list((tmp_path / "backup").glob("registry-*.db"))) == 1


def test_a_postgresql_backup_restores_into_postgresql(seeded, tmp_path, request):
    if "postgresql" not in (seeded / "modelreg.toml").read_text():
        pytest.skip("the PostgreSQL target is exercised from a PostgreSQL registry")
    backup(seeded, tmp_path / "backup")
    target = tmp_path / "pg-target"
    target.mkdir()
    url = fresh_pg_database(request.getfixturevalue("pg_server"))
    (target / "modelreg.toml").write_text(f'db = "{url}"\n')
    code, out, err = restore(tmp_path / "backup", target)
    assert code == 0, err
    with modelreg.Registry(target) as reg:
        assert [m.name for m in reg.list_models().items] == ["churn", "fraud"]
        # Sequences moved past the restored ids: a new registration takes the next ones.
        path = write_file(tmp_path / "after", "y.bin")
        assert reg.register("fraud", path, capture=False).version == 2
    code, out, _ = cli("--registry", str(target), "fsck")
    assert code == 0, out


@pytest.fixture
def a_backup(tmp_path: Path, sqlite_db_url: str) -> Path:
    home = tmp_path / "registry"
    home.mkdir()
    (home / "modelreg.toml").write_text(f'db = "{sqlite_db_url}"\n')
    with modelreg.Registry(home) as reg:
        reg.register("fraud", write_file(tmp_path / "src", "a.bin"), capture=False)
    Settings.for_home(home).sealing_key()  # the key webhook secrets are sealed with
    backup(home, tmp_path / "backup")
    return tmp_path / "backup"


def only_blob(folder: Path) -> Path:
    manifest = json.loads((folder / "manifest.json").read_text())
    (digest,) = manifest["blobs"]
    return folder / "blobs" / blob_key(digest)


def flip(path: Path, at: int = 100) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: only_blob(b).unlink(), "1 blob(s) are missing or damaged"),
        (lambda b: flip(only_blob(b)), "hash mismatch"),
        (lambda b: flip(next(b.glob("registry-*.db")), 5000), "database snapshot"),
        (lambda b: (b / "manifest.json").write_text("{"), "cannot be read as a backup manifest"),
    ],
    ids=["missing-blob", "flipped-blob", "flipped-database", "broken-manifest"],
)
def test_a_damaged_backup_is_refused_and_changes_nothing(a_backup, tmp_path, damage, message):
    damage(a_backup)
    target = tmp_path / "target"
    code, _, err = restore(a_backup, target)
    assert code != 0
    assert message in err
    assert not (target / "registry.db").exists()


def test_a_registry_with_models_is_refused_unless_forced(a_backup, tmp_path):
    target = tmp_path / "target"
    with modelreg.Registry(target) as reg:
        reg.register("other", write_file(tmp_path / "o", "o.bin"), capture=False)
    code, _, err = restore(a_backup, target)
    assert code == 6
    assert "--force" in err
    with modelreg.Registry(target) as reg:
        assert [m.name for m in reg.list_models().items] == ["other"]
    code, _, err = restore(a_backup, target, "--force")
    assert code == 0, err
    with modelreg.Registry(target) as reg:
        assert [m.name for m in reg.list_models().items] == ["fraud"]


def test_backup_refuses_a_folder_that_is_not_a_backup(tmp_path, sqlite_db_url):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("mine")
    code, _, err = cli("--registry", str(tmp_path / "r"), "backup", str(tmp_path / "stuff"))
    assert code != 0
    assert "neither empty nor a modelreg backup" in err
    assert os.listdir(tmp_path / "stuff") == ["notes.txt"]


def test_restore_refuses_a_folder_that_is_not_a_backup(tmp_path):
    (tmp_path / "nothing").mkdir()
    code, _, err = restore(tmp_path / "nothing", tmp_path / "target")
    assert code != 0
    assert "is not a modelreg backup" in err


def test_the_secret_key_goes_with_the_rows(a_backup, tmp_path):
    key = (tmp_path / "registry" / "secret.key").read_text()
    assert (a_backup / "secret.key").read_text() == key
    assert (a_backup / "secret.key").stat().st_mode & 0o077 == 0
    code, _, err = restore(a_backup, tmp_path / "target")
    assert code == 0, err
    assert (tmp_path / "target" / "secret.key").read_text() == key
    assert (tmp_path / "target" / "secret.key").stat().st_mode & 0o077 == 0


def test_backup_refuses_a_server(tmp_path):
    code, _, err = cli("--registry", "http://127.0.0.1:9", "backup", str(tmp_path / "b"))
    assert code != 0
    assert "run it where the registry's files are" in err

"""``modelreg fsck`` (issue 25): damaged, truncated and missing blobs named per version, exit 1;
the audit chain and the database invariants; ``--repair`` restores from a replica or sets the
copy aside, never deletes; bad input refused."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

import modelreg
from modelreg.storage.base import blob_key
from server_process import run_cli


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """fraud:1 (a.bin, shared.bin), fraud:2 (b.bin, shared.bin), churn:1 (c.bin)."""
    home = tmp_path / "registry"
    src = tmp_path / "src"
    for name in ("a", "b", "c", "shared"):
        (src / name).mkdir(parents=True)
        (src / name / f"{name}.bin").write_bytes(os.urandom(200_000) + name.encode())
    with modelreg.Registry(home) as reg:
        reg.register("fraud", [src / "a" / "a.bin", src / "shared" / "shared.bin"], capture=False)
        reg.register("fraud", [src / "b" / "b.bin", src / "shared" / "shared.bin"], capture=False)
        reg.register("churn", src / "c" / "c.bin", capture=False)
    return home


def blob(home: Path, ref: str, path: str) -> Path:
    with modelreg.Registry(home) as reg:
        digest = next(f.sha256 for f in reg.get_version(ref).files if f.path == path)
    return home / "blobs" / blob_key(digest)


def damage(target: Path, data: bytes | None) -> None:
    if data is None:
        target.unlink()
        return
    os.chmod(target, 0o644)
    target.write_bytes(data)


def fsck(home: Path, *args: str) -> tuple[int, str, str]:
    done = run_cli("--registry", str(home), "fsck", *args)
    return done.returncode, done.stdout, done.stderr


def test_a_whole_registry_is_clean(home):
    code, out, _ = fsck(home)
    assert code == 0
    assert out.startswith("ok: 4 blob(s)")


def test_each_damaged_version_is_named(home):
    shared = blob(home, "fraud:1", "shared.bin")
    damage(shared, shared.read_bytes()[:-1] + b"X")  # flipped: held by fraud:1 and fraud:2
    damage(blob(home, "churn:1", "c.bin"), b"short")  # truncated
    damage(blob(home, "fraud:2", "b.bin"), None)  # missing
    code, out, _ = fsck(home, "--json")
    assert code == 1
    report = json.loads(out)
    found = {(d["model"], d["version"], d["path"]): d["problem"] for d in report["damaged"]}
    assert found == {
        ("fraud", 1, "shared.bin"): "hash mismatch",
        ("fraud", 2, "shared.bin"): "hash mismatch",
        ("fraud", 2, "b.bin"): "missing",
        ("churn", 1, "c.bin"): "size 5, expected 200001",
    }
    assert report["audit"]["ok"] is True
    assert report["invariants"] == []
    code, out, _ = fsck(home, "--model", "chu*")
    assert code == 1
    assert "damaged churn:1 c.bin" in out
    assert "fraud" not in out


def test_repair_restores_from_a_replica_and_sets_the_rest_aside(home, tmp_path):
    replica = tmp_path / "backup"
    shutil.copytree(home, replica)
    damaged_a = blob(home, "fraud:1", "a.bin")
    good_a = damaged_a.read_bytes()
    damage(damaged_a, b"rot" + good_a[3:])
    c = blob(home, "churn:1", "c.bin")
    damage(c, b"rot")
    damage(replica / c.relative_to(home), b"also rot")  # the replica's copy is bad too
    code, out, _ = fsck(home, "--repair", "--from", str(replica))
    assert code == 1
    assert f"fraud:1 a.bin sha256:{damaged_a.name}: hash mismatch (restored from" in out
    assert "churn:1 c.bin" in out
    assert "(set aside as damaged)" in out
    assert damaged_a.read_bytes() == good_a
    assert not c.exists()
    assert [p.read_bytes() for p in (home / "blobs" / "damaged").iterdir()] == [b"rot"]
    code, out, _ = fsck(home, "--json")
    assert code == 1
    assert [(d["path"], d["problem"]) for d in json.loads(out)["damaged"]] == [
        ("c.bin", "missing (damaged copy set aside)")
    ]


def test_the_invariants_and_the_audit_chain_are_checked(home):
    with sqlite3.connect(home / "registry.db") as db:
        db.execute("UPDATE models SET last_version = 1 WHERE name = 'fraud'")
        db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1")
    code, out, _ = fsck(home)
    assert code == 1
    assert "invariant broken: model fraud: version counter 1 is below its version 2" in out
    assert "audit chain broken at event 1" in out


def test_bad_input_is_refused(home, tmp_path):
    code, _, err = fsck(home, "--from", str(tmp_path))
    assert code == 1
    assert "--from is a source for --repair" in err
    code, _, err = fsck(home, "--repair", "--from", str(tmp_path / "nowhere"))
    assert code == 1
    assert "does not exist" in err
    done = run_cli("--registry", "http://127.0.0.1:9", "fsck")
    assert done.returncode == 1
    assert "fsck reads the blob store directly" in done.stderr

"""``fsck``'s checks on both databases: referenced blobs by model glob, the invariants, repair."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

import modelreg
from modelreg.config import Settings
from modelreg.local import LocalBackend
from modelreg.services.usecases.fsck import fsck
from modelreg.storage.base import blob_key


def test_fsck_on_both_databases(home: Path, tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(os.urandom(50_000))
    other = tmp_path / "o.bin"
    other.write_bytes(b"other")
    with modelreg.Registry(home) as reg:
        reg.register("fraud-a", weights, capture=False)
        reg.register("fraud-a", other, capture=False)
        reg.register("churn", weights, capture=False)
        digest = reg.get_version("churn:1").files[0].sha256
    backend = LocalBackend(Settings.for_home(home))
    try:
        report = fsck(backend, backend.actor)
        assert report["ok"] is True
        assert report["blobs_checked"] == 2
        assert fsck(backend, backend.actor, model="fraud-*")["blobs_checked"] == 2
        assert fsck(backend, backend.actor, model="nothing*")["blobs_checked"] == 0

        stored = home / "blobs" / blob_key(digest)
        os.chmod(stored, 0o644)
        stored.write_bytes(b"rot")
        with backend.engine.begin() as conn:
            conn.execute(text("UPDATE models SET last_version = 0 WHERE name = 'churn'"))
        report = fsck(backend, backend.actor, jobs=2, repair=True)
        assert report["ok"] is False
        assert {(d["model"], d["version"]) for d in report["damaged"]} == {
            ("fraud-a", 1),
            ("churn", 1),
        }
        assert {d["repair"] for d in report["damaged"]} == {"set aside as damaged"}
        assert report["invariants"] == ["model churn: version counter 0 is below its version 1"]
        assert not stored.exists()
        assert (home / "blobs" / "damaged").is_dir()
    finally:
        backend.close()

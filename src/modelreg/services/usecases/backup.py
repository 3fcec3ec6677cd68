"""``modelreg backup`` and ``modelreg restore`` on a registry's folder (or its db and store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from modelreg.db import copy
from modelreg.errors import IntegrityFailure
from modelreg.services import backup as snapshots
from modelreg.services import restore as restoring
from modelreg.services.actor import Actor
from modelreg.services.usecases._handles import Handles
from modelreg.services.usecases.fsck import fsck


def backup(
    h: Handles,
    engine: Engine,
    actor: Actor,
    folder: Path,
    *,
    source: str,
    secret_key: Path | None = None,
) -> dict[str, Any]:
    """A consistent backup of the registry into ``folder`` (incremental when it holds one)."""
    return snapshots.backup(
        engine, h.store, folder, actor=actor, source=source, secret_key=secret_key
    )


def restore(
    h: Handles,
    actor: Actor,
    folder: Path,
    *,
    target_url: str,
    home: Path,
    where: str,
    release: Any,
    force: bool = False,
    jobs: int = 4,
) -> dict[str, Any]:
    """Check the backup, replace the target's database and add its blobs, then ``fsck`` it.

    ``release`` closes the target's connections before its database is replaced.
    """
    manifest = restoring.check_backup(folder, actor=actor, jobs=jobs)
    restoring.refuse_non_empty(h, actor=actor, force=force, where=where)
    release()
    restoring.put_database(folder, manifest, target_url)
    keyed = restoring.put_secret_key(folder, home)
    stored = restoring.put_blobs(h, folder, manifest)
    report = fsck(h, actor, jobs=jobs)
    with h.read() as session:
        counts = copy.counts(session.connection())
    if counts != manifest["counts"]:
        differ = sorted(k for k in counts if counts[k] != manifest["counts"].get(k))
        raise IntegrityFailure(
            f"the restored registry's row counts differ from the backup's in {differ}",
            detail={"tables": differ},
        )
    if not report["ok"]:
        raise IntegrityFailure(
            "the restored registry does not pass fsck: run `modelreg fsck` on it",
            detail={"fsck": report},
        )
    return {
        "ok": True,
        "folder": str(folder),
        "target": where,
        "created_at": manifest["created_at"],
        "source": manifest["source"],
        "models": manifest["counts"].get("models", 0),
        "versions": manifest["counts"].get("model_versions", 0),
        "audit_events": manifest["counts"].get("audit_events", 0),
        "blobs": len(manifest["blobs"]),
        "blobs_stored": stored,
        "secret_key_restored": keyed,
        "fsck": {"blobs_checked": report["blobs_checked"], "audit": report["audit"]},
    }

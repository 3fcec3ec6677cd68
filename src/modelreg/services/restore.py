"""``modelreg restore``: check a backup completely, then put it in place, then check again.

Nothing in the target changes until the backup has passed every check ``fsck`` makes: its
snapshot file hashes to what the manifest says, its audit chain verifies, the database's
invariants hold, its row counts match the manifest, and every blob the snapshot names is in
the backup and hashes to its digest. Then the database goes in (a SQLite target's file is
replaced by a rename; a PostgreSQL target's rows are replaced in one transaction) and the
blobs are stored, hashed again on the way in; finally ``fsck`` runs on the restored registry,
whose verdict is the restore's.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from modelreg.config import SECRET_KEY_FILE
from modelreg.db import copy
from modelreg.db.schema import SCHEMA_REVISION
from modelreg.db.tables.registry import AuditEvent, Model
from modelreg.errors import Conflict, IntegrityFailure, InvalidInput
from modelreg.services import fsck as checks
from modelreg.services.actor import Actor, Permission
from modelreg.services.backup import (
    BLOBS,
    copy_private,
    file_sha256,
    open_snapshot,
    read_manifest,
    referenced_blobs,
)
from modelreg.services.usecases._handles import Handles
from modelreg.storage.local import LocalBlobStore


def check_backup(folder: Path, *, actor: Actor, jobs: int) -> dict[str, Any]:
    """Check the backup in ``folder`` as ``fsck`` would; raises ``IntegrityFailure`` if damaged."""
    manifest = read_manifest(folder)
    name = str(manifest["database"]["file"])
    if "/" in name or name.startswith("."):
        _damaged(folder, f"its manifest names {name!r} as the snapshot, not a file in it")
    database = folder / name
    if not database.is_file():
        _damaged(folder, f"its database snapshot {database.name} is missing")
    if (actual := file_sha256(database)) != manifest["database"]["sha256"]:
        _damaged(
            folder,
            f"its database snapshot {database.name} hashes to {actual}, "
            f"not {manifest['database']['sha256']}",
        )
    if manifest["schema_revision"] != SCHEMA_REVISION:
        raise InvalidInput(
            f"the backup has schema {manifest['schema_revision']}; this modelreg restores "
            f"{SCHEMA_REVISION} (restore with the modelreg version that made it, then upgrade)",
            detail={"backup": manifest["schema_revision"], "expected": SCHEMA_REVISION},
        )
    if manifest.get("problems"):
        _damaged(folder, f"{len(manifest['problems'])} blob(s) could not be backed up")
    with open_snapshot(database) as conn:
        counts = copy.counts(conn)
        named = set(referenced_blobs(conn))
        with Session(bind=conn) as session:
            chain = checks.audit_chain(session, actor=actor)
            problems = checks.invariants(session, actor=actor)
    if counts != manifest["counts"]:
        _damaged(folder, "its row counts differ from its manifest's")
    if not chain["ok"]:
        _damaged(
            folder,
            f"its audit chain is broken at event {chain['first_bad_seq']}: {chain['problem']}",
        )
    if problems:
        _damaged(folder, "its database breaks an invariant: " + "; ".join(problems))
    blobs = [checks.Blob(d, int(size)) for d, size in manifest["blobs"].items()]
    if unlisted := named - {b.sha256 for b in blobs}:
        _damaged(folder, f"its manifest omits {len(unlisted)} blob(s) the database names")
    checks.check_blobs(LocalBlobStore(folder / BLOBS), blobs, jobs=jobs)
    if bad := [b for b in blobs if b.problem is not None]:
        named_bad = ", ".join(f"sha256:{b.sha256} {b.problem}" for b in bad[:5])
        _damaged(folder, f"{len(bad)} blob(s) are missing or damaged ({named_bad})")
    return manifest


def _damaged(folder: Path, why: str) -> None:
    raise IntegrityFailure(
        f"the backup in {folder} is damaged: {why}; nothing was restored",
        detail={"folder": str(folder)},
    )


def is_empty(h: Handles, *, actor: Actor) -> bool:
    """Whether the target registry holds no model and no audit event."""
    with h.read() as session:
        models = session.execute(select(func.count()).select_from(Model)).scalar_one()
        events = session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    return models == 0 and events == 0


def put_database(folder: Path, manifest: dict[str, Any], target_url: str) -> None:
    """Replace the target's database by the backup's snapshot (servers on it must be stopped)."""
    database = folder / str(manifest["database"]["file"])
    if target_url.startswith("sqlite"):
        path = Path(target_url.split("///", 1)[1])
        partial = path.with_name(f"{path.name}.restore")
        shutil.copyfile(database, partial)
        # A write-ahead log left beside the old file would be replayed into the new one.
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.replace(partial, path)
        return
    writer = create_engine(target_url)
    try:
        with open_snapshot(database) as src, writer.begin() as dst:
            copy.copy_rows(src, dst)
    finally:
        writer.dispose()


def put_blobs(h: Handles, folder: Path, manifest: dict[str, Any]) -> int:
    """Store every blob of the backup the target lacks (hashed on the way in); answers how many."""
    source = LocalBlobStore(folder / BLOBS)
    stored = 0
    for digest in manifest["blobs"]:
        if h.store.exists(digest):
            continue
        with source.open(digest) as fh:
            h.store.put(fh, expected=digest)
        stored += 1
    return stored


def put_secret_key(folder: Path, home: Path) -> bool:
    """Give the target the backup's key that seals webhook secrets; whether there was one.

    The restored rows were sealed with it, so it replaces the target's own.
    """
    key = folder / SECRET_KEY_FILE
    if not key.is_file():
        return False
    home.mkdir(parents=True, exist_ok=True)
    copy_private(key, home / SECRET_KEY_FILE)
    return True


def refuse_non_empty(h: Handles, *, actor: Actor, force: bool, where: str) -> None:
    """``Conflict`` unless the target is empty or ``force``."""
    actor.require(Permission.BLOB_GC)
    if not force and not is_empty(h, actor=actor):
        raise Conflict(
            f"{where} already holds models or audit events: restoring would replace them; "
            f"give --force to replace them, or --to a new folder",
            detail={"target": where},
        )


__all__ = [
    "check_backup",
    "is_empty",
    "put_blobs",
    "put_database",
    "put_secret_key",
    "refuse_non_empty",
]

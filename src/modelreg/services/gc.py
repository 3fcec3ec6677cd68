"""Garbage collection: remove blobs no version references, and abandoned uploads."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.tables import VersionFile
from modelreg.services import tracking
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, record
from modelreg.storage.base import BlobStore

# A blob younger than this may belong to a registration whose metadata is not committed yet.
DEFAULT_GRACE_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class GcResult:
    """What a collection found and (unless a dry run) removed."""

    unreferenced: list[str]
    removed: int
    bytes_freed: int
    temporary_removed: int
    dry_run: bool


def collect(
    session: Session,
    store: BlobStore,
    *,
    actor: Actor,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    dry_run: bool = False,
) -> GcResult:
    """Delete blobs that no version references and that are older than ``grace_seconds``.

    The grace period is what makes this safe next to running registrations: their blobs are
    stored before their rows commit, and are young.
    """
    actor.require(Permission.BLOB_GC)
    cutoff = time.time() - grace_seconds
    referenced = set(session.scalars(select(VersionFile.sha256).distinct()))
    # Files an MLflow client logged but has not registered yet are referenced too.
    referenced |= tracking.tree.referenced_digests(session)
    unreferenced = [d for d, mtime in store.iter_blobs() if d not in referenced and mtime < cutoff]
    freed = 0
    removed = 0
    temporary = 0
    if not dry_run:
        for digest in unreferenced:
            size = store.size(digest)
            if store.delete(digest):
                removed += 1
                freed += size
        temporary = store.clean_temporary(older_than=cutoff)
    else:
        freed = sum(store.size(d) for d in unreferenced)
    if removed or temporary:
        record(
            session,
            EventTag.BLOB_GC,
            actor=actor,
            target="blobs",
            before={"digests": unreferenced[:1000]},
            after={"removed": removed, "bytes_freed": freed, "temporary_removed": temporary},
        )
    return GcResult(unreferenced, removed, freed, temporary, dry_run)

"""``fsck``: every byte a version promises is stored and right, and the database agrees with itself.

Three checks, each reporting rather than fixing:

- blobs: each distinct blob a version references is present and hashes to its digest,
  streamed and in parallel, through ``BlobStore.check`` (a store with checksums of its own,
  such as S3's, may answer it without reading every byte);
- the audit log's hash chain (``audit.verify``);
- the database's invariants: at most one production version per model, and each model's
  version counter at or above every number it handed out (live versions and tombstones).

Repair only ever restores or marks: a damaged blob is re-fetched from a replica folder when
one holds the right bytes (verified before they replace anything), else its copy is set aside
as damaged (``BlobStore.quarantine``), so downloads refuse it and the next upload of the right
bytes stores it again. Nothing is ever deleted, no row is touched.
"""

from __future__ import annotations

import fnmatch
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelreg.db.tables.registry import Model, Tombstone, Version, VersionFile
from modelreg.errors import BlobNotFound, DigestMismatch, StorageFailure
from modelreg.names import Stage
from modelreg.services import audit
from modelreg.services.actor import Actor, Permission
from modelreg.storage.base import BlobStore, Progress, blob_key


@dataclass(frozen=True, slots=True)
class Holder:
    """One version file naming a blob."""

    model: str
    version: int
    path: str


@dataclass(slots=True)
class Blob:
    """A referenced blob, the version files naming it, and what ``check`` found."""

    sha256: str
    size: int
    holders: list[Holder] = field(default_factory=list)
    problem: str | None = None
    repair: str | None = None


def referenced(session: Session, *, actor: Actor, model: str | None = None) -> list[Blob]:
    """Every blob a version references (of models matching the glob ``model``), by digest."""
    actor.require(Permission.BLOB_GC)
    rows = session.execute(
        select(Model.name, Version.number, VersionFile.path, VersionFile.sha256, VersionFile.size)
        .join(Version, Version.model_id == Model.id)
        .join(VersionFile, VersionFile.version_id == Version.id)
        .order_by(Model.name, Version.number, VersionFile.path)
    ).all()
    blobs: dict[str, Blob] = {}
    for name, number, path, sha256, size in rows:
        if model is not None and not fnmatch.fnmatchcase(name, model):
            continue
        blob = blobs.setdefault(sha256, Blob(sha256, size))
        blob.holders.append(Holder(name, number, path))
    return list(blobs.values())


def check_blobs(
    store: BlobStore, blobs: list[Blob], *, jobs: int, progress: Progress | None = None
) -> None:
    """Fill in each blob's ``problem`` with ``jobs`` checks at once (hashing frees the GIL)."""

    def one(blob: Blob) -> None:
        try:
            blob.problem = store.check(blob.sha256, blob.size, progress)
        except BlobNotFound:  # removed between the listing and the read
            blob.problem = "missing"
        except OSError as exc:
            blob.problem = f"unreadable: {exc.strerror or exc}"

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="fsck") as pool:
        list(pool.map(one, blobs))


def repair(store: BlobStore, blobs: list[Blob], source: Path | None) -> None:
    """Restore each damaged blob from ``source`` when it holds the right bytes, else mark it.

    ``source`` is a replica: a registry folder (``DIR/blobs/sha256/…``) or a blob store root
    (``DIR/sha256/…``). Its bytes are hashed on the way in and replace the stored copy only
    when they match. A blob that cannot be restored has its stored copy set aside as damaged;
    a missing one stays reported.
    """
    for blob in blobs:
        if blob.problem is None:
            continue
        if source is not None and (restored := _restore(store, blob, source)) is not None:
            blob.repair = restored
            continue
        if store.quarantine(blob.sha256):
            blob.repair = "set aside as damaged"


def _restore(store: BlobStore, blob: Blob, source: Path) -> str | None:
    key = blob_key(blob.sha256)
    for candidate in (source / "blobs" / key, source / key):
        if not candidate.is_file():
            continue
        try:
            with candidate.open("rb") as fh:
                store.put(fh, expected=blob.sha256)
        except (DigestMismatch, OSError, StorageFailure):
            continue  # that copy is damaged too, or unreadable: try the next, else mark
        return f"restored from {candidate}"
    return None


def invariants(session: Session, *, actor: Actor) -> list[str]:
    """The database's own rules that no constraint states alone, each broken one described."""
    actor.require(Permission.BLOB_GC)
    problems: list[str] = []
    productions = session.execute(
        select(Model.name, func.count())
        .join(Version, Version.model_id == Model.id)
        .where(Version.stage == Stage.PRODUCTION)
        .group_by(Model.name)
        .having(func.count() > 1)
    ).all()
    problems += [f"model {name}: {n} production versions (at most 1)" for name, n in productions]
    highest = session.execute(
        select(Model.name, Model.last_version, func.max(Version.number))
        .join(Version, Version.model_id == Model.id)
        .group_by(Model.id, Model.name, Model.last_version)
    ).all()
    problems += [
        f"model {name}: version counter {counter} is below its version {top}"
        for name, counter, top in highest
        if top is not None and counter < top
    ]
    buried = session.execute(
        select(Model.name, Model.last_version, func.max(Tombstone.number))
        .join(Tombstone, Tombstone.normalized_name == Model.normalized_name)
        .group_by(Model.id, Model.name, Model.last_version)
    ).all()
    problems += [
        f"model {name}: version counter {counter} is below deleted version {top}"
        for name, counter, top in buried
        if top is not None and counter < top
    ]
    return problems


def audit_chain(session: Session, *, actor: Actor) -> dict[str, Any]:
    """The audit chain's verification, as ``audit verify`` reports it."""
    return audit.verify(session, actor=actor).to_dict()


__all__ = ["Blob", "Holder", "audit_chain", "check_blobs", "invariants", "referenced", "repair"]

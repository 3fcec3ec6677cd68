"""Scans in the database: the per-digest cache (``blob_scans``) and each version's ``scan``.

A registration calls ``scan_new_version`` inside its transaction: files that cannot carry
code are decided from their name and first bytes, cached digests are looked up, and small
code files are scanned on the spot; bigger ones leave the version ``pending`` until
``finish_version`` (the server's worker, a promotion that needs the answer, ``modelreg scan``)
scans them outside any transaction and writes the result.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import Version
from modelreg.db.tables.safety import BlobScan
from modelreg.services.scanning import HEAD, SCANNER, FileVerdict, Finding, code_kind, scan_file
from modelreg.storage.base import BlobStore

__all__ = [
    "INLINE_BYTES",
    "ORDER",
    "PendingFile",
    "cached",
    "pending_files",
    "save_blob",
    "scan_blob",
    "scan_new_version",
    "summarize",
]

log = logging.getLogger("modelreg.scanning")

# Code files up to this many bytes in all are scanned during the registration itself.
INLINE_BYTES = 64 * 1024 * 1024
# The version's status is the first of these any of its files has.
ORDER = ("unsafe", "pending", "error", "clean", "not_applicable")


@dataclass(frozen=True, slots=True)
class PendingFile:
    """A file whose blob still needs scanning, and the kind its first bytes said it is."""

    path: str
    sha256: str
    kind: str


def _head(store: BlobStore, digest: str) -> bytes:
    with store.open(digest) as stream:
        return stream.read(HEAD)


@contextmanager
def _seekable(store: BlobStore, digest: str) -> Iterator[BinaryIO]:
    """The blob as a seekable file (a stream that cannot seek is copied to a temporary one)."""
    with store.open(digest) as stream:
        if stream.seekable():
            yield stream
            return
        with tempfile.TemporaryFile() as copy:
            shutil.copyfileobj(stream, copy, 1 << 20)
            copy.seek(0)
            yield copy


def scan_blob(store: BlobStore, digest: str, path: str, kind: str) -> FileVerdict:
    """Scan one stored blob; any failure to read it is an ``error`` verdict, never a crash."""
    try:
        with _seekable(store, digest) as stream:
            return scan_file(path, stream, kind)
    except Exception as exc:
        log.warning("scanning %s (sha256:%s) failed: %s", path, digest, exc)
        return FileVerdict.of([], f"the scanner could not read it: {type(exc).__name__}")


def cached(session: Session, digests: Iterable[str]) -> dict[str, BlobScan]:
    """The current scanner's verdicts for ``digests`` (older scanners' do not count)."""
    wanted = sorted(set(digests))
    found: dict[str, BlobScan] = {}
    for start in range(0, len(wanted), 500):
        rows = session.scalars(
            select(BlobScan).where(
                BlobScan.sha256.in_(wanted[start : start + 500]), BlobScan.scanner == SCANNER
            )
        )
        found.update({row.sha256: row for row in rows})
    return found


def save_blob(session: Session, digest: str, verdict: FileVerdict) -> None:
    """Record (or replace) a blob's verdict; concurrent writers of one digest both succeed."""
    values = {
        "sha256": digest,
        "status": verdict.status,
        "findings": [f.to_dict() for f in verdict.findings],
        "scanner": SCANNER,
        "scanned_at": utcnow(),
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(BlobScan).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["sha256"], set_={k: v for k, v in values.items() if k != "sha256"}
        )
    )


def summarize(
    files: dict[str, tuple[str, list[dict[str, Any]]]], pending: list[PendingFile]
) -> dict[str, Any]:
    """A version's ``scan`` from each file's (status, findings) and the files still pending."""
    statuses = {status for status, _ in files.values()} | ({"pending"} if pending else set())
    status = next((s for s in ORDER if s in statuses), "not_applicable")
    findings = [
        {"file": path, **finding} for path, (_, found) in sorted(files.items()) for finding in found
    ]
    scan: dict[str, Any] = {
        "status": status,
        "findings": findings[:200],
        "scanner": SCANNER,
        "scanned_at": utcnow().isoformat(),
    }
    if pending:
        scan["pending"] = sorted(p.path for p in pending)
    return scan


def scan_new_version(
    session: Session, store: BlobStore, version: Version, *, inline_bytes: int = INLINE_BYTES
) -> list[PendingFile]:
    """Set ``version.scan`` for a version being registered; returns the files left pending.

    Reads each file's first bytes (the cost for a non-code file), scans code files not
    cached yet while they fit in ``inline_bytes``, and caches what it scanned.
    """
    return _rescan(session, store, version, inline_bytes=inline_bytes, force=False)


def _rescan(
    session: Session,
    store: BlobStore,
    version: Version,
    *,
    inline_bytes: int,
    force: bool,
) -> list[PendingFile]:
    candidates: list[tuple[str, str, str, int]] = []
    results: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for file in version.files:
        kind = code_kind(file.path, _head(store, file.sha256))
        if kind is None:
            results[file.path] = ("not_applicable", [])
        else:
            candidates.append((file.path, file.sha256, kind, file.size))
    known = {} if force else cached(session, (c[1] for c in candidates))
    budget = inline_bytes
    pending: list[PendingFile] = []
    for path, digest, kind, size in candidates:
        row = known.get(digest)
        if row is None and size <= budget:
            budget -= size
            verdict = scan_blob(store, digest, path, kind)
            save_blob(session, digest, verdict)
            row = BlobScan(status=verdict.status, findings=[f.to_dict() for f in verdict.findings])
            known[digest] = row
        if row is None:
            pending.append(PendingFile(path, digest, kind))
        else:
            results[path] = (row.status, list(row.findings))
    version.scan = summarize(results, pending)
    return pending


def pending_files(session: Session, store: BlobStore, version: Version) -> list[PendingFile]:
    """The files of a ``pending`` version that no verdict covers yet."""
    names = set((version.scan or {}).get("pending") or [])
    files = [f for f in version.files if f.path in names]
    known = cached(session, (f.sha256 for f in files))
    return [
        PendingFile(f.path, f.sha256, code_kind(f.path, _head(store, f.sha256)) or "pickle")
        for f in files
        if f.sha256 not in known
    ]


def recompute(session: Session, store: BlobStore, version: Version, *, force: bool) -> None:
    """Rebuild ``version.scan`` from the cache, scanning what is missing (``force``: all)."""
    _rescan(session, store, version, inline_bytes=2**62, force=force)


def version_ids_pending(session: Session, limit: int = 100) -> list[uuid.UUID]:
    """Versions whose scan is still ``pending`` (oldest first)."""
    return list(
        session.scalars(
            select(Version.id)
            .where(Version.scan["status"].as_string() == "pending")
            .order_by(Version.created_at)
            .limit(limit)
        )
    )


__all__ += ["Finding", "recompute", "version_ids_pending"]

"""Finishing pending scans and rescanning, each blob read outside any transaction.

``finish_version`` completes a ``pending`` version (the server's worker, a promotion that is
waiting for the answer, an embedded registration); ``rescan`` reruns the current scanner over
a version's files (``modelreg scan``). A change of a version's scan status or findings is an
audited event (``registry:version:scan``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.tables import Version
from modelreg.services.actor import Actor
from modelreg.services.audit import EventTag, record
from modelreg.services.scanning import SCANNER, code_kind
from modelreg.services.scanning.records import (
    _head,
    cached,
    pending_files,
    recompute,
    save_blob,
    scan_blob,
)
from modelreg.storage.base import BlobStore

__all__ = ["SCANNER_ACTOR", "finish_version", "rescan_version"]

Transaction = Callable[[], AbstractContextManager[Session]]

# Who the audit log names for scans nobody asked for (the worker finishing a pending scan).
SCANNER_ACTOR = Actor("modelreg-scanner", source="server")


def finish_version(
    read: Transaction, write: Transaction, store: BlobStore, version_id: uuid.UUID
) -> dict[str, Any] | None:
    """Scan what a ``pending`` version still lacks and write its final ``scan``; the new scan.

    ``None`` when the version is gone or no longer pending. Safe to run twice at once: verdicts
    are per digest and the last writer writes the same answer.
    """
    with read() as session:
        version = session.get(Version, version_id)
        if version is None or (version.scan or {}).get("status") != "pending":
            return None
        todo = pending_files(session, store, version)
    verdicts = {f.sha256: scan_blob(store, f.sha256, f.path, f.kind) for f in todo}
    with write() as session:
        for digest, verdict in verdicts.items():
            save_blob(session, digest, verdict)
        version = session.get(Version, version_id, with_for_update=True)
        if version is None or (version.scan or {}).get("status") != "pending":
            return None
        before = dict(version.scan or {})
        recompute(session, store, version, force=False)
        _audit(session, version, before, actor=SCANNER_ACTOR)
        return dict(version.scan or {})


def rescan_version(
    read: Transaction,
    write: Transaction,
    store: BlobStore,
    version_id: uuid.UUID,
    *,
    actor: Actor,
    force: bool,
    done: set[str] | None = None,
) -> dict[str, Any]:
    """Rescan a version's code files with the current scanner; ``{before, after, changed}``.

    Blobs the current scanner already judged are reused unless ``force``; ``done`` carries the
    digests a ``--all`` run has rescanned already, so each blob is read once per run.
    """
    done = set() if done is None else done
    with read() as session:
        version = session.get(Version, version_id)
        if version is None:
            return {"before": None, "after": None, "changed": False}
        files = [(f.path, f.sha256) for f in version.files]
        known = set() if force else set(cached(session, (d for _, d in files)))
    verdicts = {}
    for path, digest in files:
        if digest in known or digest in done or digest in verdicts:
            continue
        kind = code_kind(path, _head(store, digest))
        if kind is not None:
            verdicts[digest] = scan_blob(store, digest, path, kind)
    with write() as session:
        for digest, verdict in verdicts.items():
            save_blob(session, digest, verdict)
        done.update(verdicts)
        version = session.get(Version, version_id, with_for_update=True)
        if version is None:
            return {"before": None, "after": None, "changed": False}
        before = dict(version.scan or {})
        recompute(session, store, version, force=False)
        changed = _audit(session, version, before, actor=actor)
        return {"before": before, "after": dict(version.scan or {}), "changed": changed}


def _audit(session: Session, version: Version, before: dict[str, Any], *, actor: Actor) -> bool:
    """Record a change of status or findings (a new scanned_at alone is no change)."""
    after = version.scan or {}
    if (before.get("status"), before.get("findings")) == (
        after.get("status"),
        after.get("findings"),
    ):
        return False
    record(
        session,
        EventTag.VERSION_SCAN,
        actor=actor,
        target=f"{version.model.name}:{version.number}",
        model=version.model,
        before={"status": before.get("status"), "scanner": before.get("scanner")},
        after={
            "status": after.get("status"),
            "scanner": after.get("scanner"),
            "findings": len(after.get("findings") or []),
        },
    )
    return True


def pending_ids(read: Transaction, limit: int = 100) -> list[uuid.UUID]:
    """Versions still ``pending``, oldest first."""
    from modelreg.services.scanning.records import version_ids_pending

    with read() as session:
        return version_ids_pending(session, limit)


def version_id_of(session: Session, model_id: uuid.UUID, number: int) -> uuid.UUID | None:
    """A version's id from its model and number."""
    return session.scalar(
        select(Version.id).where(Version.model_id == model_id, Version.number == number)
    )


__all__ += ["SCANNER", "pending_ids", "version_id_of"]

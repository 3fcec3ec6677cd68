"""``modelreg fsck``: check (and ``--repair``) the stored bytes, the audit chain, the invariants."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelreg.services import fsck as checks
from modelreg.services.actor import Actor
from modelreg.services.usecases._handles import Handles
from modelreg.storage.base import Progress


def fsck(
    h: Handles,
    actor: Actor,
    *,
    model: str | None = None,
    jobs: int = 4,
    repair: bool = False,
    source: Path | None = None,
    progress: Callable[[int], Progress | None] | None = None,
) -> dict[str, Any]:
    """Check every referenced blob, the audit chain and the invariants; ``ok`` when all hold.

    ``progress`` is called once with the bytes to check and answers the per-chunk callback.
    With ``repair``, damaged blobs are restored from ``source`` or set aside (never dropped).
    """
    with h.read() as session:
        blobs = checks.referenced(session, actor=actor, model=model)
        problems = checks.invariants(session, actor=actor)
        chain = checks.audit_chain(session, actor=actor)
    total = sum(blob.size for blob in blobs)
    checks.check_blobs(
        h.store, blobs, jobs=jobs, progress=progress(total) if progress is not None else None
    )
    if repair:
        checks.repair(h.store, blobs, source)
    damaged = [
        {
            "model": holder.model,
            "version": holder.version,
            "path": holder.path,
            "sha256": blob.sha256,
            "problem": blob.problem,
            "repair": blob.repair,
            "fixed": bool(blob.repair and blob.repair.startswith("restored")),
        }
        for blob in blobs
        if blob.problem is not None
        for holder in blob.holders
    ]
    ok = not problems and bool(chain.get("ok")) and all(d["fixed"] for d in damaged)
    return {
        "ok": ok,
        "blobs_checked": len(blobs),
        "bytes_checked": total,
        "damaged": damaged,
        "audit": chain,
        "invariants": problems,
    }

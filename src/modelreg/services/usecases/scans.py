"""Scans: finish a pending one after a registration or before a gate; rescan.

``modelreg scan`` rescans. Blobs are read between transactions, never inside one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from modelreg.db.tables import Version
from modelreg.errors import RegistryError
from modelreg.names import Ref
from modelreg.services import versions
from modelreg.services.actor import Actor, Permission
from modelreg.services.scanning import service
from modelreg.services.usecases._handles import Handles

__all__ = ["after_register", "rescan", "rescan_all", "wait_for_scan"]


def _finish(h: Handles, version_id: Any) -> None:
    service.finish_version(h.read, h.write, h.store, version_id)


def after_register(h: Handles, version: dict[str, Any], version_id: Any) -> dict[str, Any]:
    """Hand a pending scan on: to the server's worker, or finish it here.

    Without a worker (embedded mode) it is finished before the registration returns.
    """
    if (version.get("scan") or {}).get("status") != "pending":
        return version
    worker = getattr(h, "scan_worker", None)
    if worker is not None:
        worker.wake()
        return version
    scan = service.finish_version(h.read, h.write, h.store, version_id)
    return {**version, "scan": scan} if scan is not None else version


def wait_for_scan(h: Handles, actor: Actor, name: str, number: int) -> None:
    """Gates wait for a pending scan: finish it now (a no-op when it is not pending).

    A reference that cannot be read is left to the caller, whose own check names the error.
    """
    try:
        with h.read() as session:
            version = versions.read_version(session, Ref(name, version=number), actor=actor)
            pending = (version.scan or {}).get("status") == "pending"
            version_id = version.id
    except RegistryError:
        return
    if pending:
        _finish(h, version_id)


def rescan(h: Handles, actor: Actor, ref: str, *, force: bool = False) -> dict[str, Any]:
    """Rerun the current scanner on one version; ``{name, version, before, after, changed}``."""
    with h.read() as session:
        version = versions.read_version(session, ref, actor=actor)
        actor.require(Permission.VERSION_UPDATE, version.model_id)
        name, number, version_id = version.model.name, version.number, version.id
    result = service.rescan_version(h.read, h.write, h.store, version_id, actor=actor, force=force)
    return {"name": name, "version": number, **result}


def rescan_all(h: Handles, actor: Actor, *, force: bool = False) -> list[dict[str, Any]]:
    """Rescan every version (admin); each blob is read at most once."""
    actor.require(Permission.ADMIN)
    with h.read() as session:
        rows = session.execute(select(Version.id).order_by(Version.created_at)).all()
    done: set[str] = set()
    out = []
    for (version_id,) in rows:
        result = service.rescan_version(
            h.read, h.write, h.store, version_id, actor=actor, force=force, done=done
        )
        after = result["after"] or {}
        if result["after"] is None:
            continue
        with h.read() as session:
            version = session.get(Version, version_id)
            label = (version.model.name, version.number) if version is not None else ("?", 0)
        out.append(
            {
                "name": label[0],
                "version": label[1],
                "status": after.get("status"),
                "changed": result["changed"],
                "before": (result["before"] or {}).get("status"),
            }
        )
    return out

"""``/api/v1/…/scan``: rerun the scanner on one version, or on every version (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.names import Ref
from modelreg.services.usecases import scans

router = APIRouter(prefix="/api/v1", tags=["versions"], route_class=StrictJsonRoute)

Number = Path(ge=1, le=2**31 - 1)


@router.post("/models/{name:model}/versions/{version}/scan", operation_id="versions-scan")
def rescan(
    name: str,
    registry: RegistryDep,
    actor: ActorDep,
    version: int = Number,
    force: bool = Query(default=False),
) -> dict[str, Any]:
    """Rescan a version's files with the server's scanner (contributor); a change is audited.

    ``{name, version, before, after, changed}``; ``force`` rereads blobs the current scanner
    already judged.
    """
    return scans.rescan(registry, actor, str(Ref(name, version=version)), force=force)


@router.post("/scans", operation_id="versions-scan-all")
def rescan_all(
    registry: RegistryDep, actor: ActorDep, force: bool = Query(default=False)
) -> dict[str, Any]:
    """Rescan every version (admin): ``{items: [{name, version, status, before, changed}]}``."""
    return {"items": scans.rescan_all(registry, actor, force=force)}

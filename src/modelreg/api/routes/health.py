"""``/healthz`` (the process answers) and ``/readyz`` (it can reach its database and store)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import RegistryDep

router = APIRouter(tags=["health"], route_class=StrictJsonRoute)


@router.get("/healthz", operation_id="health-live")
def healthz() -> dict[str, str]:
    """Liveness: the process is serving."""
    return {"status": "ok"}


@router.get("/readyz", operation_id="health-ready", response_model=None)
def readyz(registry: RegistryDep) -> Any:
    """Readiness: the database answers and the artifact store is reachable."""
    problems = []
    try:
        with registry.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready", reported as text
        problems.append(f"database: {exc.__class__.__name__}")
    try:
        registry.store.exists("0" * 64)
    except Exception as exc:
        problems.append(f"artifacts: {exc.__class__.__name__}")
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return {"status": "ready"}

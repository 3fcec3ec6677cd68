"""``/deployments``: the serve processes of every model the reader may read, or of one."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from modelreg.api.deps import RegistryDep
from modelreg.api.ui import render
from modelreg.api.ui.auth import UiActorDep
from modelreg.services.usecases import deployments as usecase

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


@router.get("/deployments")
def deployments_page(
    request: Request,
    registry: RegistryDep,
    actor: UiActorDep,
    model: str = Query(default="", max_length=200),
    page_token: str | None = Query(default=None, max_length=4096),
) -> HTMLResponse:
    """Deployments newest first, with their status from the heartbeat's age."""
    found = usecase.list_deployments(registry, actor, model or None, PAGE_SIZE, page_token)
    context = {
        "model": model,
        "deployments": found["items"],
        "next_page_token": found["next_page_token"],
    }
    return render.page(request, "deployments.html", context)

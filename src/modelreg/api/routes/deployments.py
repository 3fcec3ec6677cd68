"""``/api/v1/deployments``: serve processes report themselves, and who may read a model sees them.

Status and heartbeat thresholds: ``services.deployments``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.services import deployments
from modelreg.services.usecases import deployments as usecase

router = APIRouter(prefix="/api/v1", route_class=StrictJsonRoute, tags=["deployments"])


class DeploymentReport(BaseModel):
    """Body of ``PUT /deployments/{deployment_id}``: what the process says about itself."""

    model_config = ConfigDict(extra="forbid")
    # Lengths are checked by the service, as for the embedded registry (same messages).
    ref: str = Field(description="what it follows: models:/NAME/production")
    live_version: int | None = Field(default=None, description="the version it serves now")
    address: str = Field(default="", description=f"at most {deployments.MAX_ADDRESS} characters")
    hostname: str = Field(default="", description=f"at most {deployments.MAX_HOSTNAME} characters")
    pid: int | None = None
    started_at: datetime = Field(description="when the process started (with a time zone)")
    loaded_at: datetime | None = Field(default=None, description="when the live version loaded")
    last_error: str = Field(default="", description=f"at most {deployments.MAX_ERROR} characters")
    info: dict[str, Any] | None = Field(
        default=None, description=f"anything else, at most {deployments.MAX_INFO} bytes of JSON"
    )


class DeploymentRead(BaseModel):
    """A deployment, with its ``status`` (live, stale, stopped) from the heartbeat's age."""

    id: str
    model: str
    ref: str
    live_version: int | None
    address: str
    hostname: str
    pid: int | None
    started_at: str
    loaded_at: str | None
    heartbeat_at: str
    heartbeat_age: float = Field(description="seconds since the last heartbeat")
    status: str = Field(description="live, stale (no heartbeat for 15 s) or stopped (5 min)")
    last_error: str
    last_error_at: str | None
    reported_by: str
    created_at: str
    info: dict[str, Any]


class DeploymentPage(BaseModel):
    """Answer of ``GET /deployments``."""

    items: list[DeploymentRead]
    next_page_token: str | None


@router.put(
    "/deployments/{deployment_id}",
    response_model=DeploymentRead,
    operation_id="deployments-report",
    responses={201: {"model": DeploymentRead, "description": "the first report: created"}},
)
def report_deployment(
    deployment_id: str,
    body: DeploymentReport,
    response: Response,
    registry: RegistryDep,
    actor: ActorDep,
) -> Any:
    """Report a serve process (its id is a UUID it chose): 201 the first time, then heartbeats.

    A viewer of the model may report; only the principal that created a deployment may
    report it again.
    """
    spec = deployments.Report(**body.model_dump())
    data, created = usecase.report(registry, actor, deployment_id, spec)
    response.status_code = 201 if created else 200
    return data


@router.get("/deployments", response_model=DeploymentPage, operation_id="deployments-list")
def list_deployments(
    registry: RegistryDep,
    actor: ActorDep,
    model: str | None = Query(default=None, max_length=200),
    page_size: int = Query(default=50, ge=1, le=1000),
    page_token: str | None = Query(default=None, max_length=4096),
) -> Any:
    """Deployments of the models the caller may read (of ``model`` only), newest first."""
    return usecase.list_deployments(registry, actor, model, page_size, page_token)


@router.delete(
    "/deployments/{deployment_id}",
    response_model=DeploymentRead,
    operation_id="deployments-end",
)
def end_deployment(deployment_id: str, registry: RegistryDep, actor: ActorDep) -> Any:
    """End a deployment (its process stops): its reporter, or a contributor of its model."""
    return usecase.end(registry, actor, deployment_id)

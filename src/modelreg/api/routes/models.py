"""``/api/v1/models``: create, list, read, describe, tag and delete registered models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.api.schemas import DescriptionUpdate, ModelCreate, ModelPage, ModelRead, TagsUpdate
from modelreg.names import Ref
from modelreg.services.usecases import catalog, governance

router = APIRouter(prefix="/api/v1", tags=["models"], route_class=StrictJsonRoute)


@router.post("/models", status_code=201, response_model=ModelRead, operation_id="models-create")
def create_model(body: ModelCreate, registry: RegistryDep, actor: ActorDep) -> Any:
    """Register a new, empty model."""
    return catalog.create_model(registry, actor, body.name, body.description, body.tags)


@router.get("/models", response_model=ModelPage, operation_id="models-list")
def list_models(
    registry: RegistryDep,
    actor: ActorDep,
    filter: str | None = Query(default=None, max_length=10_000),
    page_size: int = Query(default=100, ge=1, le=1000),
    page_token: str | None = Query(default=None, max_length=4096),
) -> Any:
    """Models matching ``filter`` (the search language)."""
    return catalog.list_models(registry, actor, filter, page_size, page_token)


@router.get("/models/{name:model}/history", operation_id="models-history")
def history(name: str, registry: RegistryDep, actor: ActorDep) -> dict[str, Any]:
    """Every stage change and alias move of a model."""
    return {"items": governance.history(registry, actor, name)}


@router.get("/models/{name:model}", response_model=ModelRead, operation_id="models-get")
def get_model(name: str, registry: RegistryDep, actor: ActorDep) -> Any:
    """One model."""
    return catalog.get_model(registry, actor, name)


# Longer paths first: /models/{name} would also match "team/tags".
@router.patch("/models/{name:model}/tags", response_model=ModelRead, operation_id="models-tag")
def tag_model(name: str, body: TagsUpdate, registry: RegistryDep, actor: ActorDep) -> Any:
    """Set and delete a model's tags."""
    return catalog.set_tags(registry, actor, Ref(name), body.set, body.delete)


@router.patch("/models/{name:model}", response_model=ModelRead, operation_id="models-describe")
def update_model(name: str, body: DescriptionUpdate, registry: RegistryDep, actor: ActorDep) -> Any:
    """Change a model's description."""
    return catalog.set_description(registry, actor, Ref(name), body.description)


@router.delete("/models/{name:model}", operation_id="models-delete")
def delete_model(
    name: str,
    registry: RegistryDep,
    actor: ActorDep,
    reason: str = Query(default="", max_length=5000),
) -> dict[str, str]:
    """Delete a model and its versions (numbers stay used)."""
    deleted: dict[str, str] = catalog.delete(registry, actor, Ref(name), reason)
    return deleted

"""``/api/v1/models``: create, list, read, describe, tag and delete registered models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.api.schemas import DescriptionUpdate, ModelCreate, ModelPage, ModelRead, TagsUpdate
from modelreg.services import lifecycle, models, serialize

router = APIRouter(prefix="/api/v1", tags=["models"], route_class=StrictJsonRoute)


@router.post("/models", status_code=201, response_model=ModelRead, operation_id="models-create")
def create_model(body: ModelCreate, registry: RegistryDep, actor: ActorDep) -> Any:
    """Register a new, empty model."""
    with registry.write() as session:
        model = models.create_model(
            session, body.name, actor=actor, description=body.description, tags=body.tags
        )
        return serialize.model_to_dict(session, model)


@router.get("/models", response_model=ModelPage, operation_id="models-list")
def list_models(
    registry: RegistryDep,
    actor: ActorDep,
    filter: str | None = Query(default=None, max_length=10_000),
    page_size: int = Query(default=100, ge=1, le=1000),
    page_token: str | None = Query(default=None, max_length=4096),
) -> Any:
    """Models matching ``filter`` (the search language)."""
    with registry.read() as session:
        page = models.list_models(
            session, actor=actor, filter=filter, page_size=page_size, page_token=page_token
        )
        items = serialize.models_to_dicts(session, list(page))
        return {"items": items, "next_page_token": page.next_page_token}


@router.get("/models/{name:model}/history", operation_id="models-history")
def history(name: str, registry: RegistryDep, actor: ActorDep) -> dict[str, Any]:
    """Every stage change and alias move of a model."""
    with registry.read() as session:
        return {
            "items": [
                serialize.history_to_dict(h) for h in lifecycle.history(session, name, actor=actor)
            ]
        }


@router.get("/models/{name:model}", response_model=ModelRead, operation_id="models-get")
def get_model(name: str, registry: RegistryDep, actor: ActorDep) -> Any:
    """One model."""
    with registry.read() as session:
        return serialize.model_to_dict(session, models.read_model(session, name, actor=actor))


# Longer paths first: /models/{name} would also match "team/tags".
@router.patch("/models/{name:model}/tags", response_model=ModelRead, operation_id="models-tag")
def tag_model(name: str, body: TagsUpdate, registry: RegistryDep, actor: ActorDep) -> Any:
    """Set and delete a model's tags."""
    with registry.write() as session:
        model = models.set_model_tags(
            session, name, actor=actor, set_tags=body.set, delete=body.delete
        )
        return serialize.model_to_dict(session, model)


@router.patch("/models/{name:model}", response_model=ModelRead, operation_id="models-describe")
def update_model(name: str, body: DescriptionUpdate, registry: RegistryDep, actor: ActorDep) -> Any:
    """Change a model's description."""
    with registry.write() as session:
        model = models.update_model(session, name, actor=actor, description=body.description)
        return serialize.model_to_dict(session, model)


@router.delete("/models/{name:model}", operation_id="models-delete")
def delete_model(
    name: str,
    registry: RegistryDep,
    actor: ActorDep,
    reason: str = Query(default="", max_length=5000),
) -> dict[str, str]:
    """Delete a model and its versions (numbers stay used)."""
    with registry.write() as session:
        models.delete_model(session, name, actor=actor, reason=reason)
    return {"deleted": name}

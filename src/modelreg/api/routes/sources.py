"""``/api/v1/sources``: S3 buckets and prefixes an admin allows, and copies from them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.services.usecases import sources

router = APIRouter(prefix="/api/v1", route_class=StrictJsonRoute, tags=["sources"])

_URI = Field(max_length=1024, description="s3://BUCKET or s3://BUCKET/PREFIX")


class SourceBody(BaseModel):
    """Body of ``POST /sources`` and ``POST /sources/copy``."""

    model_config = ConfigDict(extra="forbid")
    uri: str = _URI


class SourceRead(BaseModel):
    """An allowed source."""

    uri: str
    added_by: str
    added_at: str


class SourceList(BaseModel):
    """``GET /sources``."""

    items: list[SourceRead]


class CopiedFile(BaseModel):
    """One object copied in: its path under the source, digest and size."""

    path: str
    sha256: str
    size: int


class SourceCopy(BaseModel):
    """``POST /sources/copy``: what was copied, as a manifest to register."""

    uri: str
    files: list[CopiedFile]


@router.get("/sources", response_model=SourceList, operation_id="sources-list")
def list_sources(registry: RegistryDep, actor: ActorDep) -> Any:
    """Every allowed source (admin)."""
    return {"items": sources.list_sources(registry, actor)}


@router.post("/sources", status_code=201, response_model=SourceRead, operation_id="sources-allow")
def allow_source(body: SourceBody, registry: RegistryDep, actor: ActorDep) -> Any:
    """Allow copying from an S3 bucket or prefix (admin; audited)."""
    return sources.allow_source(registry, actor, body.uri)


@router.delete("/sources", response_model=SourceRead, operation_id="sources-remove")
def remove_source(registry: RegistryDep, actor: ActorDep, uri: str = Query(max_length=1024)) -> Any:
    """Stop allowing a source (admin; audited); versions copied from it stay."""
    return sources.remove_source(registry, actor, uri)


@router.post("/sources/copy", response_model=SourceCopy, operation_id="sources-copy")
def copy_source(body: SourceBody, registry: RegistryDep, actor: ActorDep) -> Any:
    """Copy the object, or the objects under a prefix, of an allowed source into the store.

    Admin only (``modelreg import mlflow`` uses it); audited as ``registry:source:copy``.

    The server reads them with its own credentials and hashes them as it stores them; the
    answer is the manifest to register (the caller may name those blobs from then on).
    """
    return sources.copy_source(
        registry, actor, body.uri, max_bytes=registry.settings.max_upload_bytes
    )

"""``/api/v1/blobs/sha256:{digest}``: have it? (HEAD), upload (PUT, streamed), download (GET)."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from modelreg.api.blob_send import blob_response
from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.api.schemas import ErrorEnvelope
from modelreg.api.uploads import receive_blob
from modelreg.services import artifacts
from modelreg.services.usecases import admin
from modelreg.storage.base import check_digest

router = APIRouter(prefix="/api/v1", tags=["blobs"], route_class=StrictJsonRoute)


class BlobRead(BaseModel):
    """What a blob upload stored."""

    sha256: str
    size: int
    created: bool


class GcRequest(BaseModel):
    """Body of ``POST /gc``."""

    grace_seconds: float = Field(default=3600, ge=0)
    dry_run: bool = False


@router.head("/blobs/sha256:{digest}", operation_id="blobs-exists")
def blob_exists(digest: str, registry: RegistryDep, actor: ActorDep) -> Response:
    """200 with the size when the blob is stored and the caller's, 404 otherwise.

    "The caller's": it may read a version that holds the blob or uploaded the bytes itself; a
    blob only other teams hold answers 404 as if absent (SECURITY.md rule 13).
    """
    artifacts.require_upload(actor)
    value = check_digest(digest)
    with registry.read() as session:
        mine = value in artifacts.owned_digests(session, actor, [value])
    if not mine or not registry.store.exists(value):
        return Response(status_code=404)
    return Response(status_code=200, headers={"content-length": str(registry.store.size(value))})


@router.put(
    "/blobs/sha256:{digest}",
    response_model=BlobRead,
    operation_id="blobs-upload",
    responses={
        408: {
            "model": ErrorEnvelope,
            "description": "No body bytes arrived for `body_idle_timeout` seconds "
            "(`body_timeout`); nothing was stored",
        },
        429: {
            "model": ErrorEnvelope,
            "description": "The caller has `max_uploads_per_principal` uploads running "
            "(`too_many_uploads`); see `Retry-After`",
        },
    },
)
async def upload_blob(digest: str, request: Request, registry: RegistryDep, actor: ActorDep) -> Any:
    """Store the body; the server hashes it and refuses bytes that do not match ``digest``.

    Bytes already stored are hashed and compared all the same, then dropped (kept once): the
    upload proves the caller holds them, which lets its manifests name the blob.
    """
    artifacts.require_upload(actor)
    value = check_digest(digest)
    info = await receive_blob(request, registry, actor, expected=value)
    if actor.principal_id is not None:

        def remember() -> None:
            with registry.write() as session:
                artifacts.record_possession(session, actor, info.sha256)

        await anyio.to_thread.run_sync(remember)
    return {"sha256": info.sha256, "size": info.size, "created": info.created}


@router.get(
    "/blobs/sha256:{digest}",
    operation_id="blobs-download",
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_blob(digest: str, registry: RegistryDep, actor: ActorDep) -> Any:
    """The blob's bytes (``Range`` supported on local stores), if the blob is the caller's.

    404 for a blob only other teams hold, as for one never stored.
    """
    with registry.read() as session:
        value = artifacts.require_blob(session, actor, digest)
    registry.store.size(value)  # raises BlobNotFound
    return blob_response(registry, value, filename=value)


@router.post("/gc", operation_id="blobs-gc")
def collect(body: GcRequest, registry: RegistryDep, actor: ActorDep) -> dict[str, Any]:
    """Remove unreferenced blobs older than ``grace_seconds`` and abandoned uploads."""
    return admin.collect_garbage(registry, actor, body.grace_seconds, body.dry_run)

"""Direct transfers: presigned URLs so clients move blob bytes to and from the bucket themselves.

Offered when the store can presign (S3) and ``direct_transfers`` is on; the proxied routes
(``blobs.py``) stay for everyone else. Authorisation is theirs exactly: uploading needs the
contributor role somewhere, a download URL is given only for a blob the caller may read (404
otherwise, as for one never stored). The server signs only keys it derives itself
(``storage.s3_direct``) and verifies an upload's bytes before the blob counts as present.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, Registry, RegistryDep
from modelreg.api.routes.blobs import BlobRead
from modelreg.errors import Conflict, InvalidInput
from modelreg.services import artifacts
from modelreg.services.actor import Actor
from modelreg.storage import s3_direct
from modelreg.storage.base import check_digest
from modelreg.storage.s3 import S3BlobStore

router = APIRouter(prefix="/api/v1", tags=["transfers"], route_class=StrictJsonRoute)

URLS_AT_ONCE = 100  # part URLs per request: a client asks again as it goes


class TransferOffer(BaseModel):
    """What ``GET /transfers`` tells a client: may it move bytes straight to the bucket?"""

    direct: bool
    expires_in: int


class UploadStart(BaseModel):
    """Body of ``POST /blobs/sha256:{digest}/uploads``."""

    size: int = Field(gt=0)


class PartState(BaseModel):
    """A part already in the bucket."""

    number: int
    size: int


class UploadRead(BaseModel):
    """A direct upload: how to cut the file, and which parts the bucket holds already."""

    upload_id: str
    part_size: int
    part_count: int
    parts: list[PartState]


class PartsRequest(BaseModel):
    """Body of ``POST …/uploads/{upload_id}/parts``: the part numbers to sign URLs for."""

    numbers: list[int] = Field(min_length=1, max_length=URLS_AT_ONCE)


class PartUrls(BaseModel):
    """Presigned ``PUT`` URLs by part number."""

    urls: dict[int, str]
    expires_in: int


class DownloadUrl(BaseModel):
    """A presigned ``GET`` URL of a blob."""

    url: str
    size: int
    expires_in: int


def _store(registry: Registry) -> S3BlobStore:
    store = registry.store
    if not registry.settings.direct_transfers or not isinstance(store, S3BlobStore):
        raise Conflict(
            "this server does not offer direct transfers (its store cannot presign, or "
            "direct_transfers is off): use the proxied blob routes",
            detail={"direct": False},
        )
    return store


def _principal(actor: Actor) -> str:
    return str(actor.principal_id or actor.name)


@router.get("/transfers", response_model=TransferOffer, operation_id="transfers-offer")
def offer(registry: RegistryDep, actor: ActorDep) -> Any:
    """Whether this server offers direct transfers, and how long its URLs stay valid."""
    store = registry.store
    direct = registry.settings.direct_transfers and isinstance(store, S3BlobStore)
    return {"direct": direct, "expires_in": registry.settings.presign_seconds}


@router.post(
    "/blobs/sha256:{digest}/uploads",
    response_model=UploadRead,
    operation_id="transfers-start-upload",
)
def start_upload(digest: str, body: UploadStart, registry: RegistryDep, actor: ActorDep) -> Any:
    """Start a direct upload of ``digest``, or resume the caller's unfinished one."""
    artifacts.require_upload(actor)
    store = _store(registry)
    limit = registry.settings.max_upload_bytes
    if body.size > limit:
        raise InvalidInput(f"upload is larger than the limit of {limit} bytes", detail={})
    up = s3_direct.start(store, _principal(actor), check_digest(digest), body.size)
    held = s3_direct.parts(store, up)
    present = [
        {"number": n, "size": p["size"]}
        for n, p in sorted(held.items())
        if n <= up.part_count and p["size"] == up.part_length(n)
    ]
    return {
        "upload_id": up.id,
        "part_size": up.part_size,
        "part_count": up.part_count,
        "parts": present,
    }


@router.post(
    "/blobs/sha256:{digest}/uploads/{upload_id}/parts",
    response_model=PartUrls,
    operation_id="transfers-part-urls",
)
def part_urls(
    digest: str, upload_id: str, body: PartsRequest, registry: RegistryDep, actor: ActorDep
) -> Any:
    """Presigned ``PUT`` URLs for parts of the caller's upload (at most 100 per request)."""
    artifacts.require_upload(actor)
    store = _store(registry)
    up = s3_direct.find(store, _principal(actor), digest, upload_id)
    expires = registry.settings.presign_seconds
    urls = s3_direct.presign_parts(
        store, up, body.numbers, expires, registry.settings.presign_endpoint
    )
    return {"urls": urls, "expires_in": expires}


@router.post(
    "/blobs/sha256:{digest}/uploads/{upload_id}/complete",
    response_model=BlobRead,
    operation_id="transfers-complete-upload",
)
def complete_upload(digest: str, upload_id: str, registry: RegistryDep, actor: ActorDep) -> Any:
    """Join the parts and hash them; only bytes that match ``digest`` are stored.

    The caller then holds the blob, as after a proxied upload. A mismatch answers
    ``digest_mismatch`` and removes the upload (start again); missing parts answer
    ``invalid_input`` naming them, and the upload stays to be resumed.
    """
    artifacts.require_upload(actor)
    store = _store(registry)
    up = s3_direct.find(store, _principal(actor), digest, upload_id)
    info = s3_direct.complete(store, up)
    if actor.principal_id is not None:
        with registry.write() as session:
            artifacts.record_possession(session, actor, info.sha256)
    return {"sha256": info.sha256, "size": info.size, "created": info.created}


@router.delete(
    "/blobs/sha256:{digest}/uploads/{upload_id}",
    status_code=204,
    operation_id="transfers-abort-upload",
)
def abort_upload(digest: str, upload_id: str, registry: RegistryDep, actor: ActorDep) -> None:
    """Drop the caller's unfinished upload and its parts."""
    artifacts.require_upload(actor)
    store = _store(registry)
    s3_direct.abort(store, s3_direct.find(store, _principal(actor), digest, upload_id))


@router.get(
    "/blobs/sha256:{digest}/url", response_model=DownloadUrl, operation_id="transfers-download-url"
)
def download_url(digest: str, registry: RegistryDep, actor: ActorDep) -> Any:
    """A short-lived URL to read the blob straight from the bucket, if the blob is the caller's.

    404 for a blob only other teams hold, as for one never stored. The client verifies the
    bytes it reads (and, on a mismatch, reads them through the server, which checks its copy).
    """
    store = _store(registry)
    with registry.read() as session:
        value = artifacts.require_blob(session, actor, digest)
    expires = registry.settings.presign_seconds
    url, size = s3_direct.presign_get(store, value, expires, registry.settings.presign_endpoint)
    return {"url": url, "size": size, "expires_in": expires}

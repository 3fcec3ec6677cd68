"""``/api/v1/blobs/sha256:{digest}``: have it? (HEAD), upload (PUT, streamed), download (GET)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.api.routes.versions import blob_response
from modelreg.errors import InvalidInput
from modelreg.services import artifacts, gc
from modelreg.storage.base import check_digest

router = APIRouter(prefix="/api/v1", tags=["blobs"])


class BlobRead(BaseModel):
    """What a blob upload stored."""

    sha256: str
    size: int
    created: bool


class GcRequest(BaseModel):
    """Body of ``POST /gc``."""

    grace_seconds: float = 3600
    dry_run: bool = False


class _BodyReader:
    """A blocking ``read()`` over the request's async body, for the blob store's worker thread.

    It counts bytes as they arrive and stops an upload that passes the size limit, so an
    oversized body is refused without ever being stored.
    """

    def __init__(self, chunks: AsyncIterator[bytes], limit: int) -> None:
        self._chunks = chunks
        self._limit = limit
        self._seen = 0
        self._buffer = b""
        self._done = False

    async def _gather(self, want: int) -> bytes:
        # One hop from the worker thread into the event loop per megabyte or so, not per
        # ASGI message (~64 KiB): the hops, not the hashing, bounded upload speed.
        parts: list[bytes] = []
        have = 0
        while want < 0 or have < want:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._done = True
                break
            self._seen += len(chunk)
            if self._seen > self._limit:
                raise InvalidInput(
                    f"upload is larger than the limit of {self._limit} bytes",
                    detail={"limit": self._limit},
                )
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def read(self, size: int = -1) -> bytes:
        if not self._done and (size < 0 or len(self._buffer) < size):
            want = -1 if size < 0 else max(size - len(self._buffer), _GATHER)
            self._buffer += anyio.from_thread.run(self._gather, want)
        if size < 0 or len(self._buffer) <= size:
            data, self._buffer = self._buffer, b""
            return data
        data = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return data


_GATHER = 1024 * 1024


@router.head("/blobs/sha256:{digest}", operation_id="blobs-exists")
def blob_exists(digest: str, registry: RegistryDep, actor: ActorDep) -> Response:
    """200 with the size when the blob is stored, 404 when it is not (contributors only)."""
    artifacts.require_upload(actor)
    value = check_digest(digest)
    if not registry.store.exists(value):
        return Response(status_code=404)
    return Response(status_code=200, headers={"content-length": str(registry.store.size(value))})


@router.put("/blobs/sha256:{digest}", response_model=BlobRead, operation_id="blobs-upload")
async def upload_blob(digest: str, request: Request, registry: RegistryDep, actor: ActorDep) -> Any:
    """Store the body; the server hashes it and refuses bytes that do not match ``digest``."""
    artifacts.require_upload(actor)
    value = check_digest(digest)
    limit = registry.settings.max_upload_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise InvalidInput(f"upload is larger than the limit of {limit} bytes", detail={})
    reader = _BodyReader(request.stream().__aiter__(), limit)
    info = await anyio.to_thread.run_sync(lambda: registry.store.put(reader, expected=value))  # type: ignore[arg-type]
    return {"sha256": info.sha256, "size": info.size, "created": info.created}


@router.get(
    "/blobs/sha256:{digest}",
    operation_id="blobs-download",
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_blob(digest: str, registry: RegistryDep, actor: ActorDep) -> Any:
    """The blob's bytes (``Range`` supported on local stores)."""
    with registry.read() as session:
        value = artifacts.require_download(session, actor, digest)
    registry.store.size(value)  # raises BlobNotFound
    return blob_response(registry, value, filename=value)


@router.post("/gc", operation_id="blobs-collect")
def collect(body: GcRequest, registry: RegistryDep, actor: ActorDep) -> dict[str, Any]:
    """Remove unreferenced blobs older than ``grace_seconds`` and abandoned uploads."""
    with registry.write() as session:
        result = gc.collect(
            session,
            registry.store,
            actor=actor,
            grace_seconds=body.grace_seconds,
            dry_run=body.dry_run,
        )
    return {
        "unreferenced": len(result.unreferenced),
        "removed": result.removed,
        "bytes_freed": result.bytes_freed,
        "temporary_removed": result.temporary_removed,
        "dry_run": result.dry_run,
    }

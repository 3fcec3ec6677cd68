"""Sending a blob: hashed on the way out, and never a complete 200 with bytes that are wrong.

The store's bytes can rot behind its back (a flipped bit, a truncated file, a careless
``cp``). Every download is hashed as it is sent and the last chunk held back until the whole
blob matched its digest; on a mismatch the response is cut off instead (the client sees a
broken transfer, never a finished one) and the stored copy is set aside as damaged
(``BlobStore.quarantine``), so the versions holding it show as damaged to ``modelreg fsck``
and the next upload of the right bytes repairs them. A size that differs from the manifest's
is caught before any header is sent, and answered 500 ``integrity_failure``.

A ``Range`` request is served unverified: a part cannot be checked against the whole file's
digest, and the client verifies the file it assembles.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import anyio.to_thread
from fastapi.responses import FileResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from modelreg.errors import IntegrityFailure
from modelreg.storage.base import BlobStore, verified_chunks

log = logging.getLogger("modelreg.integrity")

SEND_CHUNK = 1024 * 1024


def blob_response(registry: Any, digest: str, *, filename: str, size: int | None = None) -> Any:
    """Stream a blob as an attachment, verified; a local store's by path (``Range``, HEAD).

    Raises:
        BlobNotFound: the blob is not stored (or was set aside as damaged).
        IntegrityFailure: its stored size is not ``size``; the copy was set aside.
    """
    store: BlobStore = registry.store
    headers = {"x-content-sha256": digest}
    handle = store.open(digest)  # raises BlobNotFound
    try:
        local = store.local_path(digest)
        if size is not None:
            _check_size(store, digest, handle, size, local)
    except BaseException:
        handle.close()
        raise
    if local is not None:
        response = _VerifiedFileResponse(
            local,
            store=store,
            digest=digest,
            handle=handle,
            size=size,
            media_type="application/octet-stream",
            filename=filename,
            content_disposition_type="attachment",
            headers=headers,
        )
        # Starlette reads 64 KiB per worker-thread hop; a MiB per hop sends a large blob at
        # several times the speed (the hops, not the disk, were the limit).
        response.chunk_size = SEND_CHUNK
        return response
    headers["content-disposition"] = f'attachment; filename="{filename}"'
    if size is not None:
        headers["content-length"] = str(size)
    return StreamingResponse(
        _checked(store, digest, handle, size),
        media_type="application/octet-stream",
        headers=headers,
    )


def _check_size(
    store: BlobStore, digest: str, handle: BinaryIO, size: int, local: Path | None
) -> None:
    """Refuse before any header when the stored copy's size is not the manifest's (cheap)."""
    if local is None:
        return  # other stores answer size() with a round trip; the stream still checks it
    stored = os.fstat(handle.fileno()).st_size
    if stored != size:
        _set_aside(store, digest, handle, f"{stored} bytes stored, {size} expected")
        raise IntegrityFailure(
            f"stored blob sha256:{digest} is damaged ({stored} bytes, not {size}); it was set "
            "aside: upload the right bytes again or run `modelreg fsck --repair --from DIR`",
            detail={"digest": digest, "size": stored, "expected_size": size},
        )


def _set_aside(store: BlobStore, digest: str, handle: BinaryIO, why: str) -> None:
    moved = store.quarantine(digest, handle)
    log.error(
        "blob sha256:%s is damaged (%s); %s",
        digest,
        why,
        "set aside, every version holding it is damaged until the right bytes are uploaded"
        if moved
        else "already set aside or repaired",
    )


def _checked(store: BlobStore, digest: str, handle: BinaryIO, size: int | None) -> Iterator[bytes]:
    try:
        yield from verified_chunks(handle, digest, size)
    except IntegrityFailure as exc:
        _set_aside(store, digest, handle, str(exc))
        raise
    finally:
        handle.close()


class _VerifiedFileResponse(FileResponse):
    """``FileResponse`` whose whole-file answer is read from an open handle and verified."""

    def __init__(
        self,
        path: Path,
        *,
        store: BlobStore,
        digest: str,
        handle: BinaryIO,
        size: int | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(path, stat_result=os.fstat(handle.fileno()), **kwargs)
        self._chunks = _checked(store, digest, handle, size)
        self._handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._handle.close()

    async def _handle_simple(self, send: Send, send_header_only: bool, send_pathsend: bool) -> None:
        # Never ``pathsend``: the server would send the file unhashed.
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        if not send_header_only:
            read = functools.partial(next, self._chunks, None)
            try:
                while (chunk := await anyio.to_thread.run_sync(read)) is not None:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except IntegrityFailure:
                # Logged and set aside already (``_checked``). Returning without the last body
                # message leaves the response unfinished: the server closes the connection, so
                # the client sees a broken transfer, and no handler tries a 500 after a 200.
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

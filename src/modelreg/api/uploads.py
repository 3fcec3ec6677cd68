"""How the server takes in file bytes: one slot per upload, no thread while waiting, idle cut-off.

Blob uploads and MLflow artifact uploads both come through ``receive_blob`` (SECURITY.md rule
16, "slow clients cost nothing"):

- the body is read on the event loop, and a worker thread is asked to hash and write only
  when a batch of bytes has arrived, so a client sending one byte a second holds a socket and
  a small buffer, never a thread. Those hops take tokens from a limiter of their own
  (``UploadGate.limiter``), not from the default one that sync routes and dependencies share,
  so uploads cannot starve ``/healthz`` or reads even when they are fast;
- a body that sends nothing for ``body_idle_timeout`` seconds is cut off with 408
  ``body_timeout``, and its temp file removed;
- each principal may have ``max_uploads_per_principal`` uploads running in this process; one
  more is answered 429 ``too_many_uploads`` with ``Retry-After`` before its body is read.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectSendStream
from starlette.requests import ClientDisconnect, Request

from modelreg.errors import BodyTimeout, InvalidInput, TooManyUploads
from modelreg.services.actor import Actor
from modelreg.storage.base import BlobInfo, BlobWriter

if TYPE_CHECKING:
    from modelreg.api.deps import Registry

# Batches of about _BATCH bytes go to the store's thread: one thread hop per MiB rather than
# one per ASGI message (~64 KiB), and the store hashes and writes a MiB at a time.
_BATCH = 1024 * 1024
# Read ahead of the store by up to this much, so the client is not kept waiting while the
# thread hashes (uvicorn stops reading a request after 64 KiB until the app asks for more).
_AHEAD = 8 * 1024 * 1024
# Threads hashing and writing uploads at once. Hashing and writing release the GIL, and two
# cores are busy long before eight threads are; more would only queue on the disk.
UPLOAD_THREADS = 8
# What a refused upload is told to wait: slots free as other uploads finish or time out.
RETRY_AFTER = 5


class UploadGate:
    """Counts the uploads each principal has running in this process (the event loop's only).

    Usage::

        with gate.slot(actor):
            ...  # read the body
    """

    def __init__(self, per_principal: int) -> None:
        self.per_principal = per_principal
        self.running: dict[uuid.UUID | str, int] = {}
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """The thread tokens upload work uses, apart from the default limiter's."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(UPLOAD_THREADS)
        return self._limiter

    @contextlib.contextmanager
    def slot(self, actor: Actor) -> Iterator[None]:
        """Hold one of ``actor``'s upload slots; raises ``TooManyUploads`` when all are taken.

        A user counts once however many tokens it uses; with no users, every loopback
        client is the registry's owner, one principal.
        """
        key: uuid.UUID | str = actor.principal_id or actor.name
        held = self.running.get(key, 0)
        if held >= self.per_principal:
            raise TooManyUploads(
                f"{actor.name} already has {held} uploads running, the most this server "
                f"takes at once from one user; retry after {RETRY_AFTER} s or when one ends",
                retry_after=RETRY_AFTER,
                detail={"running": held, "limit": self.per_principal},
            )
        self.running[key] = held + 1
        try:
            yield
        finally:
            left = self.running[key] - 1
            if left:
                self.running[key] = left
            else:
                del self.running[key]


async def receive_blob(
    request: Request, registry: Registry, actor: Actor, *, expected: str | None = None
) -> BlobInfo:
    """Stream the request body into the registry's store (hashed, fsynced, renamed into place).

    Raises:
        TooManyUploads: ``actor`` has its most uploads running already; nothing was read.
        InvalidInput: the body is larger than ``max_upload_bytes``; nothing is stored.
        BodyTimeout: no bytes came for ``body_idle_timeout`` seconds; nothing is stored.
        DigestMismatch: ``expected`` was given and the body hashes to something else.
    """
    settings = registry.settings
    limit = settings.max_upload_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise InvalidInput(f"upload is larger than the limit of {limit} bytes", detail={})
    gate = registry.uploads
    with gate.slot(actor):
        writer = await anyio.to_thread.run_sync(
            functools.partial(registry.store.writer, expected=expected), limiter=gate.limiter
        )
        body = _Body(limit, settings.body_idle_timeout)
        try:
            return await body.store(request.stream(), writer, gate.limiter)
        finally:
            if not body.committed:
                # Also when cancelled: the temp file must not outlive the request.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(writer.abort, limiter=gate.limiter)


class _Body:
    """One upload's body: read on the event loop, written by a thread a batch at a time."""

    def __init__(self, limit: int, idle: float) -> None:
        self._limit = limit
        self._idle = idle
        # When the reader began waiting for the client's next bytes (None: not waiting, e.g.
        # while the store catches up: that is the server's slowness, not the client's).
        self._waiting_since: float | None = None
        # Until the pump reaches the end of the body, a cut-off body (a cancelled pump) must
        # not pass for a whole one.
        self._error: Exception | None = ClientDisconnect()
        self._timed_out = False
        self.committed = False

    async def store(
        self, chunks: AsyncIterator[bytes], writer: BlobWriter, limiter: anyio.CapacityLimiter
    ) -> BlobInfo:
        send, receive = anyio.create_memory_object_stream[list[bytes]](
            max_buffer_size=_AHEAD // _BATCH
        )
        failure: Exception | None = None
        info: BlobInfo | None = None
        with send, receive:
            async with anyio.create_task_group() as group:
                group.start_soon(self._pump, chunks, send)
                group.start_soon(self._watch, group.cancel_scope)
                # Errors are raised outside the task group, which would wrap them in an
                # ExceptionGroup that the error handlers do not recognise.
                try:
                    async for batch in receive:
                        await anyio.to_thread.run_sync(_write, writer, batch, limiter=limiter)
                    if self._error is not None:
                        raise self._error
                    info = await anyio.to_thread.run_sync(writer.commit, limiter=limiter)
                    self.committed = True
                except Exception as exc:
                    failure = exc
                group.cancel_scope.cancel()
        if self._timed_out:
            raise BodyTimeout(
                f"no bytes of the upload arrived for {self._idle:g} s; nothing was stored",
                detail={"idle_timeout": self._idle},
            )
        if failure is not None:
            raise failure
        assert info is not None
        return info

    async def _pump(
        self, chunks: AsyncIterator[bytes], send: MemoryObjectSendStream[list[bytes]]
    ) -> None:
        """Read the body into batches; an error is kept for ``store`` to raise."""
        seen = 0
        batch: list[bytes] = []
        batched = 0
        try:
            with send:
                while True:
                    self._waiting_since = anyio.current_time()
                    try:
                        chunk = await anext(chunks)
                    except StopAsyncIteration:
                        break
                    self._waiting_since = None
                    seen += len(chunk)
                    if seen > self._limit:
                        raise InvalidInput(
                            f"upload is larger than the limit of {self._limit} bytes",
                            detail={"limit": self._limit},
                        )
                    if chunk:
                        batch.append(chunk)
                        batched += len(chunk)
                    if batched >= _BATCH:
                        await send.send(batch)
                        batch, batched = [], 0
                if batch:
                    await send.send(batch)
                self._error = None
        except Exception as exc:  # a client that went away, an oversized body
            self._error = exc
        finally:
            self._waiting_since = None

    async def _watch(self, scope: anyio.CancelScope) -> None:
        """Cancel the upload when the client has sent nothing for the idle timeout."""
        while True:
            since = self._waiting_since
            now = anyio.current_time()
            if since is not None and now - since >= self._idle:
                self._timed_out = True
                scope.cancel()
                return
            await anyio.sleep(self._idle / 2 if since is None else since + self._idle - now)


def _write(writer: BlobWriter, batch: list[bytes]) -> None:
    # Joined here, off the event loop: the store then hashes and writes a MiB per call.
    writer.write(batch[0] if len(batch) == 1 else b"".join(batch))

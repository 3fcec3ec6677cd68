"""Cached reads answered before routing: the serving hot path without FastAPI's per-request cost.

A route that answers a read about one model (``/api/v1/resolve``, the MLflow door's model
reads) stores the answer's bytes with ``remember`` under the raw request (path and query
string) and the registry's change stamp. ``CachedReads`` sits in front of the router: for a
bodiless GET it reads the stamp (one primary-key lookup), looks up the caller's actor and the
answer under that stamp, checks that the actor may read the answer's model, and sends the
bytes. Anything else, a miss included, goes down the normal path, which authenticates, checks
and errors exactly as before. Routing, dependency solving and two worker-thread hops were most
of a cached resolve's time; see docs/performance.md.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from anyio import to_thread
from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from modelreg.api.access_log import note_actor
from modelreg.api.deps import Registry, actor_key, basic_outside_door, cached_actor, is_local
from modelreg.services.actor import Permission
from modelreg.services.stamp import SqliteStampReader
from modelreg.services.stamp import current as stamp_of

JSON_HEADERS = [(b"content-type", b"application/json")]


def answer_key(scope: Scope) -> tuple[str, str, bytes] | None:
    """The key a read's answer is cached under, or ``None`` for requests the fast path skips.

    Only GETs without a body: their answer depends on nothing but the path and query string
    (and the caller, checked on every hit).
    """
    if scope.get("method") != "GET":
        return None
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return None
    return ("answer", scope["path"], bytes(scope.get("query_string", b"")))


def remember(request: Request, registry: Registry, stamp: int, model_id: Any, body: bytes) -> None:
    """Let ``CachedReads`` serve this request's 200 answer ``body`` while ``stamp`` stands.

    ``model_id`` is the model the answer is about: a hit is served only to callers who may
    read it; ``None`` means the answer spans models (a search), and only callers who may read
    every model are served it. ``stamp`` must have been read before the data the body was
    built from.
    """
    key = answer_key(request.scope)
    if key is not None:
        # The key is the client's path and query string (up to ~80 KB): it counts too, or
        # distinct queries with a long junk parameter would hold many times the byte budget.
        nbytes = len(body) + len(key[1]) + len(key[2])
        registry.cache.put(key, stamp, (model_id, body), nbytes)


class CachedReads:
    """Serve remembered answers to GETs from memory; pass everything else to ``app``."""

    def __init__(self, app: ASGIApp, *, registry: Registry) -> None:
        self.app = app
        self.registry = registry
        self.sqlite = SqliteStampReader.for_engine(registry.engine)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = answer_key(scope) if scope["type"] == "http" else None
        if key is None or not await self._serve(key, scope, send):
            await self.app(scope, receive, send)

    async def _stamp(self) -> int | None:
        if self.sqlite is not None:
            return self.sqlite.read()
        # A server database: the lookup is a network round trip, so it waits in a thread.
        return await to_thread.run_sync(self._stamp_in_session)

    def _stamp_in_session(self) -> int:
        with self.registry.read() as session:
            return stamp_of(session)

    async def _serve(self, key: Hashable, scope: Scope, send: Send) -> bool:
        cache = self.registry.cache
        if cache.peek(key) is None:
            return False  # nothing remembered: don't pay for the stamp
        stamp = await self._stamp()
        if stamp is None:
            return False
        hit = cache.get(key, stamp)
        if hit is None:
            return False
        header = b""
        named = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                header = value
            elif name == b"host":
                named = value
        client = scope.get("client")
        host = client[0] if client else None
        # Headers arrive as latin-1 bytes; the slow path reads them the same way.
        credentials = header.decode("latin-1")
        if basic_outside_door(credentials, scope["path"]):
            return False  # the slow path refuses it with its message
        local = is_local(host, named.decode("latin-1"), self.registry.settings)
        actor = cached_actor(self.registry, actor_key(credentials, local), stamp, host)
        model_id, body = hit
        if actor is None or not actor.can(Permission.READ, model_id):
            return False  # unknown caller or a refusal: the slow path answers it properly
        note_actor(scope, actor.name)
        headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True

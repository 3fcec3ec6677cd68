"""The server's one cache of answers, and the layer that serves them before routing.

An answer is the bytes of a 200 about one model (``model_id``), or about models at large
(``None``: a search). One rule decides whether a remembered answer may be served: the
registry's change stamp (``db.stamp``) is the one it was computed under, and the caller may
read its model (``None``: every model). ``api.cache.AnswerCache.get`` applies it wherever
answers are looked up:

- ``CachedReads`` sits in front of the router and answers a bodiless GET remembered under its
  raw path and query string (``AnswerCache.remember``): routing, dependency solving and two
  worker-thread hops were most of a cached resolve's time (docs/performance.md);
- ``/api/v1/resolve`` and the MLflow door's model reads (``api.mlflow._common.add_route``)
  look up the answer by their parsed parameters after authentication, so a request the
  layer passes on (another spelling, a POST, ``at``) is still spared the database.

Anything else, a miss included, goes down the normal path, which authenticates, checks and
errors exactly as before.
"""

from __future__ import annotations

from collections.abc import Hashable

from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from modelreg.api.access_log import note_actor
from modelreg.api.cache import answer_key
from modelreg.api.deps import Registry, actor_key, basic_outside_door, cached_actor, is_local
from modelreg.db.stamp import current as stamp_of

JSON_HEADERS = [(b"content-type", b"application/json")]


class CachedReads:
    """Serve remembered answers to GETs from memory; pass everything else to ``app``."""

    def __init__(self, app: ASGIApp, *, registry: Registry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = answer_key(scope) if scope["type"] == "http" else None
        if key is None or not await self._serve(key, scope, send):
            await self.app(scope, receive, send)

    async def _stamp(self) -> int | None:
        if self.registry.sqlite_stamp is not None:
            return self.registry.sqlite_stamp.read()
        # A server database: the lookup is a network round trip, so it waits in a thread.
        return await to_thread.run_sync(self._stamp_in_session)

    def _stamp_in_session(self) -> int:
        with self.registry.read() as session:
            return stamp_of(session)

    async def _serve(self, key: Hashable, scope: Scope, send: Send) -> bool:
        answers = self.registry.answers
        if not answers.holds(key):
            return False  # nothing remembered: don't pay for the stamp
        stamp = await self._stamp()
        if stamp is None:
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
        # An unknown caller, a stale answer or a refusal: the slow path answers it properly.
        answer = None if actor is None else answers.get(key, stamp, actor)
        if actor is None or answer is None:
            return False
        note_actor(scope, actor.name)
        headers = [*JSON_HEADERS, (b"content-length", str(len(answer.body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})
        return True

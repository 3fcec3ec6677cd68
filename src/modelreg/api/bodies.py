"""JSON request bodies, read strictly: an object that names a key twice is refused.

``json.loads`` keeps the last of two equal keys, so ``{"production": {…2 approvals…},
"production": {}}`` silently became an empty rule. Which value a sender meant is ambiguous in
every body, not only in policies, so both doors parse every JSON body this way: ``/api/v1``
through ``StrictJsonRoute`` (the route class of every router), the MLflow door through
``strict_loads`` in its parameter reader. The check costs one ``dict`` per object.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from modelreg.errors import InvalidInput


class DuplicateKey(ValueError):
    """A JSON object names ``key`` twice."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return obj


def strict_loads(raw: bytes | str, **kwargs: Any) -> Any:
    """``json.loads`` that raises ``InvalidInput`` naming a key an object holds twice.

    Malformed JSON still raises ``ValueError`` (``json.JSONDecodeError``), as ``json.loads``.
    """
    try:
        return json.loads(raw, object_pairs_hook=_unique, **kwargs)
    except DuplicateKey as exc:
        raise InvalidInput(
            f"the JSON body names the key {exc.key[:100]!r} twice; which one is meant is "
            "ambiguous, send it once",
            detail={"key": exc.key},
        ) from None


class _StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """A route whose JSON body is parsed by ``strict_loads``.

    A repeated key answers 400 ``invalid_input`` naming it; malformed JSON is answered by
    FastAPI as before.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler  # the route reads no body: nothing to parse

        async def strict(request: Request) -> Response:
            request = _StrictRequest(request.scope, request.receive)
            if "json" in request.headers.get("content-type", ""):
                # Parsed here, before FastAPI's own reader (which turns every exception into
                # a bare "error parsing the body"), so a repeated key is named in the answer.
                # Malformed JSON: FastAPI parses again and answers as it always has.
                # A body cut off by the size limit (ClientDisconnect) is answered there.
                with contextlib.suppress(ValueError, RecursionError, ClientDisconnect):
                    await request.json()
            return await handler(request)

        return strict

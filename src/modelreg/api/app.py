"""``create_app(settings)``: the FastAPI application serving one registry."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelreg import __version__
from modelreg.api import errors as api_errors
from modelreg.api.deps import Registry
from modelreg.api.routes import admin, audit, blobs, health, models, versions
from modelreg.config import Settings
from modelreg.db.schema import ensure_schema
from modelreg.db.session import make_engine
from modelreg.errors import RegistryError
from modelreg.local import os_user
from modelreg.storage import open_blob_store

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cache-control": "no-store",
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class JsonBodyLimit:
    """Cut off request bodies (other than blob uploads) past ``limit`` bytes, chunked or not.

    The Content-Length check in ``guard`` answers honest clients early; this catches bodies
    sent without a length, before they are buffered.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/api/v1/blobs/"):
            await self.app(scope, receive, send)
            return
        seen = 0
        refused = False

        async def limited() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # Answer now; the app then sees a client that went away, and anything it
                    # tries to send is dropped.
                    refused = True
                    response = api_errors.envelope(
                        "too_large", f"request bodies are limited to {self.limit} bytes", None, 413
                    )
                    await response(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited, guarded_send)


def create_app(settings: Settings) -> FastAPI:
    """The application for the registry ``settings`` describes (opens, never migrates, its DB).

    Raises:
        SchemaOutdated: the database needs ``modelreg db upgrade``.
    """
    engine = make_engine(settings.db_url)
    ensure_schema(engine, create=settings.create)
    registry = Registry(
        settings=settings,
        engine=engine,
        store=open_blob_store(settings.artifacts_location),
        owner=settings.actor or os_user(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="modelreg",
        version=__version__,
        description='The modelreg REST API. Errors are `{"error": {code, message, detail}}`.',
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.registry = registry
    app.add_exception_handler(RegistryError, api_errors.registry_error)
    app.add_exception_handler(RequestValidationError, api_errors.validation_error)
    app.add_exception_handler(HTTPException, api_errors.http_error)

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.method in WRITE_METHODS and not request.url.path.startswith("/api/v1/blobs/"):
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            length = request.headers.get("content-length")
            if kind != "application/json" and (length not in (None, "0") or kind):
                # Browsers send text/plain and form types cross-site without a preflight.
                return api_errors.envelope(
                    "unsupported_media_type",
                    "send JSON (Content-Type: application/json)",
                    None,
                    415,
                )
            if length is not None and length.isdigit() and int(length) > settings.max_json_bytes:
                return api_errors.envelope(
                    "too_large",
                    f"JSON bodies are limited to {settings.max_json_bytes} bytes",
                    None,
                    413,
                )
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    app.add_middleware(JsonBodyLimit, limit=settings.max_json_bytes)
    if settings.allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    # versions first: its /models/{name}/versions… routes are more specific than /models/{name}.
    for module in (health, versions, models, blobs, audit, admin):
        app.include_router(module.router)

    return app


def iter_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every API route of the app, descending into included routers."""
    pending: list[Any] = list(app.routes)
    while pending:
        route = pending.pop(0)
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None) or getattr(route, "router", None)
        if inner is not None and inner is not route and hasattr(inner, "routes"):
            pending.extend(inner.routes)


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (what is committed as ``openapi.json``)."""
    return app.openapi()

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

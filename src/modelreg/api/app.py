"""``create_app(settings)``: the FastAPI application serving one registry."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from modelreg import __version__
from modelreg.api import errors as api_errors
from modelreg.api.deps import Registry
from modelreg.api.routes import audit, blobs, health, models, versions
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


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "testclient"


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
        client = request.client.host if request.client else None
        if not _is_loopback(client):
            # No users exist yet, so nobody off this machine may use it (DESIGN.md: laptop mode).
            return api_errors.envelope(
                "unauthenticated", "this registry has no users: loopback clients only", None, 401
            )
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
    for module in (health, versions, models, blobs, audit):
        app.include_router(module.router)

    return app


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (what is committed as ``openapi.json``)."""
    return app.openapi()

"""``create_app(settings)``: the FastAPI application serving one registry."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelreg import __version__
from modelreg.api import errors as api_errors
from modelreg.api.access_log import AccessLog
from modelreg.api.answers import CachedReads
from modelreg.api.deps import Registry
from modelreg.api.docs_page import router as docs_router
from modelreg.api.events_hub import EventHub
from modelreg.api.mlflow import artifacts as mlflow_artifacts
from modelreg.api.mlflow import registry as mlflow_registry
from modelreg.api.mlflow import tracking as mlflow_tracking
from modelreg.api.origin import HostAndOrigin
from modelreg.api.routes import (
    admin,
    aliases,
    audit,
    blobs,
    deployments,
    events,
    health,
    lifecycle,
    models,
    policies,
    scans,
    signatures,
    sources,
    transfers,
    versions,
    webhooks,
)
from modelreg.api.ui import build_router as ui_router
from modelreg.api.ui import is_ui_path
from modelreg.api.ui.auth import LoginThrottle
from modelreg.api.ui.forms import FormWrites
from modelreg.config import Settings, os_user
from modelreg.db.changes import ChangeFeed
from modelreg.db.schema import ensure_schema
from modelreg.db.session import make_engine
from modelreg.errors import RegistryError, StorageFailure
from modelreg.services.delivery.worker import DeliveryWorker
from modelreg.services.scanning import gate as scan_gate
from modelreg.services.scanning.worker import ScanWorker
from modelreg.storage import open_blob_store

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cache-control": "no-store",
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Bodies that are file bytes, not JSON: blob uploads and MLflow artifact uploads.
RAW_BODY_PREFIXES = ("/api/v1/blobs/", "/api/2.0/mlflow-artifacts/artifacts/")


class SecurityHeaders:
    """Add the browser-facing hardening headers (SECURITY.md rule 6) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


ERROR_STATUSES = {
    "400": "Invalid input (`invalid_input`, `invalid_name`, `invalid_query`, `invalid_host`, …)",
    "401": "No valid token (`unauthenticated`)",
    "403": "The token's roles do not allow this (`permission_denied`), or a write another "
    "site's page sent (`cross_site_request`)",
    "404": "Not found (`model_not_found`, `version_not_found`, …)",
    "409": "Conflict (`already_exists`, `immutable`, `concurrent_change`)",
    "413": "Body too large (`too_large`)",
    "415": "Not JSON (`unsupported_media_type`)",
}


def _document_errors(app: FastAPI) -> None:
    """Declare the error envelope on every API operation, instead of FastAPI's unused 422."""
    from modelreg.api.schemas import ErrorEnvelope

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = FastAPI.openapi(app)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        envelope = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(envelope.pop("$defs", {}))
        schemas["ErrorEnvelope"] = envelope
        ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
        for path, operations in document.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                # FastAPI's own 422 goes (validation errors answer 400 here); a route's
                # declared 422 (a policy refusal) stays.
                if responses.get("422", {}).get("description") == "Validation Error":
                    del responses["422"]
                if path.startswith("/api/"):
                    for status, description in ERROR_STATUSES.items():
                        responses.setdefault(
                            status,
                            {
                                "description": description,
                                "content": {"application/json": {"schema": ref}},
                            },
                        )
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


class JsonOnly:
    """Refuse API writes not declared as JSON (415) or declaring more than ``limit`` bytes (413).

    Every write carries ``Content-Type: application/json``, a bodiless POST too: a web page
    can POST with no type, ``text/plain`` or a form type to any address without asking, but
    with a JSON type only after a CORS preflight, which this server never grants (SECURITY.md
    rules 6, 14). Writes to the web UI are forms instead, each checked for its CSRF token by
    ``ui.forms.FormWrites``, to which this layer hands them. Two kinds pass untyped, both
    with methods a page cannot send cross-site without that preflight: byte uploads (PUT
    under ``RAW_BODY_PREFIXES``) and a DELETE without a body (MLflow's client sends some
    bare). A plain ASGI layer: as Starlette's
    ``BaseHTTPMiddleware`` it cost every request, reads included, a task hop.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.forms = FormWrites(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "")
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or method not in WRITE_METHODS
            or (method == "PUT" and path.startswith(RAW_BODY_PREFIXES))
        ):
            await self.app(scope, receive, send)
            return
        if is_ui_path(path):
            await self.forms(scope, receive, send)
            return
        headers = Headers(scope=scope)
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        length = headers.get("content-length")
        bare_delete = (
            method == "DELETE"
            and not kind
            and length in (None, "0")
            and "transfer-encoding" not in headers
        )
        response = None
        if kind != "application/json" and not bare_delete:
            response = api_errors.envelope(
                "unsupported_media_type",
                f"send writes as JSON (Content-Type: application/json), even without a body; "
                f"got {kind or 'no Content-Type'}",
                {"content_type": kind},
                415,
                path=path,
            )
        elif length is not None and length.isdigit() and int(length) > self.limit:
            response = api_errors.envelope(
                "too_large", f"JSON bodies are limited to {self.limit} bytes", None, 413, path=path
            )
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class JsonBodyLimit:
    """Cut off request bodies (not uploads) past ``limit`` bytes or idle for ``idle`` seconds.

    The Content-Length check in ``JsonOnly`` answers honest clients early; this catches bodies
    sent without a length, before they are buffered. A body that stalls is answered 408
    ``body_timeout`` (SECURITY.md rule 16; uploads have the same cut-off in ``api.uploads``).
    """

    def __init__(self, app: ASGIApp, *, limit: int, idle: float) -> None:
        self.app = app
        self.limit = limit
        self.idle = idle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            scope["path"].startswith(RAW_BODY_PREFIXES) and scope["method"] == "PUT"
        ):
            await self.app(scope, receive, send)
            return
        seen = 0
        refused = False
        complete = False

        async def refuse(code: str, message: str, status: int) -> Message:
            nonlocal refused
            # Answer now; the app then sees a client that went away, and anything it tries
            # to send is dropped.
            refused = True
            response = api_errors.envelope(code, message, None, status, path=scope["path"])
            await response(scope, receive, send)
            return {"type": "http.disconnect"}

        async def limited() -> Message:
            nonlocal seen, complete
            if refused:
                return {"type": "http.disconnect"}
            if complete:
                # Past the body, receive() waits for the client to leave (e.g. while a
                # download streams): no time limit there.
                return await receive()
            message: Message | None = None
            with anyio.move_on_after(self.idle):
                message = await receive()
            if message is None:
                return await refuse(
                    "body_timeout", f"no bytes of the request body arrived for {self.idle:g} s", 408
                )
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    return await refuse(
                        "too_large", f"request bodies are limited to {self.limit} bytes", 413
                    )
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
    scan_gate.configure(str(engine.url), allow_unsafe=settings.allow_unsafe_production)
    registry = Registry(
        settings=settings,
        engine=engine,
        store=open_blob_store(settings.artifacts_location),
        owner=settings.actor or os_user(),
    )

    hub = EventHub(ChangeFeed(engine))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Partial uploads of writers killed before this start (a crashed server, a killed
        # CLI) are dropped now, not after gc's grace; a live writer's are never touched.
        # An unreadable folder or an unreachable bucket fails the first upload instead: the
        # server starts, and works once the store is back.
        with contextlib.suppress(OSError, StorageFailure):
            await anyio.to_thread.run_sync(
                functools.partial(registry.store.clean_temporary, older_than=0)
            )
        # The delivery worker: every server process runs one, the lease lets one work.
        worker = DeliveryWorker(engine, settings).start()
        # The scan worker finishes pending scans, those earlier processes left included.
        registry.scan_worker = ScanWorker(engine, registry.store).start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(registry.scan_worker.stop)
            registry.scan_worker = None
            await anyio.to_thread.run_sync(worker.stop)
            hub.close()
            engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="modelreg",
        version=__version__,
        description='The modelreg REST API. Errors are `{"error": {code, message, detail}}`.',
        # The docs page is ``api.docs_page``: FastAPI's loads Swagger UI from a CDN.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.registry = registry
    app.state.events = hub
    app.state.ui_throttle = LoginThrottle()
    app.add_exception_handler(RegistryError, api_errors.registry_error)
    app.add_exception_handler(RequestValidationError, api_errors.validation_error)
    app.add_exception_handler(HTTPException, api_errors.http_error)
    app.add_exception_handler(Exception, api_errors.unexpected_error)

    _document_errors(app)

    # Innermost: remembered reads are answered before routing, behind every guard.
    app.add_middleware(CachedReads, registry=registry)
    app.add_middleware(JsonOnly, limit=settings.max_json_bytes)
    app.add_middleware(
        JsonBodyLimit, limit=settings.max_json_bytes, idle=settings.body_idle_timeout
    )
    # Outside every layer that answers (the cached reads included): a request to a name the
    # registry is not served as, or a cross-site write, reaches nothing.
    app.add_middleware(HostAndOrigin, registry=registry, allowed_hosts=settings.allowed_hosts)
    # Added last, so it is the outermost layer: every answer gets the headers, even the
    # ones the inner middlewares send on their own (413, 415, 400 for a bad Host, 403).
    app.add_middleware(SecurityHeaders)
    # Outside even that: the access log sees every answer as the client gets it.
    app.add_middleware(AccessLog)
    # The /models/{name}/… routes of versions, aliases, lifecycle and policies come before
    # models': /models/{name} would also match "fraud/policy" (such names are reserved).
    for module in (
        health,
        versions,
        aliases,
        lifecycle,
        policies,
        signatures,
        sources,
        models,
        blobs,
        transfers,
        audit,
        events,
        admin,
        webhooks,
        deployments,
        scans,
    ):
        app.include_router(module.router)
    app.include_router(docs_router)
    # The MLflow door (MLFLOW-PROTOCOL.md): the same service layer and authentication.
    for router in (
        mlflow_registry.router,
        mlflow_tracking.router,
        mlflow_tracking.info_router,
        mlflow_artifacts.router,
    ):
        app.include_router(router)
    # Last: the web UI's pages take every path the API does not (``ui.is_ui_path``).
    app.include_router(ui_router())

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

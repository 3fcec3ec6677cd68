"""The scoring server's ASGI app, answering with whichever model the follower has live.

Routes: ``/invocations``, ``/ping``, ``/health``, ``/version``, ``/metrics``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelreg.errors import BodyTooLarge, InvalidInput, ModelFailed, RegistryError
from modelreg.names import Ref
from modelreg.serving.deploy import Reporter
from modelreg.serving.follower import Follower, Live, Loader
from modelreg.serving.guard import Guard, parse_guard
from modelreg.serving.metrics import Metrics
from modelreg.serving.protocol import dump, parse_body

log = logging.getLogger("modelreg.serve")

ENV = "MODELREG_SERVE"  # the JSON ServeConfig handed to uvicorn's worker processes
MAX_BODY = 32 << 20
DEFAULT_LOADER = "modelreg.flavors:open_version"


@dataclass
class ServeConfig:
    """What ``modelreg serve`` hands each worker (as JSON in ``MODELREG_SERVE``)."""

    ref: str
    registry: str = ""  # folder or URL; "" for MODELREG_URI / MODELREG_HOME
    address: str = ""
    trust: bool = False
    require_signature: bool = False
    guard: str | None = None
    loader: str = DEFAULT_LOADER
    max_body: int = MAX_BODY
    report: bool = True
    events: bool = True  # False: follow by polling only
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Serving:
    """The parts of one serve process, as the routes use them."""

    follower: Follower
    metrics: Metrics
    guard: Guard | None = None
    reporter: Reporter | None = None
    max_body: int = MAX_BODY


def load_loader(spec: str) -> Loader:
    """``module:function`` to the function (the default is ``modelreg.flavors:open_version``)."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise InvalidInput(f"a loader is MODULE:FUNCTION, got {spec!r}", detail={"loader": spec})
    try:
        found: Loader = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"cannot import the loader {spec}: {exc}", detail={}) from None
    return found


def assemble(registry: Any, config: ServeConfig, loader: Loader | None = None) -> Serving:
    """Follower, metrics, guard and reporter for ``config``, wired together (not started)."""
    follower = Follower(
        registry,
        config.ref,
        loader=loader or load_loader(config.loader),
        trust=config.trust,
        require_signature=config.require_signature,
        events=config.events,
    )
    metrics = Metrics(follower.name)
    serving = Serving(follower, metrics, max_body=config.max_body)
    first = [True]

    def on_change(what: str, live: Live | None, seconds: float) -> None:
        if what == "swap" and live is not None:
            metrics.live.labels(follower.name).set(live.version)
            metrics.swaps.labels(follower.name, "ok").inc()
            metrics.load_seconds.labels(follower.name).observe(seconds)
            if serving.guard is not None:
                if first[0]:
                    serving.guard.disarm()
                else:
                    serving.guard.arm(live.version)
            first[0] = False
        elif what == "failure":
            metrics.swaps.labels(follower.name, "failed").inc()

    follower.listeners.append(on_change)
    if config.guard:
        serving.guard = Guard(parse_guard(config.guard), _rollback(registry, follower))
    if config.report:
        serving.reporter = Reporter(registry, follower, address=config.address, info=config.info)
    return serving


def guard_target(ref: Ref) -> str:
    """What the guard rolls back: the stage, or ``@alias``; refuses other references."""
    if ref.stage is not None:
        return ref.stage.value
    if ref.alias is not None:
        return f"@{ref.alias}"
    raise InvalidInput(
        f"--guard needs a stage or alias reference to roll back, not {ref}",
        detail={"ref": str(ref)},
    )


def _rollback(registry: Any, follower: Follower) -> Any:
    target = guard_target(follower.ref)

    def rollback(version: int, reason: str) -> None:
        registry.rollback(follower.name, stage=target, reason=reason, expect_current=version)
        follower.kick()

    return rollback


def build_app(serving: Serving) -> Starlette:
    """The ASGI app; its lifespan starts and stops the follower and the reporter."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        serving.follower.start()
        if serving.reporter is not None:
            serving.reporter.start()
        try:
            yield
        finally:
            serving.follower.stop()
            if serving.reporter is not None:
                await run_in_threadpool(serving.reporter.stop)

    routes = [
        Route("/invocations", _invocations(serving), methods=["POST"]),
        Route("/ping", _ping(serving), methods=["GET"]),
        Route("/health", _ping(serving), methods=["GET"]),
        Route("/version", _version(serving), methods=["GET"]),
        Route("/metrics", _metrics(serving), methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.serving = serving
    return app


def app_from_env() -> Starlette:
    """The app for one uvicorn worker, from ``MODELREG_SERVE`` and the registry's env."""
    from modelreg.api.orphans import watch_parent
    from modelreg.client import Registry

    watch_parent()  # a worker of --workers N ends with its supervisor
    config = ServeConfig(**json.loads(os.environ[ENV]))
    return build_app(assemble(Registry(config.registry or None), config))


def _error(
    status: int, exc: RegistryError | None, message: str, headers: dict[str, str]
) -> JSONResponse:
    error = exc.to_dict() if exc else {"code": "unavailable", "message": message, "detail": {}}
    mlflow_code = "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"
    body = {"error_code": mlflow_code, "message": error["message"], "error": error}
    return JSONResponse(body, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is over {limit} bytes", detail={"limit": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over {limit} bytes", detail={"limit": limit})
        chunks.append(chunk)
    return b"".join(chunks)


def _score(live: Live, body: bytes, content_type: str) -> bytes:
    """Parse, check and predict on a worker thread (none of it blocks the event loop)."""
    signature = live.model.version.signature or {}
    columns = [c.get("name") for c in signature.get("inputs") or [] if isinstance(c, dict)]
    data = parse_body(body, content_type, [c for c in columns if c] or None)
    if hasattr(data, "columns"):
        live.model.check_input(data)
    return dump(live.model.predict(data))


def _invocations(serving: Serving) -> Any:
    follower, metrics, guard = serving.follower, serving.metrics, serving.guard

    async def invocations(request: Request) -> Response:
        started = time.perf_counter()
        live = follower.live  # read once: this request finishes on this model
        if live is None:
            metrics.observe(None, 503, time.perf_counter() - started)
            message = f"no version of {follower.ref} is loaded yet: {follower.last_error}"
            return _error(503, None, message.rstrip(": "), {"retry-after": "1"})
        headers = {"modelreg-version": f"{follower.name}:{live.version}"}
        status = 200
        try:
            body = await _read_body(request, serving.max_body)
            content_type = request.headers.get("content-type", "")
            payload = await run_in_threadpool(_score, live, body, content_type)
            response: Response = Response(payload, media_type="application/json", headers=headers)
        except BodyTooLarge as exc:
            status = 413
            response = _error(status, exc, "", headers)
        except InvalidInput as exc:
            status = 400
            response = _error(status, exc, "", headers)
        except Exception as exc:
            status = 500
            log.exception("%s:%s failed to predict", follower.name, live.version)
            failure = ModelFailed(f"the model failed: {type(exc).__name__}: {exc}")
            response = _error(status, failure, "", headers)
        metrics.observe(live.version, status, time.perf_counter() - started)
        if guard is not None:
            guard.note(live.version, status >= 500)
        return response

    return invocations


def _ping(serving: Serving) -> Any:
    async def ping(request: Request) -> Response:
        if serving.follower.live is None:
            return Response("no model loaded\n", status_code=503, media_type="text/plain")
        return Response("\n", media_type="text/plain")

    return ping


def _version(serving: Serving) -> Any:
    follower = serving.follower

    async def version(request: Request) -> Response:
        live = follower.live
        body = {
            "name": follower.name,
            "version": live.version if live else None,
            "ref": follower.ref_text,
            "flavor": live.model.flavor if live else None,
            "loaded_at": live.loaded_at if live else None,
            "last_error": follower.last_error,
            "last_error_at": follower.last_error_at,
            "following": follower.follows,
            "events": follower.events_ok,
            "deployment": serving.reporter.id if serving.reporter else None,
            "guard": str(serving.guard.rule) if serving.guard else None,
        }
        return JSONResponse(body)

    return version


def _metrics(serving: Serving) -> Any:
    async def metrics(request: Request) -> Response:
        text, content_type = serving.metrics.render()
        return Response(text, headers={"content-type": content_type})

    return metrics

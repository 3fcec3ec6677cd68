"""What every MLflow route shares: reading MLflow's parameters, its error format, JSON shapes."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from modelreg import errors
from modelreg.api.bodies import strict_loads
from modelreg.api.cache import Answer
from modelreg.api.deps import MLFLOW_PREFIXES, ActorDep, Registry, RegistryDep
from modelreg.db.tables import Model, Version, VersionStatus
from modelreg.errors import InvalidInput
from modelreg.names import Stage
from modelreg.services.actor import Actor, Permission

DIGITS = re.compile(r"[0-9]{1,9}")  # ASCII only: str.isdigit() also accepts "²"

# MLflow's spelling of each stage, both ways.
STAGE_NAMES = {
    Stage.NONE: "None",
    Stage.STAGING: "Staging",
    Stage.PRODUCTION: "Production",
    Stage.ARCHIVED: "Archived",
}

# modelreg error class -> (HTTP status, MLflow error_code); the first match wins.
ERROR_CODES: list[tuple[type[errors.RegistryError], int, str]] = [
    (errors.Unauthenticated, 401, "UNAUTHENTICATED"),
    (errors.PermissionDenied, 403, "PERMISSION_DENIED"),
    # MLflow answers a missing alias with 400, and its client relies on it.
    (errors.AliasNotFound, 400, "INVALID_PARAMETER_VALUE"),
    (errors.NotFound, 404, "RESOURCE_DOES_NOT_EXIST"),
    # MLflow's register_model tolerates exactly this answer to "create the model".
    (errors.AlreadyExists, 400, "RESOURCE_ALREADY_EXISTS"),
    (errors.Conflict, 409, "INVALID_STATE"),
    (errors.PolicyViolation, 422, "INVALID_STATE"),
    # Pending approval is not an error in modelreg, but the MLflow client accepts only 200.
    (errors.ApprovalRequired, 409, "INVALID_STATE"),
    (errors.InvalidInput, 400, "INVALID_PARAMETER_VALUE"),
    (errors.BodyTimeout, 408, "DEADLINE_EXCEEDED"),
    (errors.TooManyUploads, 429, "REQUEST_LIMIT_EXCEEDED"),
    (errors.StorageFailure, 503, "TEMPORARILY_UNAVAILABLE"),
    (errors.SchemaOutdated, 503, "TEMPORARILY_UNAVAILABLE"),
    (errors.RegistryError, 500, "INTERNAL_ERROR"),
]
HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "ENDPOINT_NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    413: "INVALID_PARAMETER_VALUE",
    415: "BAD_REQUEST",
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
}
PREFIXES = MLFLOW_PREFIXES


def is_mlflow_path(path: str) -> bool:
    """Whether ``path`` belongs to the MLflow door (its errors use MLflow's format)."""
    return path.startswith(PREFIXES)


def mlflow_error(code: str, message: str, status: int) -> JSONResponse:
    """MLflow's error body: ``{"error_code", "message"}``."""
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def answer_registry_error(exc: errors.RegistryError) -> JSONResponse:
    """A modelreg error in MLflow's format and status."""
    for cls, status, code in ERROR_CODES:
        if isinstance(exc, cls):
            return mlflow_error(code, exc.message, status)
    raise AssertionError(exc)  # pragma: no cover - RegistryError is the last entry


def answer_status(status: int, message: str) -> JSONResponse:
    """A plain HTTP failure (unknown route, wrong method, too large) in MLflow's format."""
    return mlflow_error(HTTP_CODES.get(status, "INTERNAL_ERROR"), message, status)


# -- parameters -----------------------------------------------------------------------------


async def read_params(request: Request) -> dict[str, Any]:
    """MLflow's request fields: the query string of a GET, the JSON body of anything else.

    A key repeated in the query string (``order_by``, ``stages``) becomes a list. A write
    never reads the query string: MLflow's client sends its fields in the body, and a query
    string is what a cross-site form or link can set (SECURITY.md rule 14).
    """
    params: dict[str, Any] = {}
    if request.method in ("GET", "HEAD"):
        for key, value in request.query_params.multi_items():
            if key in params:
                current = params[key]
                params[key] = [*current, value] if isinstance(current, list) else [current, value]
            else:
                params[key] = value
    else:
        raw = await request.body()
        if raw.strip():
            try:
                # NaN and Infinity (which MLflow's client may send for metrics) stay strings,
                # so no JSON column ever holds a float that JSON cannot spell.
                body = strict_loads(raw, parse_constant=str)  # a repeated key: 400
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise InvalidInput("the request body is not valid JSON", detail={}) from None
            if not isinstance(body, dict):
                raise InvalidInput("the request body must be a JSON object", detail={})
            params.update(body)
    return params


def required(params: dict[str, Any], key: str) -> Any:
    """A mandatory field, with MLflow's wording when it is missing."""
    value = params.get(key)
    if value is None or value == "":
        raise InvalidInput(f"Missing value for required parameter '{key}'.", detail={"key": key})
    return value


def text(params: dict[str, Any], key: str, default: str = "") -> str:
    """A string field (numbers are accepted as their text, as MLflow's proto parsing does)."""
    value = params.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidInput(f"'{key}' must be a string", detail={"key": key})
    return str(value)


def as_list(value: Any) -> list[Any]:
    """A repeated field, whether it came as one query value, several, or a JSON list."""
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, list) else [value]


def key_values(items: Any, what: str) -> dict[str, Any]:
    """MLflow's ``[{"key": k, "value": v}, …]`` as a dict; a key given twice must agree."""
    out: dict[str, Any] = {}
    for item in as_list(items):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise InvalidInput(f"each {what} is {{key, value}}", detail={})
        key, value = item["key"], item.get("value", "")
        if key in out and out[key] != value:
            # MLflow refuses this too; keeping either value would silently lose the other.
            raise InvalidInput(
                f"{what} {key[:100]!r} is given twice with different values", detail={"key": key}
            )
        out[key] = value
    return out


def objects(items: Any, what: str) -> list[dict[str, Any]]:
    """A repeated field of JSON objects (metrics), refusing anything else."""
    found = as_list(items)
    if not all(isinstance(item, dict) for item in found):
        raise InvalidInput(f"each {what} is a JSON object", detail={})
    return found


MAX_ORDER_BY = 10


def order_by(params: dict[str, Any]) -> list[tuple[str, bool]]:
    """``order_by`` as ``(field, descending)`` pairs (at most ``MAX_ORDER_BY``)."""
    items = as_list(params.get("order_by"))
    if len(items) > MAX_ORDER_BY:
        raise InvalidInput(f"order_by takes at most {MAX_ORDER_BY} fields", detail={})
    out = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput("order_by entries are strings like 'name ASC'", detail={})
        field, _, direction = item.strip().partition(" ")
        field = field.removeprefix("attributes.").removeprefix("attribute.").lower()
        out.append((field, direction.strip().upper() == "DESC"))
    return out


def version_number(params: dict[str, Any]) -> int:
    """The ``version`` field (MLflow sends it as a string)."""
    value = required(params, "version")
    raw = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not DIGITS.fullmatch(raw) or int(raw) < 1:
        raise InvalidInput(f"invalid version {value!r}", detail={"version": value})
    return int(raw)


def page_offset(token: Any) -> int:
    """The offset an MLflow page token carries (tokens are opaque to clients)."""
    if token in (None, ""):
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        offset = data["offset"]
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise TypeError(offset)
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        raise InvalidInput("invalid page_token", detail={}) from None
    if not 0 <= offset <= 10**9:
        raise InvalidInput("invalid page_token", detail={})
    return offset


def page_token(offset: int) -> str:
    """The token for the page starting at ``offset``."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def max_results(params: dict[str, Any], default: int, limit: int) -> int:
    """``max_results`` within MLflow's bounds."""
    value = params.get("max_results", default)
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"invalid max_results {str(value)[:40]!r}", detail={}) from None
    if not 1 <= number <= limit:
        raise InvalidInput(
            f"max_results must be between 1 and {limit} (got {number})", detail={"max": limit}
        )
    return number


# -- JSON shapes ----------------------------------------------------------------------------


def ms(value: datetime | None) -> int | None:
    """Epoch milliseconds, MLflow's timestamp unit."""
    return None if value is None else int(value.timestamp() * 1000)


def pairs(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    """A dict as MLflow's ``[{"key", "value"}]``."""
    return [{"key": k, "value": v} for k, v in sorted(mapping.items())]


def version_json(version: Version) -> dict[str, Any]:
    """A version as MLflow's ``ModelVersion``."""
    name = version.model.name
    status = {
        VersionStatus.READY: "READY",
        VersionStatus.PENDING: "PENDING_REGISTRATION",
        VersionStatus.FAILED: "FAILED_REGISTRATION",
    }[version.status]
    data: dict[str, Any] = {
        "name": name,
        "version": str(version.number),
        "creation_timestamp": ms(version.created_at),
        "last_updated_timestamp": ms(version.updated_at),
        "user_id": version.created_by,
        "current_stage": STAGE_NAMES[version.stage],
        "description": version.description,
        "source": version.source_uri or f"models:/{name}/{version.number}",
        "run_id": version.run_id or "",
        "status": status,
        "run_link": "",
    }
    source = version.source_uri or ""
    if source.startswith("models:/m-"):
        data["model_id"] = source.removeprefix("models:/")
    if version.tags:
        data["tags"] = [{"key": t.key, "value": t.value} for t in version.tags]
    if version.aliases:
        data["aliases"] = [a.name for a in version.aliases]
    return data


def latest_per_stage(
    session: Session, models: Sequence[Model], stages: Sequence[Stage] | None = None
) -> dict[Any, list[Version]]:
    """For each model, its newest version in each stage (MLflow's ``latest_versions``)."""
    if not models:
        return {}
    ids = [m.id for m in models]
    query = select(Version.model_id, Version.stage, func.max(Version.number)).where(
        Version.model_id.in_(ids), Version.status == VersionStatus.READY
    )
    if stages is not None:
        query = query.where(Version.stage.in_(list(stages)))
    keys = {(m, n) for m, _s, n in session.execute(query.group_by(Version.model_id, Version.stage))}
    out: dict[Any, list[Version]] = {}
    if not keys:
        return out
    numbers = {n for _m, n in keys}
    rows = session.scalars(
        select(Version).where(Version.model_id.in_(ids), Version.number.in_(numbers))
    )
    for version in sorted(rows, key=lambda v: v.number):
        if (version.model_id, version.number) in keys:
            out.setdefault(version.model_id, []).append(version)
    return out


def model_json(model: Model, latest: Sequence[Version] = ()) -> dict[str, Any]:
    """A model as MLflow's ``RegisteredModel``."""
    data: dict[str, Any] = {
        "name": model.name,
        "creation_timestamp": ms(model.created_at),
        "last_updated_timestamp": ms(model.updated_at),
        "user_id": model.owner,
    }
    if model.description:
        data["description"] = model.description
    if latest:
        data["latest_versions"] = [version_json(v) for v in latest]
    if model.tags:
        data["tags"] = [{"key": t.key, "value": t.value} for t in model.tags]
    if model.aliases:
        data["aliases"] = [
            {"alias": a.name, "version": str(a.version.number)} for a in model.aliases
        ]
    return data


# -- routes ---------------------------------------------------------------------------------

Handler = Callable[[Registry, Actor, dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class ModelAnswer:
    """A read about one model: reusable while the registry's change stamp stands still."""

    model_id: Any
    body: dict[str, Any]


def add_route(
    router: APIRouter, path: str, methods: list[str], handler: Handler, *, cached: bool = False
) -> None:
    """Serve ``handler(registry, actor, params)`` at ``path``; a dict answer becomes JSON.

    The handler runs in a worker thread (it does blocking database work); authentication is
    the same ``ActorDep`` as every other route (SECURITY.md rule 5). A ``cached`` handler
    returns a ``ModelAnswer``, kept per request parameters under the change stamp the
    authentication read (before the data, so a change in between only causes a miss) and
    re-checked against the reader's grants on every hit, as ``/api/v1/resolve`` does: MLflow's
    client reads the model before every change it makes, so these reads are the hot path.
    """

    async def endpoint(request: Request, registry: RegistryDep, actor: ActorDep) -> Any:
        params = await read_params(request)
        params.update(request.path_params)
        if not cached:
            result = await run_in_threadpool(handler, registry, actor, params)
            return JSONResponse(result) if isinstance(result, dict) else result
        key = ("mlflow", path, json.dumps(params, sort_keys=True, default=str))
        stamp: int = request.state.stamp
        answer = registry.answers.get(key, stamp, actor)
        if answer is None:
            # The handler answers a model this caller may not read as absent (404).
            read: ModelAnswer = await run_in_threadpool(handler, registry, actor, params)
            answer = Answer(read.model_id, bytes(JSONResponse(read.body).body))
            registry.answers.put(key, stamp, answer)
        actor.require(Permission.READ, answer.model_id)
        registry.answers.remember(request.scope, stamp, answer)
        return Response(answer.body, media_type="application/json")

    endpoint.__doc__ = handler.__doc__
    router.add_api_route(
        path,
        endpoint,
        methods=methods,
        name=f"mlflow:{handler.__name__}",
        operation_id=f"mlflow-{'-'.join(methods).lower()}-{handler.__name__}",
        include_in_schema=False,
    )


def async_route(
    router: APIRouter,
    path: str,
    methods: list[str],
    endpoint: Callable[..., Awaitable[Any]],
) -> None:
    """Serve an endpoint that handles its own request (streamed artifact bodies)."""
    router.add_api_route(
        path,
        endpoint,
        methods=methods,
        name=f"mlflow:{endpoint.__name__}",
        operation_id=f"mlflow-{'-'.join(methods).lower()}-{endpoint.__name__}",
        include_in_schema=False,
    )

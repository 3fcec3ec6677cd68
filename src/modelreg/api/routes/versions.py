"""``/api/v1/…/versions``: register, read, list, search, resolve, describe, tag, delete, files."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from modelreg.api.blob_send import blob_response
from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.cache import Answer
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.api.schemas import (
    DescriptionUpdate,
    TagsUpdate,
    VersionCreate,
    VersionPage,
    VersionRead,
)
from modelreg.db.stamp import current as stamp_of
from modelreg.names import Ref, parse_instant
from modelreg.services import lifecycle, registration, serialize, versions
from modelreg.services.actor import Permission
from modelreg.services.usecases import browse, catalog

router = APIRouter(prefix="/api/v1", tags=["versions"], route_class=StrictJsonRoute)

Number = Path(ge=1, le=2**31 - 1)


@router.post(
    "/models/{name:model}/versions",
    status_code=201,
    response_model=VersionRead,
    operation_id="versions-register",
)
def register_version(name: str, body: VersionCreate, registry: RegistryDep, actor: ActorDep) -> Any:
    """Create the next version from uploaded blobs, atomically (creates the model if needed)."""
    spec = registration.RegistrationSpec(
        name=name,
        files=[versions.FileSpec(f.path, f.sha256, f.size) for f in body.files],
        metrics=body.metrics,
        params=body.params,
        tags=body.tags,
        description=body.description,
        semver=body.semver,
        bump=body.bump,
        lineage=versions.Lineage(**body.lineage.model_dump()),
        environment=body.environment.model_dump(),
        framework=body.framework,
        flavor=body.flavor,
        signature=body.signature,
        idempotency_key=body.idempotency_key,
        number=body.number,
        stage=body.stage,
    )
    return catalog.register(registry, actor, spec)


@router.get(
    "/models/{name:model}/versions", response_model=VersionPage, operation_id="versions-list"
)
def list_versions(
    name: str,
    registry: RegistryDep,
    actor: ActorDep,
    filter: str | None = Query(default=None, max_length=10_000),
    page_size: int = Query(default=100, ge=1, le=1000),
    page_token: str | None = Query(default=None, max_length=4096),
) -> Any:
    """A model's versions, newest first unless the filter orders them."""
    page = catalog.list_versions(registry, actor, name, filter, page_size, page_token)
    # Built by the service's serializer, so re-validating it through the pydantic model (the
    # OpenAPI schema) would only cost time: the drift and fuzz tests keep the two in step.
    return JSONResponse(page)


@router.get(
    "/models/{name:model}/versions/{version}",
    response_model=VersionRead,
    operation_id="versions-get",
)
def get_version(name: str, registry: RegistryDep, actor: ActorDep, version: int = Number) -> Any:
    """One version by number."""
    return catalog.get_version(registry, actor, Ref(name, version=version))


@router.patch(
    "/models/{name:model}/versions/{version}",
    response_model=VersionRead,
    operation_id="versions-describe",
)
def update_version(
    name: str,
    body: DescriptionUpdate,
    registry: RegistryDep,
    actor: ActorDep,
    version: int = Number,
) -> Any:
    """Change a version's description."""
    ref = Ref(name, version=version)
    return catalog.set_description(registry, actor, ref, body.description)


@router.patch(
    "/models/{name:model}/versions/{version}/tags",
    response_model=VersionRead,
    operation_id="versions-tag",
)
def tag_version(
    name: str, body: TagsUpdate, registry: RegistryDep, actor: ActorDep, version: int = Number
) -> Any:
    """Set and delete a version's tags."""
    ref = Ref(name, version=version)
    return catalog.set_tags(registry, actor, ref, body.set, body.delete)


@router.delete("/models/{name:model}/versions/{version}", operation_id="versions-delete")
def delete_version(
    name: str,
    registry: RegistryDep,
    actor: ActorDep,
    version: int = Number,
    reason: str = Query(default="", max_length=5000),
) -> dict[str, str]:
    """Delete one version; its number is never reused."""
    deleted: dict[str, str] = catalog.delete(registry, actor, Ref(name, version=version), reason)
    return deleted


@router.get(
    "/models/{name:model}/versions/{version}/files/{path:path}",
    operation_id="versions-file",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_file(
    name: str, path: str, registry: RegistryDep, actor: ActorDep, version: int = Number
) -> Any:
    """One file's bytes, served as an attachment (the client verifies its SHA-256)."""
    digest, size = browse.version_file(registry, actor, name, version, path)
    return blob_response(registry, digest, filename=path.rsplit("/", 1)[-1], size=size)


@router.get("/versions", response_model=VersionPage, operation_id="versions-search")
def search_versions(
    request: Request,
    registry: RegistryDep,
    actor: ActorDep,
    filter: str | None = Query(default=None, max_length=10_000),
    page_size: int = Query(default=100, ge=1, le=1000),
    page_token: str | None = Query(default=None, max_length=4096),
) -> Any:
    """Versions of all models matching ``filter``."""
    page = catalog.search(registry, actor, filter, page_size, page_token)
    # Built by the service's serializer, so re-validating it through the pydantic model (the
    # OpenAPI schema) would only cost time: the drift and fuzz tests keep the two in step.
    response = JSONResponse(page)
    if actor.can(Permission.READ, None):
        # Whoever reads every model gets the same page: later identical searches by such
        # readers are answered from memory until the registry changes (model None: only
        # registry-wide readers are served it). Per-model readers always take this path.
        registry.answers.remember(
            request.scope, request.state.stamp, Answer(None, bytes(response.body))
        )
    return response


@router.get("/resolve", response_model=VersionRead, operation_id="versions-resolve")
def resolve(
    request: Request,
    registry: RegistryDep,
    actor: ActorDep,
    uri: str = Query(max_length=512),
    at: str | None = Query(
        default=None,
        max_length=64,
        description="an ISO time: the version a stage or alias reference named then",
    ),
) -> Any:
    """The version any reference points at (``models:/fraud@champion``, ``fraud/production``…).

    With ``at``, the version that held the stage or alias at that moment.
    """
    moment = parse_instant(at) if at is not None else None
    # The serving hot path: answered from memory while the registry's change stamp (read by
    # the actor dependency in this request) stands still; every worker checks it on its own.
    key = ("resolve", uri, moment)
    stamp: int = request.state.stamp
    answer = registry.answers.get(key, stamp, actor)
    if answer is None:
        with registry.read() as session:
            stamp = stamp_of(session)  # before the data, never after
            if moment is not None:
                version = lifecycle.version_at(session, uri, moment, actor=actor)
            else:
                version = versions.read_version(session, uri, actor=actor)
            body = JSONResponse(serialize.version_to_dict(version)).body
            answer = Answer(version.model_id, bytes(body))
        registry.answers.put(key, stamp, answer)
    actor.require(Permission.READ, answer.model_id)
    if moment is None:  # "at" may be relative ("1h ago"): only the parsed moment is a key
        registry.answers.remember(request.scope, stamp, answer)
    return Response(answer.body, media_type="application/json")


@router.get("/models/{name:model}/compare", operation_id="versions-compare")
def compare_versions(
    name: str,
    registry: RegistryDep,
    actor: ActorDep,
    a: int = Query(ge=1, le=2**31 - 1),
    b: int = Query(ge=1, le=2**31 - 1),
) -> dict[str, Any]:
    """Metric, param, tag and file differences between versions ``a`` and ``b``."""
    return catalog.compare(registry, actor, name, a, b)


@router.get("/lineage", operation_id="versions-lineage")
def lineage(
    registry: RegistryDep, actor: ActorDep, ref: str = Query(max_length=512)
) -> dict[str, Any]:
    """A version's lineage, ancestors and descendants."""
    return catalog.lineage(registry, actor, ref)

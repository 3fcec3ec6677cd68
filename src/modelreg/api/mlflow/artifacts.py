"""MLflow's artifact service under ``/api/2.0/mlflow-artifacts/``: list, read, write, delete.

Writes land in the content-addressed blob store like every other upload (streamed, hashed on
the way in, atomically renamed); the path the client names is only a key in
``mlflow_artifacts``. A registered version's files are served read-only under ``_registry/``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from modelreg.api.blob_send import blob_response
from modelreg.api.deps import ActorDep, Registry, RegistryDep
from modelreg.api.mlflow._common import add_route, async_route, read_params
from modelreg.api.uploads import receive_blob
from modelreg.services import tracking
from modelreg.services.actor import Actor

router = APIRouter(prefix="/api/2.0/mlflow-artifacts", tags=["mlflow"])


def list_artifacts(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``GET artifacts?path=``: one folder level."""
    with registry.read() as session:
        files = tracking.tree.list_artifacts(session, p.get("path"), actor=actor)
    return {"files": files} if files else {}


async def download_artifact(
    path: str, request: Request, registry: RegistryDep, actor: ActorDep
) -> Any:
    """``GET artifacts/PATH``: one file's bytes (a blob, served like every other download)."""

    def find() -> tuple[str, int, str]:
        with registry.read() as session:
            return tracking.tree.open_artifact(session, path, actor=actor)

    digest, size, filename = await run_in_threadpool(find)
    return blob_response(registry, digest, filename=filename, size=size)


async def upload_artifact(
    path: str, request: Request, registry: RegistryDep, actor: ActorDep
) -> Any:
    """``PUT artifacts/PATH``: store the body, then point the path at it."""

    def check() -> None:
        with registry.read() as session:
            tracking.tree.check_writable(session, path, actor=actor)

    # Refuse a bad path before a single byte is stored.
    await run_in_threadpool(check)
    info = await receive_blob(request, registry, actor)

    def record() -> None:
        with registry.write() as session:
            tracking.tree.put_artifact(session, path, info.sha256, info.size, actor=actor)

    await run_in_threadpool(record)
    return JSONResponse({})


async def delete_artifact(
    path: str, request: Request, registry: RegistryDep, actor: ActorDep
) -> Any:
    """``DELETE artifacts/PATH``: a file or a folder of the tree (the blobs stay until gc)."""
    await read_params(request)

    def remove() -> None:
        with registry.write() as session:
            tracking.tree.delete_artifacts(session, path, actor=actor)

    await run_in_threadpool(remove)
    return JSONResponse({})


add_route(router, "/artifacts", ["GET"], list_artifacts)
async_route(router, "/artifacts/{path:path}", ["GET"], download_artifact)
async_route(router, "/artifacts/{path:path}", ["PUT"], upload_artifact)
async_route(router, "/artifacts/{path:path}", ["DELETE"], delete_artifact)

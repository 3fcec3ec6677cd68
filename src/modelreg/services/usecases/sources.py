"""Allowed sources (``services.allowed_sources``), once for every door: the allowlist and copies."""

from __future__ import annotations

from typing import Any

from modelreg.services import allowed_sources, models
from modelreg.services.actor import Actor, Permission
from modelreg.services.artifacts import record_possession
from modelreg.services.audit import EventTag, record
from modelreg.services.usecases._handles import Handles


def allow_source(h: Handles, actor: Actor, uri: str) -> dict[str, Any]:
    """Allow copying from ``uri`` (admin; audited): the allowed source."""
    allowed_sources.check_apart_from_store(h.store, allowed_sources.parse_source(uri))
    with h.write() as session:
        return allowed_sources.source_to_dict(
            allowed_sources.allow_source(session, uri, actor=actor)
        )


def list_sources(h: Handles, actor: Actor) -> list[dict[str, Any]]:
    """Every allowed source (admin)."""
    with h.read() as session:
        rows = allowed_sources.list_sources(session, actor=actor)
        return [allowed_sources.source_to_dict(row) for row in rows]


def remove_source(h: Handles, actor: Actor, uri: str) -> dict[str, Any]:
    """Stop allowing ``uri`` (admin; audited): the source as it was."""
    with h.write() as session:
        return allowed_sources.source_to_dict(
            allowed_sources.remove_source(session, uri, actor=actor)
        )


def copy_source(
    h: Handles, actor: Actor, uri: str, *, max_bytes: int, model: str | None = None
) -> dict[str, Any]:
    """Copy the objects at an allowed ``uri`` into the store: ``{uri, files}`` (audited).

    The server reads them with its own credentials, so copying is guarded as tightly as what
    it grants: for ``model`` (the MLflow door registering a version of it), the right to
    register versions of that model, checked before any byte is read; without one (the
    import), the admin role. The caller then holds the copied blobs as if it had uploaded them.
    """
    with h.read() as session:
        if model is None:
            actor.require(Permission.ADMIN)
        else:
            found = models.find_model(session, model)
            if found is not None and actor.can(Permission.READ, found.id):
                actor.require(Permission.VERSION_REGISTER, found.id)
            else:
                actor.require(Permission.MODEL_CREATE)
        location = allowed_sources.check_allowed(session, uri)
    # Outside any transaction: reading a large object takes as long as it takes.
    files = allowed_sources.copy_objects(h.store, location, max_bytes=max_bytes)
    with h.write() as session:
        for digest in {f.sha256 for f in files}:
            record_possession(session, actor, digest)
        record(
            session,
            EventTag.SOURCE_COPY,
            actor=actor,
            target=f"source:{location.uri}",
            after={
                "uri": location.uri,
                "files": len(files),
                "bytes": sum(f.size for f in files),
            },
        )
    return {
        "uri": location.uri,
        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in files],
    }

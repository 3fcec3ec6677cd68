"""Allowed sources (``services.allowed_sources``), once for every door: the allowlist and copies."""

from __future__ import annotations

from typing import Any

from modelreg.services import allowed_sources
from modelreg.services.actor import Actor
from modelreg.services.artifacts import record_possession, require_upload
from modelreg.services.usecases._handles import Handles


def allow_source(h: Handles, actor: Actor, uri: str) -> dict[str, Any]:
    """Allow copying from ``uri`` (admin; audited): the allowed source."""
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


def copy_source(h: Handles, actor: Actor, uri: str, *, max_bytes: int) -> dict[str, Any]:
    """Copy the objects at an allowed ``uri`` into the store: ``{uri, files}``.

    Needs the contributor role somewhere (as an upload does); the caller then holds the
    copied blobs as if it had uploaded them, so it can name them in a manifest.
    """
    require_upload(actor)
    with h.read() as session:
        location = allowed_sources.check_allowed(session, uri)
    # Outside any transaction: reading a large object takes as long as it takes.
    files = allowed_sources.copy_objects(h.store, location, max_bytes=max_bytes)
    with h.write() as session:
        for digest in {f.sha256 for f in files}:
            record_possession(session, actor, digest)
    return {
        "uri": location.uri,
        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in files],
    }

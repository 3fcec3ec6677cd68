"""Who may touch blobs: they are shared by content across models, so access follows the versions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.tables import Role, Version, VersionFile
from modelreg.errors import BlobNotFound, PermissionDenied
from modelreg.services.actor import Actor, Permission
from modelreg.storage.base import check_digest


def require_upload(actor: Actor) -> None:
    """Uploading (or asking whether the store has) a blob needs contributor rights somewhere."""
    if actor.superuser or any(r.rank >= Role.CONTRIBUTOR.rank for r in actor.grants.values()):
        return
    raise PermissionDenied(
        f"{actor.name} may not upload artifacts: it needs the contributor role on some model",
        detail={"permission": Permission.VERSION_REGISTER.value, "role_needed": "contributor"},
    )


def require_download(session: Session, actor: Actor, digest: str) -> str:
    """A blob may be read by whoever may read a version that contains it.

    Answers ``BlobNotFound`` (not 403) for blobs the actor cannot see, so digests of other
    teams' files cannot be probed.
    """
    value = check_digest(digest)
    readable = actor.readable_models()
    if readable is None:
        return value
    found = session.scalars(
        select(Version.model_id)
        .join(VersionFile, VersionFile.version_id == Version.id)
        .where(VersionFile.sha256 == value, Version.model_id.in_(readable))
        .limit(1)
    ).first()
    if found is None:
        raise BlobNotFound(f"blob sha256:{value} is not stored", detail={"digest": value})
    return value

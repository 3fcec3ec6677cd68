"""Who may touch blobs: they are shared by content across models, so access follows the versions.

A digest is not a credential (SECURITY.md rule 13). The store keeps each blob once, whoever
sent it, but a caller counts a stored blob as *theirs* (to name it in a manifest, ask about it
or download it) only when it may read a version that holds it, or has sent the bytes itself
(a ``BlobPossession`` row). To everyone else the blob is absent: they upload the bytes, which
proves possession and stores nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, union
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from modelreg.db.tables import BlobPossession, Role, Version, VersionFile
from modelreg.errors import BlobNotFound, PermissionDenied
from modelreg.services.actor import Actor, Permission
from modelreg.storage.base import check_digest

# Digests per query: far below SQLite's bound-parameter limit; a manifest of up to this many
# distinct blobs (every benchmarked one) is answered by one statement.
_CHUNK = 5000


def require_upload(actor: Actor) -> None:
    """Uploading (or asking whether the store has) a blob needs contributor rights somewhere."""
    if actor.superuser or any(r.rank >= Role.CONTRIBUTOR.rank for r in actor.grants.values()):
        return
    raise PermissionDenied(
        f"{actor.name} may not upload artifacts: it needs the contributor role on some model",
        detail={"permission": Permission.VERSION_REGISTER.value, "role_needed": "contributor"},
    )


def owned_digests(session: Session, actor: Actor, digests: Iterable[str]) -> set[str]:
    """Those of ``digests`` the actor may treat as stored for it (whether stored or not).

    A digest qualifies when the actor may read a version whose manifest names it, or when the
    actor uploaded its bytes. One indexed statement per 5000 digests (``version_files.sha256``
    and the possession table's primary key), never one per file.
    """
    wanted = sorted(set(digests))
    if actor.superuser:
        return set(wanted)
    readable = actor.readable_models()
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        in_versions = (
            select(VersionFile.sha256)
            .join(Version, Version.id == VersionFile.version_id)
            .where(VersionFile.sha256.in_(chunk))
        )
        if readable is not None:
            in_versions = in_versions.where(Version.model_id.in_(readable))
        query = in_versions
        if actor.principal_id is not None:
            sent = select(BlobPossession.sha256).where(
                BlobPossession.principal_id == actor.principal_id,
                BlobPossession.sha256.in_(chunk),
            )
            query = union(in_versions, sent)  # type: ignore[assignment]
        found.update(session.scalars(query))
    return found


def record_possession(session: Session, actor: Actor, digest: str) -> None:
    """Remember that ``actor`` sent the bytes of ``digest`` (verified by the store on upload).

    Nothing to remember for the registry owner (no principal), who reads every blob anyway.
    """
    if actor.principal_id is None:
        return
    values = {"principal_id": actor.principal_id, "sha256": check_digest(digest)}
    # Insert-or-nothing, so two uploads of the same bytes by one principal never collide.
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(BlobPossession).values(**values).on_conflict_do_nothing())


def require_blob(session: Session, actor: Actor, digest: str) -> str:
    """``digest`` if the actor may see that blob (it still may not be stored).

    Raises ``BlobNotFound`` (not 403) for blobs the actor cannot see, so digests of other
    teams' files cannot be probed: absent and not-yours answer alike.
    """
    value = check_digest(digest)
    if value not in owned_digests(session, actor, [value]):
        raise BlobNotFound(f"blob sha256:{value} is not stored", detail={"digest": value})
    return value

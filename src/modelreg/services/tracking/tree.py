"""The MLflow artifact tree: client-chosen relative paths naming content-addressed blobs.

``EXPERIMENT/RUN_ID/artifacts/…`` holds a run's files and ``EXPERIMENT/models/MODEL_ID/
artifacts/…`` a logged model's; ``_registry/NAME/VERSION/…`` serves registered versions'
files, read-only, from their manifests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from modelreg.db.tables.tracking import MlflowArtifact, MlflowLoggedModel, MlflowRun
from modelreg.errors import InvalidPath, NotFound, PermissionDenied
from modelreg.names import parse_ref, validate_model_name
from modelreg.paths import validate_manifest_path
from modelreg.services import artifacts
from modelreg.services.actor import Actor, Permission
from modelreg.services.models import get_model
from modelreg.services.tracking._access import require_writer
from modelreg.services.tracking.logged_models import get_logged_model
from modelreg.services.tracking.runs import get_run
from modelreg.services.versions import resolve

# The registry's own versions, read-only, under this first path segment of the artifact tree.
VERSION_VIEW = "_registry"


@dataclass(frozen=True, slots=True)
class VersionView:
    """A path inside a registered version's files, served read-only from its manifest."""

    name: str
    number: int
    rest: str


def version_view_path(name: str, number: int) -> str:
    """The tree path under which version ``number`` of ``name`` is served (read-only).

    A namespaced name's ``/`` becomes ``:``, which names never contain, so the path splits
    back unambiguously.
    """
    return f"{VERSION_VIEW}/{name.replace('/', ':')}/{number}"


def clean_tree_path(path: Any, *, allow_empty: bool = True, new: bool = False) -> str:
    """``path`` stripped of outer ``/`` and checked as a manifest path (``""`` is the root)."""
    if path is None:
        path = ""
    if not isinstance(path, str) or len(path) > 1024:
        raise InvalidPath("an artifact path is text of at most 1024 characters", detail={})
    text = path.strip("/")
    if not text:
        if allow_empty:
            return ""
        raise InvalidPath("an artifact path must not be empty", detail={})
    # The same allowlist as a version's manifest: relative, normalised, no `..`, no `\`,
    # no control characters (SECURITY.md rule 2). A path written anew also gets the
    # portability rules (no device names, look-alikes, trailing dots); one that names what
    # may already be stored only the safety rules.
    return validate_manifest_path(text, existing=not new)


def parse_view(path: str) -> VersionView | None:
    """The version a ``_registry/…`` path names, or ``None`` for other paths."""
    parts = path.split("/")
    if parts[0] != VERSION_VIEW:
        return None
    if len(parts) < 3 or not re.fullmatch(r"[0-9]{1,9}", parts[2]):
        raise InvalidPath(
            f"{path!r}: registry paths are {VERSION_VIEW}/NAME/VERSION/…", detail={"path": path}
        )
    name = validate_model_name(parts[1].replace(":", "/"))
    return VersionView(name, int(parts[2]), "/".join(parts[3:]))


def owner_of(
    session: Session, path: str, *, actor: Actor, write: bool
) -> MlflowRun | MlflowLoggedModel | None:
    """The run or logged model whose folder holds ``path`` (``None`` above them), access checked.

    ``EXPERIMENT/RUN_ID/…`` is a run's, ``EXPERIMENT/models/MODEL_ID/…`` a logged model's; the
    experiment in the path must be the owner's.
    """
    parts = path.split("/")
    owner: MlflowRun | MlflowLoggedModel
    if len(parts) >= 3 and parts[1] == "models":
        owner = get_logged_model(session, parts[2], actor=actor, write=write, lock=write)
    elif len(parts) >= 2 and parts[1] != "models":
        owner = get_run(session, parts[1], actor=actor, write=write, lock=write)
    else:
        return None
    if str(owner.experiment_id) != parts[0]:
        raise NotFound(f"no artifact folder {path!r}", detail={"path": path})
    return owner


def _checkowner_of(session: Session, path: str, actor: Actor) -> None:
    """Writes go only into an existing run's or logged model's ``artifacts/`` folder.

    The owner's row stays locked until the write commits, so two writers of one folder take
    turns (the file-versus-folder check below is then never raced).
    """
    parts = path.split("/")
    owner = owner_of(session, path, actor=actor, write=True)
    depth = 4 if isinstance(owner, MlflowLoggedModel) else 3
    if owner is None or len(parts) <= depth or parts[depth - 1] != "artifacts":
        raise InvalidPath(
            f"{path!r} is not inside a run's or logged model's artifacts folder "
            "(EXPERIMENT/RUN_ID/artifacts/… or EXPERIMENT/models/MODEL_ID/artifacts/…)",
            detail={"path": path},
        )


def _check_tree_read(session: Session, path: str, actor: Actor) -> None:
    # A registry-wide reader reads everything; anyone else only inside what it owns.
    if actor.can(Permission.READ):
        return
    if owner_of(session, path, actor=actor, write=False) is None:
        # Above the runs: every team's folders at once, which is registry-wide reading.
        actor.require(Permission.READ)


def check_writable(session: Session, path: Any, *, actor: Actor, new: bool = True) -> str:
    """The clean path a PUT may write (``new``) or a DELETE remove, or an error.

    Checked before any byte is stored.
    """
    require_writer(actor)
    clean = clean_tree_path(path, allow_empty=False, new=new)
    if clean.split("/")[0] == VERSION_VIEW:
        raise PermissionDenied(
            "registered versions are immutable; their files cannot be written",
            detail={"path": clean},
        )
    _checkowner_of(session, clean, actor)
    return clean


def put_artifact(
    session: Session, path: str, digest: str, size: int, *, actor: Actor
) -> MlflowArtifact:
    """Point ``path`` at a stored blob (replacing what it named before, as MLflow allows)."""
    clean = check_writable(session, path, actor=actor)
    row = session.get(MlflowArtifact, clean)
    if row is None:
        # A path that is already a folder (or under a file) would make the tree ambiguous.
        clash = session.scalar(
            select(MlflowArtifact.path)
            .where(func.substr(MlflowArtifact.path, 1, len(clean) + 1) == clean + "/")
            .limit(1)
        )
        parents = ["/".join(clean.split("/")[:i]) for i in range(1, clean.count("/") + 1)]
        clash = clash or session.scalar(
            select(MlflowArtifact.path).where(MlflowArtifact.path.in_(parents)).limit(1)
        )
        if clash is not None:
            raise InvalidPath(
                f"{clean!r} clashes with the file or folder {clash!r}", detail={"path": clean}
            )
        row = MlflowArtifact(path=clean, sha256=digest, size=size, created_by=actor.name)
        session.add(row)
    else:
        row.sha256, row.size, row.created_by = digest, size, actor.name
    # The caller sent these bytes: it may name them in a manifest on /api/v1 too.
    artifacts.record_possession(session, actor, digest)
    session.flush()
    return row


def tree_files(session: Session, prefix: str) -> list[tuple[str, int, str]]:
    """``(path relative to prefix, size, sha256)`` of every tree file under ``prefix``."""
    query = select(MlflowArtifact.path, MlflowArtifact.size, MlflowArtifact.sha256)
    if prefix:
        # substr, not LIKE or a range: exact under any collation, and `%`/`_` are literal.
        query = query.where(func.substr(MlflowArtifact.path, 1, len(prefix) + 1) == prefix + "/")
    cut = len(prefix) + 1 if prefix else 0
    return [(p[cut:], s, d) for p, s, d in session.execute(query.order_by(MlflowArtifact.path))]


def _version_files(session: Session, view: VersionView, actor: Actor) -> list[tuple[str, int, str]]:
    get_model(session, view.name, actor=actor)  # raises unless actor may read it
    version = resolve(session, parse_ref(f"{view.name}:{view.number}", allow_model=False))
    return [(f.path, f.size, f.sha256) for f in version.files]


def files_under(session: Session, path: str, actor: Actor) -> list[tuple[str, int, str]]:
    """``(path relative to path, size, sha256)`` of the files under ``path``, read checked."""
    view = parse_view(path) if path else None
    if view is None:
        _check_tree_read(session, path, actor)
        return tree_files(session, path)
    files = _version_files(session, view, actor)
    if not view.rest:
        return files
    cut = len(view.rest) + 1
    return [(p[cut:], s, d) for p, s, d in files if p.startswith(view.rest + "/")]


def list_artifacts(session: Session, path: Any, *, actor: Actor) -> list[dict[str, Any]]:
    """One folder level, as MLflow lists it: ``[{path (base name), is_dir, file_size}]``."""
    clean = clean_tree_path(path)
    if not clean:
        # The root lists every experiment: that is registry-wide reading.
        actor.require(Permission.READ)
    entries: dict[str, dict[str, Any]] = {}
    for rel, size, _digest in files_under(session, clean, actor):
        head, sep, _tail = rel.partition("/")
        if sep:
            entries.setdefault(head, {"path": head, "is_dir": True})
        else:
            entries[head] = {"path": head, "is_dir": False, "file_size": size}
    return [entries[k] for k in sorted(entries)]


def open_artifact(session: Session, path: Any, *, actor: Actor) -> tuple[str, int, str]:
    """``(digest, size, file name)`` of one file of the tree or of a registered version."""
    clean = clean_tree_path(path, allow_empty=False)
    view = parse_view(clean)
    if view is not None:
        for rel, size, digest in _version_files(session, view, actor):
            if rel == view.rest:
                return digest, size, rel.rsplit("/", 1)[-1]
    else:
        _check_tree_read(session, clean, actor)
        row = session.get(MlflowArtifact, clean)
        if row is not None:
            return row.sha256, row.size, clean.rsplit("/", 1)[-1]
    raise NotFound(f"no artifact at {clean!r}", detail={"path": clean})


def delete_artifacts(session: Session, path: Any, *, actor: Actor) -> int:
    """Remove a file, or a folder's files, from the tree (never a registered version's)."""
    clean = check_writable(session, path, actor=actor, new=False)
    result = session.execute(
        delete(MlflowArtifact).where(
            (MlflowArtifact.path == clean)
            | (func.substr(MlflowArtifact.path, 1, len(clean) + 1) == clean + "/")
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def referenced_digests(session: Session) -> set[str]:
    """Every blob the tree names: garbage collection must keep them."""
    return set(session.scalars(select(MlflowArtifact.sha256).distinct()))

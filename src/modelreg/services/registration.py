"""Registering a version: what a registration asks for (``RegistrationSpec``), and its steps.

``RegistrationSpec`` checks every field of the input once, when it is made, before the database is
asked anything; ``register_version`` then runs the steps that need the database (the model and
the actor's rights, the blobs, a replay, parents, the number and semver) and writes the rows.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from modelreg.db.base import utcnow
from modelreg.db.tables import (
    Model,
    Version,
    VersionDataset,
    VersionFile,
    VersionMetric,
    VersionParam,
    VersionParent,
    VersionStatus,
    VersionTag,
)
from modelreg.errors import AlreadyExists, BlobNotFound, Conflict, InvalidInput, InvalidPath
from modelreg.names import (
    MAX_DESCRIPTION,
    Ref,
    Semver,
    Stage,
    parse_dataset,
    parse_parent,
    validate_key,
    validate_metric,
    validate_text,
)
from modelreg.paths import validate_manifest_path
from modelreg.services import artifacts, imports
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, record
from modelreg.services.flavor_meta import check_flavor, check_signature
from modelreg.services.models import check_tags, ensure_model, get_model
from modelreg.services.versions import FileSpec, Lineage, resolve
from modelreg.storage.base import BlobStore, check_digest, verify_blob

__all__ = ["MAX_FILES", "RegistrationSpec", "register_version"]

MAX_FILES = 100_000


@dataclass(frozen=True, slots=True)
class RegistrationSpec:
    """A registration's input, checked once when it is made (``InvalidInput`` and its kin).

    The doors build it from what they were sent; afterwards every field holds its checked
    value: ``files`` sorted by path, ``metrics``/``params``/``tags``/``environment`` as plain
    dicts (``None`` reads as empty), ``semver`` in canonical form, ``stage`` a ``Stage``.
    ``number`` and ``stage`` are for imports from another registry (admin only). The model's
    name is checked where the model is looked up, as everywhere else.
    """

    name: str
    files: Sequence[FileSpec]
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    semver: str | None = None
    bump: str | None = None
    lineage: Lineage = field(default_factory=Lineage)
    environment: Mapping[str, Any] = field(default_factory=dict)
    framework: str | None = None
    idempotency_key: str | None = None
    number: int | None = None
    stage: Stage | str | None = None
    # How ``load`` reads the files back, and the input/output schema (register(model=…)).
    flavor: Mapping[str, Any] | None = None
    signature: Mapping[str, Any] | None = None
    # Read from ``lineage``: (dataset name, ref) and (model name, version number) pairs.
    dataset_refs: tuple[tuple[str, str], ...] = field(init=False)
    parent_refs: tuple[tuple[str, int], ...] = field(init=False)

    def __post_init__(self) -> None:
        # The order of the checks is the order a caller sees errors in: keep it.
        checked: dict[str, Any] = {"files": tuple(_check_files(self.files))}
        checked["metrics"] = {k: validate_metric(k, v) for k, v in (self.metrics or {}).items()}
        checked["params"] = _check_params(self.params)
        checked["tags"] = check_tags(dict(self.tags or {}))
        checked["description"] = validate_text(
            self.description or "", kind="description", limit=MAX_DESCRIPTION
        )
        lineage = self.lineage or Lineage()
        checked["lineage"] = lineage
        checked["dataset_refs"] = tuple(parse_dataset(d) for d in lineage.datasets)
        checked["parent_refs"] = tuple(parse_parent(p) for p in lineage.parents)
        checked["environment"] = _check_environment(self.environment)
        if self.semver is not None and self.bump is not None:
            raise InvalidInput("give --semver or --bump, not both", detail={})
        imports.check_number(self.number)
        if isinstance(self.stage, str):
            checked["stage"] = Stage.parse(self.stage)
        if self.semver is not None:
            checked["semver"] = str(Semver.parse(self.semver))
        if self.bump is not None:
            Semver(0, 0, 0).bump(self.bump)  # refuses anything but major, minor or patch
        _check_idempotency_key(self.idempotency_key)
        _check_lineage(lineage, self.framework)
        checked["flavor"] = check_flavor(self.flavor, [f.path for f in checked["files"]])
        checked["signature"] = check_signature(self.signature)
        for key, value in checked.items():
            object.__setattr__(self, key, value)

    @property
    def first_stage(self) -> Stage | None:
        """The stage the version starts in, for an import (``None``: the usual ``none``)."""
        return Stage(self.stage) if self.stage is not None else None


def _check_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    clean: dict[str, str] = {}
    for key, value in (params or {}).items():
        clean[validate_key(key, kind="param")] = validate_text(
            str(value), kind=f"param {key!r}", limit=6000
        )
    return clean


def _check_idempotency_key(key: str | None) -> None:
    if key is not None and (
        not isinstance(key, str) or not 1 <= len(key) <= 256 or not key.isprintable()
    ):
        raise InvalidInput("an idempotency key has 1 to 256 printable characters", detail={})


def register_version(
    session: Session,
    store: BlobStore,
    spec: RegistrationSpec,
    *,
    actor: Actor,
    files_readable: bool = False,
) -> Version:
    """Create the next version of ``spec.name`` (creating the model if needed), atomically.

    Every blob in ``spec.files`` must already be in ``store`` and be the actor's: it may read
    a version that holds it, or uploaded the bytes (``files_readable``: the calling door
    already checked that the actor may read every file, e.g. an MLflow source it resolved).
    The number comes from the model's counter, bumped by one atomic statement under the
    model's row lock, so concurrent registrations get contiguous numbers. The same
    ``idempotency_key`` returns the version it created the first time.

    An explicit ``spec.number`` (imports, admin only) must be above every number the model
    ever used (``Conflict`` otherwise) and becomes the counter, so the numbers it skips are
    never handed out. ``spec.stage`` is the version's first stage, recorded in its history; a
    second production version is a ``Conflict``.
    """
    model = ensure_model(session, spec.name, actor=actor, lock=True)
    actor.require(Permission.VERSION_REGISTER, model.id)
    imports.check_rights(
        session,
        model,
        actor=actor,
        number=spec.number,
        stage=spec.first_stage,
        imported_from=spec.lineage.imported_from,
    )
    _require_blobs(session, spec.files, store, actor=actor, readable=files_readable)
    if spec.idempotency_key is not None:
        existing = _replayed(session, model, spec)
        if existing is not None:
            return existing
    parents = [_readable_parent(session, name, number, actor) for name, number in spec.parent_refs]
    semver = _semver(session, model, spec)
    now = utcnow()
    number = _allocate_number(session, model, spec.number, now)
    version = _new_version_row(model, spec, number, semver, parents, actor=actor)
    session.add(version)
    version.created_at = version.updated_at = now
    session.flush()
    _record_register(session, version, spec, actor=actor)
    return version


def _semver(session: Session, model: Model, spec: RegistrationSpec) -> str | None:
    """The version's semver: the one given, the next ``bump`` of the latest, or none."""
    semver = _next_semver(session, model, spec.bump) if spec.bump is not None else spec.semver
    if semver is not None:
        _check_semver_free(session, model, semver)
    return semver


def _new_version_row(
    model: Model,
    spec: RegistrationSpec,
    number: int,
    semver: str | None,
    parents: list[Version],
    *,
    actor: Actor,
) -> Version:
    """The version row and its child rows, not yet added to the session."""
    lineage = spec.lineage
    version = Version(
        model_id=model.id,
        number=number,
        semver=semver,
        semver_key=Semver.parse(semver).sort_key() if semver else None,
        status=VersionStatus.READY,
        description=spec.description,
        framework=spec.framework,
        run_id=lineage.run_id,
        git_repo=lineage.git_repo,
        git_commit=lineage.git_commit,
        git_dirty=lineage.git_dirty,
        source_uri=lineage.source,
        imported_from=lineage.imported_from,
        environment=spec.environment,
        flavor=spec.flavor,
        signature=spec.signature,
        idempotency_key=spec.idempotency_key,
        total_size=sum(f.size for f in spec.files),
        created_by=actor.name,
        stage=spec.first_stage or Stage.NONE,
    )
    version.files = [VersionFile(path=f.path, sha256=f.sha256, size=f.size) for f in spec.files]
    version.metrics = [VersionMetric(key=k, value=v) for k, v in spec.metrics.items()]
    version.params = [VersionParam(key=k, value=v) for k, v in spec.params.items()]
    version.tags = [VersionTag(key=k, value=v) for k, v in spec.tags.items()]
    version.datasets = [
        VersionDataset(position=i, name=n, ref=r) for i, (n, r) in enumerate(spec.dataset_refs)
    ]
    version.parents = [
        VersionParent(position=i, parent_id=p.id, parent_name=p.model.name, parent_number=p.number)
        for i, p in enumerate(parents)
    ]
    # A new version has no aliases yet: known, so serializing it does not query for them.
    set_committed_value(version, "aliases", [])
    return version


def _check_files(files: Sequence[FileSpec]) -> list[FileSpec]:
    """The manifest with paths and digests validated, sorted by path (the store is not asked)."""
    if not files:
        raise InvalidInput("a version needs at least one file", detail={})
    if len(files) > MAX_FILES:
        raise InvalidInput(f"a version has at most {MAX_FILES} files", detail={"files": len(files)})
    seen: set[str] = set()
    clean: list[FileSpec] = []
    folded: set[str] = set()
    for spec in files:
        path = validate_manifest_path(spec.path)
        if path in seen:
            raise InvalidPath(f"file path {path!r} appears twice", detail={"path": path})
        # Two paths that differ only by case would collide on macOS and Windows downloads.
        key = unicodedata.normalize("NFC", path).casefold()
        if key in folded:
            raise InvalidPath(
                f"file path {path!r} differs from another only by letter case or Unicode form",
                detail={"path": path},
            )
        seen.add(path)
        folded.add(key)
        digest = check_digest(spec.sha256)
        if isinstance(spec.size, bool) or not isinstance(spec.size, int) or spec.size < 0:
            raise InvalidInput(f"invalid size for {path!r}", detail={"path": path})
        clean.append(FileSpec(path, digest, spec.size))
    return sorted(clean, key=lambda f: f.path)


def _require_blobs(
    session: Session,
    files: Sequence[FileSpec],
    store: BlobStore,
    *,
    actor: Actor,
    readable: bool,
) -> None:
    """Every file's blob is stored, the actor's, complete and of the declared size.

    Blob first, metadata second (SECURITY.md rule 10): a row may only name bytes that are
    stored. A digest is not a credential (rule 13): a blob counts as stored only if the actor
    may read a version that holds it or sent its bytes (one query for the whole manifest),
    unless ``readable`` says the caller already checked that the actor may read every file.
    Any other blob is reported missing, stored or not, so its size is never compared either:
    the answer tells no one which digests (or sizes) the store holds.
    """
    owned = (
        None
        if readable
        else artifacts.owned_digests(session, actor, (spec.sha256 for spec in files))
    )
    missing: list[dict[str, str]] = []
    for spec in files:
        if (owned is not None and spec.sha256 not in owned) or not store.exists(spec.sha256):
            missing.append({"path": spec.path, "sha256": spec.sha256})
        elif store.size(spec.sha256) != spec.size and not verify_blob(store, spec.sha256):
            # The stored copy is damaged (truncated, say), not the manifest wrong: set it
            # aside and ask for the bytes, whose upload stores the blob again.
            store.quarantine(spec.sha256)
            missing.append({"path": spec.path, "sha256": spec.sha256})
        elif store.size(spec.sha256) != spec.size:
            raise InvalidInput(
                f"{spec.path}: declared size {spec.size} does not match the stored blob",
                detail={"path": spec.path},
            )
    if missing:
        # Every missing blob is named, so a client can send its manifest first and upload
        # only what this lists (one round trip when the server already has every blob).
        first = missing[0]["path"]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise BlobNotFound(
            f"{first}: blob sha256:{missing[0]['sha256']} has not been uploaded{more}",
            detail={"path": first, "missing": missing},
        )


def _check_environment(environment: Mapping[str, Any] | None) -> dict[str, Any]:
    env = dict(environment or {})
    python = env.get("python")
    packages = env.get("packages") or []
    if python is not None and not isinstance(python, str):
        raise InvalidInput("environment.python must be a string", detail={})
    if not isinstance(packages, list) or not all(isinstance(p, str) for p in packages):
        raise InvalidInput("environment.packages must be a list of strings", detail={})
    if len(packages) > 5000 or any(len(p) > 300 for p in packages):
        raise InvalidInput("environment.packages is too large", detail={})
    source = env.get("source")
    if source is not None and (not isinstance(source, str) or len(source) > 1024):
        raise InvalidInput(
            "environment.source must be a string of at most 1024 characters", detail={}
        )
    checked: dict[str, Any] = {"python": python, "packages": packages}
    if source is not None:
        # Where the packages were read: a process, a requirements file, a venv's python.
        checked["source"] = source
    return checked


def _next_semver(session: Session, model: Model, bump: str) -> str:
    latest = session.scalar(
        select(Version.semver)
        .where(Version.model_id == model.id, Version.semver.is_not(None))
        .order_by(Version.semver_key.desc())
        .limit(1)
    )
    base = Semver.parse(latest) if latest else Semver(0, 0, 0)
    return str(base.bump(bump))


def _replayed(session: Session, model: Model, spec: RegistrationSpec) -> Version | None:
    """The version an earlier registration with the same idempotency key made, if the same."""
    key = spec.idempotency_key
    existing = session.scalars(
        select(Version).where(Version.model_id == model.id, Version.idempotency_key == key)
    ).one_or_none()
    if existing is None:
        return None
    same = (
        {(f.path, f.sha256) for f in existing.files} == {(f.path, f.sha256) for f in spec.files}
        and {m.key: m.value for m in existing.metrics} == spec.metrics
        and {p.key: p.value for p in existing.params} == spec.params
    )
    if not same:
        raise Conflict(
            f"idempotency key {key!r} was used for version "
            f"{existing.number} with different files, metrics or params",
            detail={"version": existing.number},
        )
    return existing


def _record_register(
    session: Session, version: Version, spec: RegistrationSpec, *, actor: Actor
) -> None:
    """Audit the registration, then (for an import) the first stage as a move of its own."""
    after: dict[str, Any] = {
        "version": version.number,
        "semver": version.semver,
        "files": {f.path: f.sha256 for f in spec.files},
        "metrics": spec.metrics,
        "params": spec.params,
        "tags": spec.tags,
    }
    if spec.number is not None:
        after["number_given"] = True
    if version.stage is not Stage.NONE:
        after["stage"] = version.stage.value
    record(
        session,
        EventTag.VERSION_REGISTER,
        actor=actor,
        target=f"{version.model.name}:{version.number}",
        model=version.model,
        after=after,
    )
    if version.stage is not Stage.NONE:
        # After the registration's event: the stage move is a second, separately audited act.
        imports.record_first_stage(
            session, version, actor=actor, imported_from=spec.lineage.imported_from
        )


def _readable_parent(session: Session, name: str, number: int, actor: Actor) -> Version:
    """Parent ``name:number`` if the actor may read its model.

    A model the actor may not read is refused exactly as one that does not exist (the same
    ``ModelNotFound``), so parents cannot probe which models or versions exist (issue 18,
    finding 8; SECURITY.md rule 14).
    """
    get_model(session, name, actor=actor)  # ModelNotFound alike for absent and unreadable
    return resolve(session, Ref(name, version=number))


def _check_lineage(lineage: Lineage, framework: str | None) -> None:
    for label, text, limit in (
        ("run_id", lineage.run_id, 256),
        ("git_repo", lineage.git_repo, 1024),
        ("git_commit", lineage.git_commit, 64),
        ("source", lineage.source, 2048),
        ("imported_from", lineage.imported_from, 2048),
        ("framework", framework, 64),
    ):
        if text is not None and (not isinstance(text, str) or len(text) > limit or "\x00" in text):
            raise InvalidInput(f"{label} must be text of at most {limit} characters", detail={})


def _check_semver_free(session: Session, model: Model, semver: str) -> None:
    taken = session.scalar(
        select(Version.number).where(Version.model_id == model.id, Version.semver == semver)
    )
    if taken is not None:
        raise AlreadyExists(
            f"{model.name} already has semver {semver} (version {taken})",
            detail={"semver": semver, "version": taken},
        )


def _allocate_number(session: Session, model: Model, number: int | None, now: datetime) -> int:
    """The new version's number: the counter plus one, or an explicit one above the counter.

    Either way the model's ``updated_at`` becomes ``now``.
    """
    if number is None:
        # SECURITY.md rule 8: one atomic increment; the UNIQUE(model_id, number) constraint is
        # the backstop. A rollback of this transaction undoes the increment, so no gaps either.
        # The same statement stamps the model, so the ORM needs no second UPDATE for it.
        allocated: int = session.execute(
            update(Model)
            .where(Model.id == model.id)
            .values(last_version=Model.last_version + 1, updated_at=now)
            .returning(Model.last_version)
        ).scalar_one()
        set_committed_value(model, "updated_at", now)
        return allocated
    taken = imports.take_number(session, model, number)
    model.updated_at = now
    return taken

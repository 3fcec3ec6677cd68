"""Versions: register (number allocation + manifest, atomically), resolve, list, tag, delete."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from modelreg.db.base import utcnow
from modelreg.db.tables import (
    Alias,
    HistoryEntry,
    HistoryKind,
    Model,
    Tombstone,
    Version,
    VersionDataset,
    VersionFile,
    VersionMetric,
    VersionParam,
    VersionParent,
    VersionStatus,
    VersionTag,
)
from modelreg.errors import (
    AliasNotFound,
    AlreadyExists,
    BlobNotFound,
    Conflict,
    InvalidInput,
    InvalidPath,
    PermissionDenied,
    VersionNotFound,
)
from modelreg.names import (
    MAX_DESCRIPTION,
    Ref,
    Semver,
    Stage,
    parse_dataset,
    parse_parent,
    parse_ref,
    validate_key,
    validate_manifest_path,
    validate_metric,
    validate_text,
)
from modelreg.services import artifacts, imports, policies, search
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, record
from modelreg.services.models import check_tags, ensure_model, get_model
from modelreg.services.pages import Page, paginate
from modelreg.storage.base import BlobStore, check_digest

MAX_FILES = 100_000


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One manifest entry a registration names: the blob must be stored already."""

    path: str
    sha256: str
    size: int


@dataclass(slots=True)
class Lineage:
    """Where a version came from: run, code, data and parent versions."""

    run_id: str | None = None
    git_repo: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    # Where the files came from as the client named it (e.g. an MLflow ``runs:/…`` URI).
    source: str | None = None
    # For ``modelreg import``: the version this one copies, in the registry it came from.
    imported_from: str | None = None
    datasets: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Lineage:
        """Build from the JSON shape (datasets as ``NAME@REF`` strings or ``{name, ref}``)."""
        data = dict(data or {})
        datasets = []
        for item in data.get("datasets") or []:
            if isinstance(item, dict):
                datasets.append(
                    f"{item.get('name', '')}@{item.get('ref', item.get('version', ''))}"
                )
            else:
                datasets.append(str(item))
        return cls(
            run_id=data.get("run_id"),
            git_repo=data.get("git_repo"),
            git_commit=data.get("git_commit"),
            git_dirty=data.get("git_dirty"),
            source=data.get("source"),
            imported_from=data.get("imported_from"),
            datasets=datasets,
            parents=[str(p) for p in data.get("parents") or []],
        )


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


def _check_environment(environment: dict[str, Any] | None) -> dict[str, Any]:
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


def register_version(
    session: Session,
    store: BlobStore,
    *,
    name: str,
    files: Sequence[FileSpec],
    actor: Actor,
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    description: str = "",
    semver: str | None = None,
    bump: str | None = None,
    lineage: Lineage | None = None,
    environment: dict[str, Any] | None = None,
    framework: str | None = None,
    idempotency_key: str | None = None,
    number: int | None = None,
    stage: Stage | str | None = None,
    files_readable: bool = False,
) -> Version:
    """Create the next version of ``name`` (creating the model if needed) in one transaction.

    Every blob in ``files`` must already be in ``store`` and be the actor's: it may read a
    version that holds it, or uploaded the bytes (``files_readable``: the calling door already
    checked that the actor may read every file, e.g. an MLflow source it resolved). The number
    comes from the model's counter, bumped by one atomic statement under the model's row lock,
    so concurrent registrations get contiguous numbers. The same ``idempotency_key`` returns
    the version it created the first time.

    ``number`` and ``stage`` exist for imports from another registry, which keep the numbers
    (gaps included) and stages the versions had there; both need the admin role. An explicit
    ``number`` must be above every number the model ever used (``Conflict`` otherwise) and
    becomes the counter, so the numbers it skips are never handed out. ``stage`` is the
    version's first stage, recorded in its history; a second production version is a
    ``Conflict``.
    """
    clean_files = _check_files(files)
    clean_metrics = {k: validate_metric(k, v) for k, v in (metrics or {}).items()}
    clean_params: dict[str, str] = {}
    for key, value in (params or {}).items():
        clean_params[validate_key(key, kind="param")] = validate_text(
            str(value), kind=f"param {key!r}", limit=6000
        )
    clean_tags = check_tags(tags)
    description = validate_text(description or "", kind="description", limit=MAX_DESCRIPTION)
    lineage = lineage or Lineage()
    datasets = [parse_dataset(d) for d in lineage.datasets]
    parent_refs = [parse_parent(p) for p in lineage.parents]
    env = _check_environment(environment)
    if semver is not None and bump is not None:
        raise InvalidInput("give --semver or --bump, not both", detail={})
    imports.check_number(number)
    initial = Stage.parse(stage) if isinstance(stage, str) else stage
    if semver is not None:
        semver = str(Semver.parse(semver))
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str)
        or not 1 <= len(idempotency_key) <= 256
        or not idempotency_key.isprintable()
    ):
        raise InvalidInput("an idempotency key has 1 to 256 printable characters", detail={})
    _check_lineage(lineage, framework)

    model = ensure_model(session, name, actor=actor, lock=True)
    actor.require(Permission.VERSION_REGISTER, model.id)
    imports.check_rights(
        session,
        model,
        actor=actor,
        number=number,
        stage=initial,
        imported_from=lineage.imported_from,
    )
    _require_blobs(session, clean_files, store, actor=actor, readable=files_readable)
    if idempotency_key is not None:
        existing = _replayed(
            session, model, idempotency_key, clean_files, clean_metrics, clean_params
        )
        if existing is not None:
            return existing

    parents = [
        (_readable_parent(session, name, number, actor), name, number)
        for name, number in parent_refs
    ]
    if bump is not None:
        semver = _next_semver(session, model, bump)
    if semver is not None:
        _check_semver_free(session, model, semver)

    explicit = number is not None
    now = utcnow()
    number = _allocate_number(session, model, number, now)
    version = Version(
        model_id=model.id,
        number=number,
        semver=semver,
        semver_key=Semver.parse(semver).sort_key() if semver else None,
        status=VersionStatus.READY,
        description=description,
        framework=framework,
        run_id=lineage.run_id,
        git_repo=lineage.git_repo,
        git_commit=lineage.git_commit,
        git_dirty=lineage.git_dirty,
        source_uri=lineage.source,
        imported_from=lineage.imported_from,
        environment=env,
        idempotency_key=idempotency_key,
        total_size=sum(f.size for f in clean_files),
        created_by=actor.name,
        stage=initial or Stage.NONE,
    )
    version.files = [VersionFile(path=f.path, sha256=f.sha256, size=f.size) for f in clean_files]
    version.metrics = [VersionMetric(key=k, value=v) for k, v in clean_metrics.items()]
    version.params = [VersionParam(key=k, value=v) for k, v in clean_params.items()]
    version.tags = [VersionTag(key=k, value=v) for k, v in clean_tags.items()]
    version.datasets = [
        VersionDataset(position=i, name=n, ref=r) for i, (n, r) in enumerate(datasets)
    ]
    version.parents = [
        VersionParent(position=i, parent_id=p.id, parent_name=p.model.name, parent_number=num)
        for i, (p, _, num) in enumerate(parents)
    ]
    # A new version has no aliases yet: known, so serializing it does not query for them.
    set_committed_value(version, "aliases", [])
    session.add(version)
    version.created_at = version.updated_at = now
    session.flush()
    after: dict[str, Any] = {
        "version": number,
        "semver": semver,
        "files": {f.path: f.sha256 for f in clean_files},
        "metrics": clean_metrics,
        "params": clean_params,
        "tags": clean_tags,
    }
    _record_register(session, version, actor=actor, after=after, explicit=explicit, lineage=lineage)
    return version


def _replayed(
    session: Session,
    model: Model,
    key: str,
    files: list[FileSpec],
    metrics: dict[str, float],
    params: dict[str, str],
) -> Version | None:
    """The version an earlier registration with idempotency ``key`` made, if the same."""
    existing = session.scalars(
        select(Version).where(Version.model_id == model.id, Version.idempotency_key == key)
    ).one_or_none()
    if existing is None:
        return None
    same = (
        {(f.path, f.sha256) for f in existing.files} == {(f.path, f.sha256) for f in files}
        and {m.key: m.value for m in existing.metrics} == metrics
        and {p.key: p.value for p in existing.params} == params
    )
    if not same:
        raise Conflict(
            f"idempotency key {key!r} was used for version "
            f"{existing.number} with different files, metrics or params",
            detail={"version": existing.number},
        )
    return existing


def _record_register(
    session: Session,
    version: Version,
    *,
    actor: Actor,
    after: dict[str, Any],
    explicit: bool,
    lineage: Lineage,
) -> None:
    if explicit:
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
            session, version, actor=actor, imported_from=lineage.imported_from
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


def _version_query(model: Model) -> Any:
    return select(Version).where(
        Version.model_id == model.id, Version.status == VersionStatus.READY
    )


def find_version(session: Session, ref: Ref | str) -> Version | None:
    """The version ``ref`` points at, or ``None`` (the model must exist: else ``ModelNotFound``)."""
    parsed = parse_ref(ref, allow_model=False) if isinstance(ref, str) else ref
    model = get_model(session, parsed.name, actor=None)
    if parsed.version is not None:
        return session.scalars(
            select(Version).where(Version.model_id == model.id, Version.number == parsed.version)
        ).one_or_none()
    if parsed.alias is not None:
        alias = session.get(Alias, (model.id, parsed.alias))
        return alias.version if alias is not None else None
    if parsed.stage is not None:
        return session.scalars(
            _version_query(model)
            .where(Version.stage == parsed.stage)
            .order_by(Version.number.desc())
            .limit(1)
        ).one_or_none()
    if parsed.latest:
        return session.scalars(
            _version_query(model).order_by(Version.number.desc()).limit(1)
        ).one_or_none()
    raise InvalidInput(f"{parsed} names a model, not a version", detail={"ref": str(parsed)})


def resolve(session: Session, ref: Ref | str) -> Version:
    """The version ``ref`` points at.

    Raises:
        ModelNotFound, VersionNotFound, AliasNotFound: nothing matches.
    """
    parsed = parse_ref(ref, allow_model=False) if isinstance(ref, str) else ref
    version = find_version(session, parsed)
    if version is None:
        if parsed.alias is not None:
            raise AliasNotFound(
                f"model {parsed.name!r} has no alias {parsed.alias!r}",
                detail={"name": parsed.name, "alias": parsed.alias},
            )
        tomb = None
        if parsed.version is not None:
            model = get_model(session, parsed.name, actor=None)
            tomb = session.scalars(
                select(Tombstone).where(
                    Tombstone.normalized_name == model.normalized_name,
                    Tombstone.number == parsed.version,
                )
            ).first()
        what = f"version {parsed.version} was deleted" if tomb else "no such version"
        raise VersionNotFound(f"{parsed}: {what}", detail={"ref": str(parsed)})
    return version


def read_version(session: Session, ref: Ref | str, *, actor: Actor) -> Version:
    """The version ``ref`` points at, if ``actor`` may read its model."""
    parsed = parse_ref(ref, allow_model=False) if isinstance(ref, str) else ref
    get_model(session, parsed.name, actor=actor)
    return resolve(session, parsed)


def list_versions(
    session: Session,
    name: str,
    *,
    actor: Actor,
    filter: str | None = None,
    page_size: int = 100,
    page_token: str | None = None,
) -> Page[Version]:
    """A model's versions matching ``filter``, newest first unless it orders otherwise."""
    model = get_model(session, name, actor=actor)
    # Only the rows: the doors serialize a page with `serialize.versions_to_dicts`.
    query, order = search.apply(
        select(Version.id).where(Version.model_id == model.id),
        filter,
        scope="versions",
        default_order=[(Version.number, True)],
    )
    return paginate(
        session,
        search.join_models(query, order),
        order=order,
        page_size=page_size,
        page_token=page_token,
        context=f"{name}\n{filter}",
        load=Version,
    )


def search_versions(
    session: Session,
    query_text: str | None,
    *,
    actor: Actor,
    page_size: int = 100,
    page_token: str | None = None,
) -> Page[Version]:
    """Versions of every model matching ``query_text``, newest first unless it orders otherwise."""
    query, order = search.versions_query(query_text, readable=actor.readable_models())
    return paginate(
        session,
        query,
        order=order,
        page_size=page_size,
        page_token=page_token,
        context=query_text,
        load=Version,
    )


def _locked(session: Session, ref: Ref | str, actor: Actor, permission: Permission) -> Version:
    """Resolve ``ref`` after locking its model, so a concurrent delete or move is seen."""
    parsed = parse_ref(ref, allow_model=False) if isinstance(ref, str) else ref
    actor.require(permission, get_model(session, parsed.name, actor=actor, lock=True).id)
    version = resolve(session, parsed)
    # Another transaction may have changed the row between an earlier read and the lock.
    session.refresh(version)
    return version


def set_version_tags(
    session: Session,
    ref: Ref | str,
    *,
    actor: Actor,
    set_tags: dict[str, str] | None = None,
    delete: list[str] | None = None,
) -> Version:
    """Set and/or delete tags on a version in one audited action."""
    version = _locked(session, ref, actor, Permission.VERSION_UPDATE)
    clean = check_tags(set_tags)
    removing = [validate_key(k, kind="tag") for k in (delete or [])]
    current = {t.key: t for t in version.tags}
    before = {k: t.value for k, t in current.items() if k in clean or k in removing}
    for key in removing:
        if key in current:
            version.tags.remove(current.pop(key))
    for key, value in clean.items():
        if key in current:
            current[key].value = value
        else:
            version.tags.append(VersionTag(key=key, value=value))
    version.updated_at = utcnow()
    session.flush()
    record(
        session,
        EventTag.VERSION_TAG,
        actor=actor,
        target=f"{version.model.name}:{version.number}",
        model=version.model,
        before={"tags": before},
        after={"tags": clean, "deleted": removing},
    )
    return version


def update_version(
    session: Session, ref: Ref | str, *, actor: Actor, description: str, reason: str = ""
) -> Version:
    """Change a version's description (the only free-text field that stays mutable)."""
    reason = validate_text(reason, kind="reason")
    version = _locked(session, ref, actor, Permission.VERSION_UPDATE)
    description = validate_text(description, kind="description", limit=MAX_DESCRIPTION)
    before = version.description
    version.description = description
    version.updated_at = utcnow()
    session.flush()
    record(
        session,
        EventTag.VERSION_DESCRIBE,
        actor=actor,
        target=f"{version.model.name}:{version.number}",
        model=version.model,
        before={"description": before},
        after={"description": description},
        reason=reason,
    )
    return version


def delete_version(session: Session, ref: Ref | str, *, actor: Actor, reason: str = "") -> int:
    """Delete one version; its number stays used forever (a tombstone records it)."""
    reason = validate_text(reason, kind="reason")
    version = _locked(session, ref, actor, Permission.VERSION_DELETE)
    model = version.model
    if version.stage is Stage.PRODUCTION:
        # Deleting what serves traffic would leave the stage empty with no rollback target.
        raise Conflict(
            f"{model.name}:{version.number} is in production; roll back or promote another "
            "version first",
            detail={"version": version.number, "stage": version.stage.value},
        )
    for held in version.aliases:
        rule = policies.effective_rule(session, model, "@" + held.name)
        if rule is not None and not actor.has_role(rule.approver_role, model.id):
            # Deleting the version would remove a protected alias by the back door.
            raise PermissionDenied(
                f"{model.name}:{version.number} holds the protected alias @{held.name}; "
                f"deleting it needs the {rule.approver_role.value} role",
                detail={"alias": held.name, "role_needed": rule.approver_role.value},
            )
    files = [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in version.files]
    aliases = [a.name for a in version.aliases]
    session.add(
        Tombstone(
            normalized_name=model.normalized_name,
            name=model.name,
            number=version.number,
            last_version=model.last_version,
            files=files,
            deleted_by=actor.name,
            reason=reason,
        )
    )
    number = version.number
    record(
        session,
        EventTag.VERSION_DELETE,
        actor=actor,
        target=f"{model.name}:{number}",
        model=model,
        before={
            "version": number,
            "aliases": aliases,
            "files": {f["path"]: f["sha256"] for f in files},
        },
        reason=reason,
    )
    if version.stage is not Stage.NONE:
        # Its stage ends with it: `--at` and rollback replay the history and must see that.
        session.add(
            HistoryEntry(
                model_id=model.id,
                kind=HistoryKind.STAGE,
                key=Stage.NONE.value,
                from_stage=version.stage.value,
                to_version=number,
                actor=actor.name,
                reason=f"version {number} deleted",
            )
        )
    for alias in aliases:
        # The alias goes with the version; its history says so, so `--at` never names a
        # version after the moment it stopped holding the alias.
        session.add(
            HistoryEntry(
                model_id=model.id,
                kind=HistoryKind.ALIAS,
                key=alias,
                from_version=number,
                to_version=None,
                actor=actor.name,
                reason=f"version {number} deleted",
            )
        )
    session.delete(version)
    session.flush()
    return number

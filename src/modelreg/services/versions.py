"""Versions: resolve, read, list, tag, update and delete (``registration`` creates them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import (
    Alias,
    HistoryEntry,
    HistoryKind,
    Model,
    Tombstone,
    Version,
    VersionStatus,
    VersionTag,
)
from modelreg.errors import (
    AliasNotFound,
    Conflict,
    InvalidInput,
    PermissionDenied,
    VersionNotFound,
)
from modelreg.names import (
    MAX_DESCRIPTION,
    Ref,
    Stage,
    Target,
    parse_ref,
    validate_key,
    validate_text,
)
from modelreg.services import policies, search
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, record
from modelreg.services.models import check_tags, get_model
from modelreg.services.pages import Page, paginate


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
    _check_deletable(session, model, version, actor)
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
    _record_departures(session, model, version, aliases, actor)
    session.delete(version)
    session.flush()
    return number


def _check_deletable(session: Session, model: Model, version: Version, actor: Actor) -> None:
    """Refuse to delete a production version, or one holding an alias the actor may not move."""
    if version.stage is Stage.PRODUCTION:
        # Deleting what serves traffic would leave the stage empty with no rollback target.
        raise Conflict(
            f"{model.name}:{version.number} is in production; roll back or promote another "
            "version first",
            detail={"version": version.number, "stage": version.stage.value},
        )
    for held in version.aliases:
        rule = policies.effective_rule(session, model, Target(alias=held.name))
        if rule is not None and not actor.has_role(rule.approver_role, model.id):
            # Deleting the version would remove a protected alias by the back door.
            raise PermissionDenied(
                f"{model.name}:{version.number} holds the protected alias @{held.name}; "
                f"deleting it needs the {rule.approver_role.value} role",
                detail={"alias": held.name, "role_needed": rule.approver_role.value},
            )


def _record_departures(
    session: Session, model: Model, version: Version, aliases: list[str], actor: Actor
) -> None:
    """History entries for the stage and the aliases a deleted version takes with it."""
    number = version.number
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

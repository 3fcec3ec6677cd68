"""ORM rows to the JSON shapes of DESIGN.md §5, shared by every door (CLI, Python, REST)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    String,
    Uuid,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, object_session

from modelreg.db.tables import (
    Alias,
    HistoryEntry,
    HistoryKind,
    Model,
    ModelTag,
    Promotion,
    PromotionState,
    Version,
    VersionDataset,
    VersionFile,
    VersionMetric,
    VersionParam,
    VersionParent,
    VersionStatus,
    VersionTag,
)
from modelreg.names import Stage, Target
from modelreg.services.promotions import counted_approvers
from modelreg.services.signatures import signatures_by_version


def iso(value: datetime | None) -> str | None:
    """An ISO-8601 UTC timestamp ending in ``Z``."""
    if value is None:
        return None
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


# What each row of the children query below is, in its `kind` column.
_FILE, _METRIC, _PARAM, _TAG, _DATASET, _PARENT, _ALIAS, _MODEL = range(8)


def _nulls() -> tuple[Any, Any, Any]:
    return cast(null(), String), cast(null(), BigInteger), cast(null(), Float)


def _branch(kind: int, owner: Any, position: Any, text: Any, **values: Any) -> Any:
    """One table's rows in the common shape (owner, kind, position, a, b, n, f).

    The owner's id comes back as the driver gives it (a UUID from PostgreSQL, hex text from
    SQLite), not converted: ``_owner_key`` says which, and a page has many rows.
    """
    no_text, no_int, no_float = _nulls()
    return select(
        type_coerce(owner, String).label("owner"),
        literal_column(str(kind), Integer).label("kind"),
        (position if position is not None else literal_column("0", Integer)).label("position"),
        text.label("a"),
        values.get("b", no_text).label("b"),
        values.get("n", no_int).label("n"),
        values.get("f", no_float).label("f"),
    )


def _among(column: Any, name: str, *, array: bool) -> Any:
    """``column`` is one of the ids bound as ``name``.

    PostgreSQL takes the ids as one array parameter; SQLite, which has no arrays, as a list
    expanded into the statement. A page's children query names them eight times over, and
    800 separate parameters cost more to send and plan than the rows do to read.
    """
    if array:
        return column == any_(bindparam(name, type_=postgresql.ARRAY(Uuid)))
    return column.in_(bindparam(name, expanding=True))


def _version_children(*, array: bool) -> Any:
    """Every file, metric, param, tag, dataset, parent and alias of the versions ``:ids``.

    One statement instead of one per child table: a page costs one round trip for all of
    them, and each table's rows keep the order its own query gave them.
    """
    f, m, p, t = VersionFile, VersionMetric, VersionParam, VersionTag
    d, r, a = VersionDataset, VersionParent, Alias
    return union_all(
        _branch(_FILE, f.version_id, None, f.path, b=f.sha256, n=f.size).where(
            _among(f.version_id, "ids", array=array)
        ),
        _branch(_METRIC, m.version_id, None, m.key, f=m.value).where(
            _among(m.version_id, "ids", array=array)
        ),
        _branch(_PARAM, p.version_id, None, p.key, b=p.value).where(
            _among(p.version_id, "ids", array=array)
        ),
        _branch(_TAG, t.version_id, None, t.key, b=t.value).where(
            _among(t.version_id, "ids", array=array)
        ),
        _branch(_DATASET, d.version_id, d.position, d.name, b=d.ref).where(
            _among(d.version_id, "ids", array=array)
        ),
        _branch(_PARENT, r.version_id, r.position, r.parent_name, n=r.parent_number).where(
            _among(r.version_id, "ids", array=array)
        ),
        _branch(_ALIAS, a.version_id, None, a.name).where(_among(a.version_id, "ids", array=array)),
        # The owner here is the model: a page holds far fewer models than versions.
        _branch(_MODEL, Model.id, None, Model.name).where(
            _among(Model.id, "model_ids", array=array)
        ),
    ).order_by("kind", "position", "a")


_VERSION_CHILDREN = {False: _version_children(array=False), True: _version_children(array=True)}


def _arrays(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _owner_key(session: Session) -> Callable[[uuid.UUID], Any]:
    """How an id looks in a children query's owner column: a UUID, or SQLite's hex text."""
    return _same if _arrays(session) else _hex


def _same(value: uuid.UUID) -> Any:
    return value


def _hex(value: uuid.UUID) -> Any:
    return value.hex


def _grouped(rows: Any, kinds: int) -> dict[Any, tuple[list[Any], ...]]:
    """Children rows by owner, then by kind: (a, b, n, f) each."""
    out: dict[Any, tuple[list[Any], ...]] = {}
    for owner, kind, _, a, b, n, f in rows:
        slots = out.get(owner)
        if slots is None:
            slots = out[owner] = tuple([] for _ in range(kinds))
        slots[kind].append((a, b, n, f))
    return out


def versions_to_dicts(session: Session, versions: Sequence[Version]) -> list[dict[str, Any]]:
    """Many versions in the JSON shape of ``version_to_dict``, with one query for their children.

    A page of versions read through the ORM builds an object for every file, metric, param and
    tag (a search page held 12,000); plain rows keyed by version id cost a fraction of that.
    """
    if not versions:
        return []
    model_ids = list({v.model_id for v in versions})
    children = _grouped(
        session.execute(
            _VERSION_CHILDREN[_arrays(session)],
            {"ids": [v.id for v in versions], "model_ids": model_ids},
        ),
        _MODEL + 1,
    )
    key = _owner_key(session)
    none: tuple[list[Any], ...] = ([],) * _MODEL
    signed_by = signatures_by_version(session, [v.id for v in versions])
    out = []
    for v in versions:
        sigs = signed_by.get(v.id, [])
        # One dict holds both: a version's rows fill the first seven kinds, a model's the last.
        slots = children.get(key(v.id), none)
        files, metrics, params, tags, datasets, parents, aliases = slots[:_MODEL]
        out.append(
            {
                "name": children[key(v.model_id)][_MODEL][0][0],
                "version": v.number,
                "semver": v.semver,
                "status": v.status.value,
                "stage": v.stage.value,
                "aliases": [row[0] for row in aliases],
                "description": v.description,
                "metrics": {row[0]: row[3] for row in metrics},
                "params": {row[0]: row[1] for row in params},
                "tags": {row[0]: row[1] for row in tags},
                "files": [{"path": row[0], "size": row[2], "sha256": row[1]} for row in files],
                "size": v.total_size,
                "framework": v.framework,
                "lineage": {
                    "run_id": v.run_id,
                    "git_repo": v.git_repo,
                    "git_commit": v.git_commit,
                    "git_dirty": v.git_dirty,
                    "source": v.source_uri,
                    "imported_from": v.imported_from,
                    "datasets": [{"name": row[0], "ref": row[1]} for row in datasets],
                    "parents": [f"{row[0]}:{row[2]}" for row in parents],
                },
                "environment": dict(v.environment or {}),
                "flavor": v.flavor,
                "signature": v.signature,
                "scan": v.scan,
                "signed": any(s["trusted"] for s in sigs),
                "signatures": sigs,
                "created_by": v.created_by,
                "created_at": iso(v.created_at),
                "updated_at": iso(v.updated_at),
            }
        )
    return out


def version_to_dict(version: Version) -> dict[str, Any]:
    """A version in the JSON shape of DESIGN.md §5."""
    session = object_session(version)
    found = {} if session is None else signatures_by_version(session, [version.id])
    sigs = found.get(version.id, [])
    return {
        "name": version.model.name,
        "version": version.number,
        "semver": version.semver,
        "status": version.status.value,
        "stage": version.stage.value,
        "aliases": sorted(a.name for a in version.aliases),
        "description": version.description,
        "metrics": {m.key: m.value for m in version.metrics},
        "params": {p.key: p.value for p in version.params},
        "tags": {t.key: t.value for t in version.tags},
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in version.files],
        "size": version.total_size,
        "framework": version.framework,
        "lineage": lineage_to_dict(version),
        "environment": dict(version.environment or {}),
        "flavor": version.flavor,
        "signature": version.signature,
        "scan": version.scan,
        "signed": any(s["trusted"] for s in sigs),
        "signatures": sigs,
        "created_by": version.created_by,
        "created_at": iso(version.created_at),
        "updated_at": iso(version.updated_at),
    }


def lineage_to_dict(version: Version) -> dict[str, Any]:
    """A version's ``lineage`` in the JSON shape of DESIGN.md §5 (reads two child tables)."""
    return {
        "run_id": version.run_id,
        "git_repo": version.git_repo,
        "git_commit": version.git_commit,
        "git_dirty": version.git_dirty,
        "source": version.source_uri,
        "imported_from": version.imported_from,
        "datasets": [{"name": d.name, "ref": d.ref} for d in version.datasets],
        "parents": [f"{p.parent_name}:{p.parent_number}" for p in version.parents],
    }


_TAGS, _ALIASES, _LATEST, _STAGES = range(4)


def _model_children(*, array: bool) -> Any:
    """Tags, aliases (with their version numbers), latest version and stage holders of ``:ids``.

    The latest ready version is the first one the (model_id, number) index meets walking down,
    rather than the maximum over every version a model has.
    """
    latest = (
        select(Version.number)
        .where(Version.model_id == Model.id, Version.status == VersionStatus.READY)
        .order_by(Version.number.desc())
        .limit(1)
        .scalar_subquery()
    )
    return union_all(
        _branch(_TAGS, ModelTag.model_id, None, ModelTag.key, b=ModelTag.value).where(
            _among(ModelTag.model_id, "ids", array=array)
        ),
        _branch(_ALIASES, Alias.model_id, None, Alias.name, n=Version.number)
        .join(Version, Version.id == Alias.version_id)
        .where(_among(Alias.model_id, "ids", array=array)),
        _branch(_LATEST, Model.id, None, cast(null(), String), n=latest).where(
            _among(Model.id, "ids", array=array)
        ),
        _branch(_STAGES, Version.model_id, None, Version.stage, n=func.max(Version.number))
        .where(
            _among(Version.model_id, "ids", array=array),
            Version.stage.in_([Stage.STAGING.value, Stage.PRODUCTION.value]),
        )
        .group_by(Version.model_id, Version.stage),
    ).order_by("kind", "a")


_MODEL_CHILDREN = {False: _model_children(array=False), True: _model_children(array=True)}


def models_to_dicts(session: Session, models: Sequence[Model]) -> list[dict[str, Any]]:
    """Models in the JSON shape of DESIGN.md §5, with one query for the whole list."""
    if not models:
        return []
    children = _grouped(
        session.execute(_MODEL_CHILDREN[_arrays(session)], {"ids": [m.id for m in models]}), 4
    )
    key = _owner_key(session)
    none: tuple[list[Any], ...] = ([],) * 4
    out = []
    for m in models:
        tags, aliases, latest, stages = children.get(key(m.id), none)
        out.append(
            {
                "name": m.name,
                "description": m.description,
                "tags": {row[0]: row[1] for row in tags},
                "owner": m.owner,
                "created_at": iso(m.created_at),
                "updated_at": iso(m.updated_at),
                "latest_version": latest[0][2] if latest else None,
                "stages": {str(row[0]): row[2] for row in stages},
                "aliases": {row[0]: row[2] for row in aliases},
            }
        )
    return out


def model_to_dict(session: Session, model: Model) -> dict[str, Any]:
    """One model in the JSON shape of DESIGN.md §5."""
    return models_to_dicts(session, [model])[0]


def history_to_dict(entry: HistoryEntry) -> dict[str, Any]:
    """One stage change or alias move.

    A stage entry is one version's move (``version``, ``from_stage`` → ``to_stage``); an alias
    entry is the alias's move (``from_version`` → ``to_version``; ``None`` when set or removed).
    """
    out: dict[str, Any] = {
        "kind": entry.kind.value,
        "key": entry.key,
        "action": entry.action.value,
        "from_version": entry.from_version,
        "to_version": entry.to_version,
        "actor": entry.actor,
        "at": iso(entry.at),
        "reason": entry.reason,
        # Promotion ids are numbers; the column is text so other request kinds fit later.
        "request_id": int(entry.request_id)
        if entry.request_id is not None and entry.request_id.isdigit()
        else entry.request_id,
    }
    if entry.kind is HistoryKind.STAGE:
        out.update(version=entry.to_version, from_stage=entry.from_stage, to_stage=entry.key)
    return out


def promotion_to_dict(promotion: Promotion, *, dry_run: bool = False) -> dict[str, Any]:
    """A promotion request in the JSON shape of DESIGN.md §5 (plus its votes and timing).

    While the request is pending each approval says whether it ``counts``: ``false`` once its
    approver no longer holds the approver role (``promotions.counted_approvers``). A decided
    request's approvals have ``counts`` ``null``: they are its record.
    """
    target = Target.parse(promotion.target)
    counted: set[str] | None = None
    session = object_session(promotion)
    if promotion.state is PromotionState.PENDING and session is not None and promotion.votes:
        counted = counted_approvers(session, promotion)
    return {
        "id": promotion.id,
        "name": promotion.model.name,
        "version": promotion.number,
        "target": promotion.target,
        "to_stage": None if target.stage is None else target.stage.value,
        "to_alias": target.alias,
        "state": promotion.state.value,
        "dry_run": dry_run,
        "requested_by": promotion.requested_by,
        "requested_at": iso(promotion.requested_at),
        "reason": promotion.reason,
        "from_version": promotion.from_version,
        "expect_current": promotion.expect_current,
        "approvals_required": promotion.approvals_required,
        "approver_role": promotion.approver_role.value,
        "approvals": [
            {
                "actor": v.actor,
                "at": iso(v.at),
                "reason": v.reason,
                "counts": None if counted is None else v.actor in counted,
            }
            for v in promotion.votes
            if v.approve
        ],
        "rejections": [
            {"actor": v.actor, "at": iso(v.at), "reason": v.reason}
            for v in promotion.votes
            if not v.approve
        ],
        "failed_criteria": list(promotion.failed_criteria or []),
        "decided_by": promotion.decided_by,
        "decided_at": iso(promotion.decided_at),
        "decision_reason": promotion.decision_reason,
    }

"""ORM rows to the JSON shapes of DESIGN.md §5, shared by every door (CLI, Python, REST)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.tables import (
    Alias,
    HistoryEntry,
    HistoryKind,
    Model,
    Promotion,
    Version,
    VersionDataset,
    VersionFile,
    VersionMetric,
    VersionParam,
    VersionParent,
    VersionTag,
)
from modelreg.services.versions import latest_numbers, stage_holders


def iso(value: datetime | None) -> str | None:
    """An ISO-8601 UTC timestamp ending in ``Z``."""
    if value is None:
        return None
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def versions_to_dicts(session: Session, versions: Sequence[Version]) -> list[dict[str, Any]]:
    """Many versions in the JSON shape of ``version_to_dict``, with one query per child table.

    A page of versions read through the ORM builds an object for every file, metric, param and
    tag (a search page held 12,000); plain rows keyed by version id cost a fraction of that.
    """
    if not versions:
        return []
    ids = [v.id for v in versions]

    def rows(*columns: Any, order: Any) -> dict[Any, list[Any]]:
        out: dict[Any, list[Any]] = {}
        table = columns[0].table
        query = select(table.c.version_id, *columns).where(table.c.version_id.in_(ids))
        for row in session.execute(query.order_by(table.c.version_id, order)):
            out.setdefault(row[0], []).append(row[1:])
        return out

    files = rows(VersionFile.path, VersionFile.size, VersionFile.sha256, order=VersionFile.path)
    metrics = rows(VersionMetric.key, VersionMetric.value, order=VersionMetric.key)
    params = rows(VersionParam.key, VersionParam.value, order=VersionParam.key)
    tags = rows(VersionTag.key, VersionTag.value, order=VersionTag.key)
    datasets = rows(VersionDataset.name, VersionDataset.ref, order=VersionDataset.position)
    parents = rows(
        VersionParent.parent_name, VersionParent.parent_number, order=VersionParent.position
    )
    aliases: dict[Any, list[str]] = {}
    for version_id, alias in session.execute(
        select(Alias.version_id, Alias.name).where(Alias.version_id.in_(ids)).order_by(Alias.name)
    ):
        aliases.setdefault(version_id, []).append(alias)
    return [
        {
            "name": v.model.name,
            "version": v.number,
            "semver": v.semver,
            "status": v.status.value,
            "stage": v.stage.value,
            "aliases": aliases.get(v.id, []),
            "description": v.description,
            "metrics": {k: value for k, value in metrics.get(v.id, [])},  # noqa: C416
            "params": {k: value for k, value in params.get(v.id, [])},  # noqa: C416
            "tags": {k: value for k, value in tags.get(v.id, [])},  # noqa: C416
            "files": [
                {"path": path, "size": size, "sha256": sha}
                for path, size, sha in files.get(v.id, [])
            ],
            "size": v.total_size,
            "framework": v.framework,
            "lineage": {
                "run_id": v.run_id,
                "git_repo": v.git_repo,
                "git_commit": v.git_commit,
                "git_dirty": v.git_dirty,
                "source": v.source_uri,
                "imported_from": v.imported_from,
                "datasets": [{"name": n, "ref": r} for n, r in datasets.get(v.id, [])],
                "parents": [f"{n}:{number}" for n, number in parents.get(v.id, [])],
            },
            "environment": dict(v.environment or {}),
            "scan": v.scan,
            "created_by": v.created_by,
            "created_at": iso(v.created_at),
            "updated_at": iso(v.updated_at),
        }
        for v in versions
    ]


def version_to_dict(version: Version) -> dict[str, Any]:
    """A version in the JSON shape of DESIGN.md §5."""
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
        "lineage": {
            "run_id": version.run_id,
            "git_repo": version.git_repo,
            "git_commit": version.git_commit,
            "git_dirty": version.git_dirty,
            "source": version.source_uri,
            "imported_from": version.imported_from,
            "datasets": [{"name": d.name, "ref": d.ref} for d in version.datasets],
            "parents": [f"{p.parent_name}:{p.parent_number}" for p in version.parents],
        },
        "environment": dict(version.environment or {}),
        "scan": version.scan,
        "created_by": version.created_by,
        "created_at": iso(version.created_at),
        "updated_at": iso(version.updated_at),
    }


def models_to_dicts(session: Session, models: list[Model]) -> list[dict[str, Any]]:
    """Models in the JSON shape of DESIGN.md §5, with two queries for the whole list."""
    ids = [m.id for m in models]
    latest = latest_numbers(session, ids)
    stages = stage_holders(session, ids)
    return [
        {
            "name": m.name,
            "description": m.description,
            "tags": {t.key: t.value for t in m.tags},
            "owner": m.owner,
            "created_at": iso(m.created_at),
            "updated_at": iso(m.updated_at),
            "latest_version": latest.get(m.id),
            "stages": stages.get(m.id, {}),
            "aliases": {a.name: a.version.number for a in m.aliases},
        }
        for m in models
    ]


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
    """A promotion request in the JSON shape of DESIGN.md §5 (plus its votes and timing)."""
    target = promotion.target
    return {
        "id": promotion.id,
        "name": promotion.model.name,
        "version": promotion.number,
        "target": target,
        "to_stage": None if target.startswith("@") else target,
        "to_alias": target[1:] if target.startswith("@") else None,
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
            {"actor": v.actor, "at": iso(v.at), "reason": v.reason}
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

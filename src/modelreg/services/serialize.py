"""ORM rows to the JSON shapes of DESIGN.md §5, shared by every door (CLI, Python, REST)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from modelreg.db.tables import HistoryEntry, HistoryKind, Model, Promotion, Version
from modelreg.services.versions import latest_numbers, stage_holders


def iso(value: datetime | None) -> str | None:
    """An ISO-8601 UTC timestamp ending in ``Z``."""
    if value is None:
        return None
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


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

"""What each page of the web UI reads: one use-case per page, in one read transaction.

Every function answers plain dicts in the wire shapes the REST API uses (``serialize``), plus
what a page adds: the policy in force, metric columns, a chart's series, the actor's ``may``
flags (the domain rule, so a page can hide a button; the write checks it again). A model the
actor may not read answers exactly like a missing one, as everywhere (SECURITY.md rule 14).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelreg.db.tables import (
    HistoryEntry,
    HistoryKind,
    Model,
    Version,
    VersionMetric,
    VersionStatus,
)
from modelreg.errors import VersionNotFound
from modelreg.names import Ref, Stage
from modelreg.paths import validate_manifest_path
from modelreg.services import (
    audit,
    deployments,
    holders,
    lifecycle,
    models,
    policies,
    serialize,
    versions,
)
from modelreg.services import compare as comparing
from modelreg.services.actor import Actor, Permission
from modelreg.services.usecases._handles import Handles

PAGE_SIZE = 50
MAX_METRIC_COLUMNS = 6
RECENT = 5
VERSION_EVENTS = 20
HISTORY_LIMIT = 500


def may(
    actor: Actor, model_id: Any, *, edit: Permission = Permission.MODEL_UPDATE
) -> dict[str, bool]:
    """What ``actor`` may do to one model, for the page to offer (the server checks again).

    ``edit`` is the right to change the description and tags of what the page shows: the
    model's (``MODEL_UPDATE``) or a version's (``VERSION_UPDATE``).
    """
    return {
        "edit": actor.can(edit, model_id),
        "alias": actor.can(Permission.ALIAS_SET, model_id),
        "promote": actor.can(Permission.PROMOTE, model_id),
        "approve": actor.can(Permission.APPROVE, model_id),
        "rollback": actor.can(Permission.ROLLBACK, model_id),
        "audit": actor.can(Permission.AUDIT_READ, model_id),
    }


def _production_since(session: Session, model_ids: list[Any]) -> dict[Any, Any]:
    """When each model's production stage last changed hands, by model id (ISO text)."""
    if not model_ids:
        return {}
    rows = session.execute(
        select(HistoryEntry.model_id, func.max(HistoryEntry.at))
        .where(
            HistoryEntry.model_id.in_(model_ids),
            HistoryEntry.kind == HistoryKind.STAGE,
            HistoryEntry.key == Stage.PRODUCTION.value,
        )
        .group_by(HistoryEntry.model_id)
    )
    return {model_id: serialize.iso(at) for model_id, at in rows}


def models_page(
    h: Handles, actor: Actor, q: str | None, page_token: str | None, page_size: int = PAGE_SIZE
) -> dict[str, Any]:
    """A page of models matching the search expression ``q``, each with ``production_since``.

    ``empty_registry`` is true when nothing is registered that the actor may see (no filter,
    first page, no rows): the page then teaches how to register a first model.
    """
    with h.read() as session:
        found = models.list_models(
            session, actor=actor, filter=q or None, page_size=page_size, page_token=page_token
        )
        rows = list(found)
        items = serialize.models_to_dicts(session, rows)
        since = _production_since(session, [m.id for m in rows])
        for model, item in zip(rows, items, strict=True):
            item["production_since"] = since.get(model.id)
        return {
            "items": items,
            "next_page_token": found.next_page_token,
            "empty_registry": not items and not q and not page_token,
            "may_create": actor.can(Permission.MODEL_CREATE),
        }


def search_page(
    h: Handles, actor: Actor, q: str | None, page_token: str | None, page_size: int = PAGE_SIZE
) -> dict[str, Any]:
    """A page of versions across every readable model matching ``q``."""
    with h.read() as session:
        found = versions.search_versions(
            session, q or None, actor=actor, page_size=page_size, page_token=page_token
        )
        return {
            "items": serialize.versions_to_dicts(session, list(found)),
            "next_page_token": found.next_page_token,
        }


def _metric_columns(
    policy: dict[str, Any], rows: list[dict[str, Any]], chosen: str | None
) -> list[dict[str, Any]]:
    """The versions table's metric columns: ``{key, direction, gated}`` each.

    The metrics the policy gates on (production's rule, then staging's; at most six), else the
    page's most common ones; ``chosen`` is always shown.
    """
    gated = comparing.gate_directions(
        [g for t in comparing.GATED_TARGETS for g in policy["rules"].get(t, {}).get("requires", [])]
    )
    keys = list(gated)[:MAX_METRIC_COLUMNS]
    if not keys:
        counts = Counter(k for r in rows for k in r["metrics"])
        keys = sorted(counts, key=lambda k: (-counts[k], k))[:MAX_METRIC_COLUMNS]
    if chosen and chosen not in keys:
        keys = [*keys[: MAX_METRIC_COLUMNS - 1], chosen]
    return [
        {"key": k, "direction": comparing.direction_of(k, gated), "gated": k in gated} for k in keys
    ]


def _production(session: Session, actor: Actor, model: Model, number: int | None) -> Any:
    """Who holds production and since when, by which request and whose approvals."""
    if number is None:
        return None
    entry = session.scalars(
        select(HistoryEntry)
        .where(
            HistoryEntry.model_id == model.id,
            HistoryEntry.kind == HistoryKind.STAGE,
            HistoryEntry.key == Stage.PRODUCTION.value,
            HistoryEntry.to_version == number,
        )
        .order_by(*holders.history_order(descending=True))
        .limit(1)
    ).first()
    out: dict[str, Any] = {"version": number, "since": None, "by": None, "request": None}
    if entry is None:
        return out
    out.update(since=serialize.iso(entry.at), by=entry.actor)
    if entry.request_id is not None and entry.request_id.isdigit():
        request = lifecycle.get_promotion(session, int(entry.request_id), actor=actor)
        out["request"] = {
            "id": request.id,
            "requested_by": request.requested_by,
            "approved_by": [v.actor for v in request.votes if v.approve],
        }
    return out


def model_overview(
    h: Handles,
    actor: Actor,
    name: str,
    *,
    q: str | None = None,
    page_token: str | None = None,
    metric: str | None = None,
    page_size: int = PAGE_SIZE,
) -> dict[str, Any]:
    """A model's page: summary, a page of versions, metric columns, chart, policy, activity."""
    with h.read() as session:
        model = models.read_model(session, name, actor=actor)
        info = serialize.model_to_dict(session, model)
        found = versions.list_versions(
            session,
            model.name,
            actor=actor,
            filter=q or None,
            page_size=page_size,
            page_token=page_token,
        )
        rows = serialize.versions_to_dicts(session, list(found))
        policy = policies.effective_policy(session, model.name, actor=actor)
        columns = _metric_columns(policy, rows, metric or None)
        chart = metric or (columns[0]["key"] if columns else None)
        pending = lifecycle.list_promotions(
            session, actor=actor, name=model.name, state="pending", page_size=RECENT
        )
        flags = may(actor, model.id)
        events = (
            audit.list_events(session, actor=actor, model=model, descending=True, limit=RECENT)
            if flags["audit"]
            else []
        )
        return {
            "model": info,
            "versions": rows,
            "next_page_token": found.next_page_token,
            "metric_columns": columns,
            "metric_choices": sorted(
                {k for r in rows for k in r["metrics"]} | {c["key"] for c in columns}
            ),
            "series": comparing.metric_series(session, model, chart) if chart else None,
            "policy": policy,
            "production": _production(
                session, actor, model, info["stages"].get(Stage.PRODUCTION.value)
            ),
            "pending": [serialize.promotion_to_dict(p) for p in pending],
            "events": [audit.event_to_dict(e) for e in events],
            "deployments": _deployments(session, actor, model),
            "may": flags,
        }


def _deployments(session: Session, actor: Actor, model: Model) -> list[dict[str, Any]]:
    """The model's latest deployments (its page links to the rest)."""
    found = deployments.list_deployments(session, actor=actor, name=model.name, page_size=RECENT)
    return [deployments.to_dict(d, name) for d, name in found]


def _metric_deltas(
    session: Session, model: Model, mine: dict[str, Any], held: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Each metric of a version with its difference from the production version's."""
    gated = comparing.gated_metrics(session, model)
    out = []
    for key in sorted(mine):
        value, other = mine[key], (held or {}).get(key)
        delta = value - other if value is not None and other is not None else None
        direction = comparing.direction_of(key, gated)
        better = None if not delta else (delta > 0) == (direction == "higher")
        out.append(
            {
                "key": key,
                "value": value,
                "production": other,
                "delta": delta,
                "direction": direction,
                "better": better,
                "gated": key in gated,
            }
        )
    return out


def _production_metrics(session: Session, model: Model) -> tuple[int | None, dict[str, float]]:
    """The production version's number and metrics, in one query (``None, {}``: none holds it)."""
    rows = session.execute(
        select(Version.number, VersionMetric.key, VersionMetric.value)
        .outerjoin(VersionMetric, VersionMetric.version_id == Version.id)
        .where(Version.model_id == model.id, Version.stage == Stage.PRODUCTION)
    ).all()
    if not rows:
        return None, {}
    return rows[0][0], {key: value for _, key, value in rows if key is not None}


def _previous(session: Session, model: Model, number: int) -> Version | None:
    """The newest ready version before ``number``: what "changed since" compares against."""
    return session.scalars(
        select(Version)
        .where(
            Version.model_id == model.id,
            Version.number < number,
            Version.status == VersionStatus.READY,
        )
        .order_by(Version.number.desc())
        .limit(1)
    ).first()


def _version_events(session: Session, actor: Actor, model: Model, target: str) -> list[Any]:
    """This version's own audit events (``NAME:N``), newest first; none without audit read."""
    if not actor.can(Permission.AUDIT_READ, model.id):
        return []
    return audit.list_events(
        session, actor=actor, model=model, target=target, descending=True, limit=VERSION_EVENTS
    )


def version_overview(h: Handles, actor: Actor, name: str, number: int) -> dict[str, Any]:
    """A version's page: the version, metrics against production, lineage, environment."""
    with h.read() as session:
        version = versions.read_version(session, Ref(name, version=number), actor=actor)
        model = version.model
        # The bulk serializer: one query for every child row, where the ORM loads seven.
        (data,) = serialize.versions_to_dicts(session, [version])
        held_number, held = _production_metrics(session, model)
        if held_number == version.number:
            held = {}  # its own production: nothing to compare with
        previous = _previous(session, model, version.number)
        environments = [dict(previous.environment or {})] if previous is not None else [{}]
        target = f"{model.name}:{version.number}"
        return {
            "model": serialize.model_to_dict(session, model),
            "version": data,
            "production_version": held_number,
            "metrics": _metric_deltas(session, model, data["metrics"], held),
            "previous_version": previous.number if previous is not None else None,
            "environment": comparing.environment_rows([*environments, data["environment"]]),
            "lineage": comparing.lineage(
                session, Ref(model.name, version=version.number), actor=actor
            ),
            "events": [
                audit.event_to_dict(e) for e in _version_events(session, actor, model, target)
            ],
            "may": may(actor, model.id, edit=Permission.VERSION_UPDATE),
        }


def compare_view(
    h: Handles, actor: Actor, name: str, numbers: list[int], *, only_diff: bool = False
) -> dict[str, Any]:
    """Versions side by side (``compare.compare_many``); ``only_diff`` drops the equal rows."""
    with h.read() as session:
        out = comparing.compare_many(session, name, numbers, actor=actor)
    groups = ("metrics", "params", "tags", "files", "environment")
    out["counts"] = {g: len(out[g]) for g in groups}
    if only_diff:
        for group in groups:
            out[group] = [row for row in out[group] if row["status"] != "same"]
    out["only_diff"] = only_diff
    return out


def history_view(h: Handles, actor: Actor, name: str) -> dict[str, Any]:
    """A model's stage changes and alias moves, newest first (the latest 500)."""
    with h.read() as session:
        model = models.read_model(session, name, actor=actor)
        entries = holders.history(session, model.name, actor=actor, limit=HISTORY_LIMIT)
        return {
            "model": serialize.model_to_dict(session, model),
            "entries": [serialize.history_to_dict(e) for e in reversed(entries)],
            "limit": HISTORY_LIMIT,
        }


def version_file(h: Handles, actor: Actor, name: str, number: int, path: str) -> tuple[str, int]:
    """The digest and size of one file of a version, if ``actor`` may read it."""
    validate_manifest_path(path, existing=True)
    with h.read() as session:
        row = versions.read_version(session, Ref(name, version=number), actor=actor)
        entry = next((f for f in row.files if f.path == path), None)
        if entry is None:
            raise VersionNotFound(f"{name}:{number} has no file {path!r}", detail={"path": path})
        return entry.sha256, entry.size

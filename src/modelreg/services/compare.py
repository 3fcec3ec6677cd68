"""Side-by-side comparison of versions, one metric across versions, and the lineage graph."""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.tables import (
    HistoryEntry,
    HistoryKind,
    Model,
    Version,
    VersionMetric,
    VersionParent,
)
from modelreg.errors import InvalidInput
from modelreg.names import Ref, Stage
from modelreg.services import policies, search
from modelreg.services.actor import Actor, Permission
from modelreg.services.holders import history_order
from modelreg.services.models import get_model
from modelreg.services.serialize import (
    iso,
    lineage_to_dict,
    version_to_dict,
    versions_to_dicts,
)
from modelreg.services.versions import read_version, resolve

MIN_COMPARED = 2
MAX_COMPARED = 10
MAX_SERIES = 200

Direction = Literal["higher", "lower"]
Status = Literal["same", "changed", "added", "removed"]

# Metric names whose smaller values are better, matched against the name's words
# (``val_loss``, ``error_rate``, ``p99_latency_ms``); every other metric is higher-is-better.
_LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "rmse", "latency", "wer", "perplexity")


def _kv_diff(a: dict[str, Any], b: dict[str, Any], *, numeric: bool) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        row: dict[str, Any] = {"key": key, "a": left, "b": right, "changed": left != right}
        if numeric:
            row["delta"] = (right - left) if left is not None and right is not None else None
        rows.append(row)
    return rows


def compare(session: Session, name: str, a: int, b: int, *, actor: Actor) -> dict[str, Any]:
    """Metric, param, tag and file differences between versions ``a`` and ``b`` of ``name``."""
    model = get_model(session, name, actor=actor)
    actor.require(Permission.READ, model.id)
    va = version_to_dict(resolve(session, Ref(model.name, version=a)))
    vb = version_to_dict(resolve(session, Ref(model.name, version=b)))
    files_a = {f["path"]: f for f in va["files"]}
    files_b = {f["path"]: f for f in vb["files"]}
    files = []
    for path in sorted(set(files_a) | set(files_b)):
        fa, fb = files_a.get(path), files_b.get(path)
        if fa is None:
            status = "added"
        elif fb is None:
            status = "removed"
        elif fa["sha256"] == fb["sha256"]:
            status = "same"
        else:
            status = "changed"
        files.append(
            {
                "path": path,
                "status": status,
                "a": {"sha256": fa["sha256"], "size": fa["size"]} if fa else None,
                "b": {"sha256": fb["sha256"], "size": fb["size"]} if fb else None,
            }
        )
    return {
        "name": model.name,
        "a": {k: va[k] for k in ("version", "semver", "stage", "created_at", "created_by")},
        "b": {k: vb[k] for k in ("version", "semver", "stage", "created_at", "created_by")},
        "metrics": _kv_diff(va["metrics"], vb["metrics"], numeric=True),
        "params": _kv_diff(va["params"], vb["params"], numeric=False),
        "tags": _kv_diff(va["tags"], vb["tags"], numeric=False),
        "files": files,
        "lineage": _kv_diff(
            {k: v for k, v in va["lineage"].items() if not isinstance(v, list)},
            {k: v for k, v in vb["lineage"].items() if not isinstance(v, list)},
            numeric=False,
        ),
    }


def lineage(session: Session, ref: Ref | str, *, actor: Actor, depth: int = 10) -> dict[str, Any]:
    """A version's lineage, its ancestors (``depth`` levels) and the versions derived from it.

    Ancestors and children in models the actor may not read appear by reference only.
    """
    version = read_version(session, ref, actor=actor)

    def ancestors(v: Version, level: int, seen: set[Any]) -> list[dict[str, Any]]:
        out = []
        for link in v.parents:
            node: dict[str, Any] = {"ref": f"{link.parent_name}:{link.parent_number}"}
            parent = session.get(Version, link.parent_id) if link.parent_id else None
            if parent is None:
                node["deleted"] = True
            elif not actor.can(Permission.READ, parent.model_id):
                node["hidden"] = True
            elif level < depth and parent.id not in seen:
                node["lineage"] = _lineage_fields(parent)
                node["parents"] = ancestors(parent, level + 1, seen | {parent.id})
            out.append(node)
        return out

    children = session.scalars(
        select(Version)
        .join(VersionParent, VersionParent.version_id == Version.id)
        .where(VersionParent.parent_id == version.id)
        .order_by(Version.created_at)
    )
    return {
        "ref": f"{version.model.name}:{version.number}",
        "lineage": _lineage_fields(version),
        "parents": ancestors(version, 1, {version.id}),
        "children": [f"{c.model.name}:{c.number}" for c in children],
    }


def _lineage_fields(version: Version) -> dict[str, Any]:
    return lineage_to_dict(version)


# --------------------------------------------------------------------------------------------
# Many versions side by side


def _gate_directions(node: Any, flip: bool, out: dict[str, Direction]) -> None:
    """Record, per metric a gate bounds, which way the bound points (``NOT`` turns it)."""
    if isinstance(node, search.Not):
        _gate_directions(node.operand, not flip, out)
    elif isinstance(node, search.BoolOp):
        for operand in node.operands:
            _gate_directions(operand, flip, out)
    elif isinstance(node, search.Compare) and node.op in ("<", "<=", ">", ">="):
        parts = node.field.parts
        if len(parts) == 2 and parts[0].lower() == "metrics":
            higher = node.op.startswith(">") != (flip or node.negate)
            out.setdefault(parts[1], "higher" if higher else "lower")


GATED_TARGETS = (Stage.PRODUCTION.value, Stage.STAGING.value)


def gate_directions(gates: list[str]) -> dict[str, Direction]:
    """The metrics ``gates`` bound, each with the direction its bound asks for, first first.

    ``metrics.acc >= 0.8`` makes ``acc`` higher-is-better; a metric only compared for
    equality is left out.
    """
    out: dict[str, Direction] = {}
    for text in gates:
        parsed = search.parse(text)
        if parsed.where is not None:
            _gate_directions(parsed.where, False, out)
    return out


def gated_metrics(session: Session, model: Model) -> dict[str, Direction]:
    """The metrics the model's effective policy gates on, production's rule before staging's."""
    gates: list[str] = []
    for target in GATED_TARGETS:
        rule = policies.effective_rule(session, model, target)
        gates += rule.requires if rule is not None else []
    return gate_directions(gates)


def direction_of(key: str, gated: dict[str, Direction]) -> Direction:
    """Whether a larger value of metric ``key`` is better: the policy's word, else the name's."""
    if key in gated:
        return gated[key]
    words = [w for w in re.split(r"[^a-z0-9]+", key.lower()) if w]
    lower = any(w in _LOWER_IS_BETTER or w.endswith(("loss", "error")) for w in words)
    return "lower" if lower else "higher"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _statuses(values: list[Any]) -> tuple[Status, list[Status | None]]:
    """The row's status and each later column's against the first (``None`` for the first).

    A cell is ``added`` where the first column lacks the key, ``removed`` where it lacks what
    the first column has; the row is ``same`` only when every column holds the same value.
    """
    first = values[0]
    cells: list[Status | None] = [None]
    for value in values[1:]:
        if first is None and value is None:
            cells.append("same")
        elif first is None:
            cells.append("added")
        elif value is None:
            cells.append("removed")
        else:
            cells.append("same" if value == first else "changed")
    if all(c == "same" for c in cells[1:]):
        return "same", cells
    if first is None:
        return "added", cells
    if "removed" in cells:
        return "removed", cells
    return "changed", cells


def _rows(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = sorted({k for c in columns for k in c})
    rows = []
    for key in keys:
        values = [c.get(key) for c in columns]
        status, cells = _statuses(values)
        rows.append({"key": key, "values": values, "status": status, "cells": cells})
    return rows


def _metric_rows(
    columns: list[dict[str, Any]], gated: dict[str, Direction]
) -> list[dict[str, Any]]:
    rows = _rows(columns)
    for row in rows:
        values, first = row["values"], row["values"][0]
        direction = direction_of(row["key"], gated)
        row["direction"] = direction
        row["gated"] = row["key"] in gated
        row["deltas"] = [
            None if i == 0 or not (_finite(v) and _finite(first)) else v - first
            for i, v in enumerate(values)
        ]
        finite = [v for v in values if _finite(v)]
        # A best value is marked only where there is a choice: two values that differ.
        best = (max if direction == "higher" else min)(finite) if len(set(finite)) > 1 else None
        row["best"] = [best is not None and _finite(v) and v == best for v in values]
    return rows


def _environment_columns(env: dict[str, Any]) -> dict[str, Any]:
    """One version's environment as rows: ``python``, and one ``package NAME`` per package.

    A package row holds the whole requirement (``numpy==1.26.4``), keyed by its name, so an
    upgrade reads as one changed row rather than one removed and one added.
    """
    out: dict[str, Any] = {}
    if env.get("python"):
        out["python"] = str(env["python"])
    for item in env.get("packages") or []:
        text = str(item).strip()
        match = re.match(r"[A-Za-z0-9_.\-]+", text)
        name = (match.group(0) if match else text).lower().replace("_", "-")
        out[f"package {name}"] = text
    return out


def environment_rows(environments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Environments side by side (``python``, then each package), each row with its status."""
    rows = _rows([_environment_columns(env) for env in environments])
    return sorted(rows, key=lambda row: (row["key"] != "python", row["key"]))


def _numbers(numbers: list[int]) -> list[int]:
    """The distinct version numbers in the order given, 2 to 10 of them."""
    unique = list(dict.fromkeys(numbers))
    if not MIN_COMPARED <= len(unique) <= MAX_COMPARED:
        raise InvalidInput(
            f"compare {MIN_COMPARED} to {MAX_COMPARED} different versions (got {len(unique)})",
            detail={"versions": unique[: MAX_COMPARED + 1]},
        )
    return unique


def compare_many(
    session: Session, name: str, numbers: list[int], *, actor: Actor
) -> dict[str, Any]:
    """Versions ``numbers`` of ``name`` as columns, each row with its status against the first.

    Rows: ``metrics`` (``deltas`` against the first column, ``best`` marked by the metric's
    direction: the production gate's, else the name's), ``params``, ``tags``, ``files`` (by
    digest) and ``environment``. Each row's ``status`` is same, changed, added or removed.
    """
    wanted = _numbers(numbers)
    model = get_model(session, name, actor=actor)
    actor.require(Permission.READ, model.id)
    found = {
        v.number: v
        for v in session.scalars(
            select(Version).where(Version.model_id == model.id, Version.number.in_(wanted))
        )
    }
    for number in wanted:
        if number not in found:
            resolve(session, Ref(model.name, version=number))  # raises the precise error
    data = versions_to_dicts(session, [found[n] for n in wanted])
    gated = gated_metrics(session, model)
    files = _rows([{f["path"]: (f["sha256"], f["size"]) for f in v["files"]} for v in data])
    for row in files:
        # Equal by digest alone: a size cannot differ where the digest is the same.
        row["values"] = [
            None if v is None else {"sha256": v[0], "size": v[1]} for v in row["values"]
        ]
    fields = ("version", "semver", "stage", "aliases", "created_at", "created_by", "description")
    return {
        "name": model.name,
        "columns": [{k: v[k] for k in fields} for v in data],
        "metrics": _metric_rows([v["metrics"] for v in data], gated),
        "params": _rows([v["params"] for v in data]),
        "tags": _rows([v["tags"] for v in data]),
        "files": files,
        "environment": environment_rows([v["environment"] for v in data]),
    }


# --------------------------------------------------------------------------------------------
# One metric across versions


def metric_series(
    session: Session, model: Model, key: str, limit: int = MAX_SERIES
) -> dict[str, Any]:
    """Metric ``key`` of the model's latest ``limit`` versions that have it, oldest first.

    ``markers`` are the stage changes into production or staging of the versions shown (from
    the model's history), to mark on a chart. ``model`` is one the caller may read.
    """
    limit = max(1, min(limit, MAX_SERIES))
    rows = session.execute(
        select(Version.number, VersionMetric.value, Version.stage, Version.created_at)
        .join(VersionMetric, VersionMetric.version_id == Version.id)
        .where(Version.model_id == model.id, VersionMetric.key == key)
        .order_by(Version.number.desc())
        .limit(limit)
    ).all()
    points = [
        {"version": n, "value": value, "stage": stage.value, "created_at": iso(at)}
        for n, value, stage, at in reversed(rows)
    ]
    shown = {p["version"] for p in points}
    moves = session.scalars(
        select(HistoryEntry)
        .where(
            HistoryEntry.model_id == model.id,
            HistoryEntry.kind == HistoryKind.STAGE,
            HistoryEntry.key.in_([Stage.PRODUCTION.value, Stage.STAGING.value]),
        )
        .order_by(*history_order(descending=True))
        .limit(limit)
    )
    markers = [
        {"version": e.to_version, "stage": e.key, "at": iso(e.at), "actor": e.actor}
        for e in reversed(list(moves))
        if e.to_version in shown
    ]
    return {"key": key, "points": points, "markers": markers}

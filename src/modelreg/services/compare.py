"""Side-by-side comparison of two versions, and the lineage graph around one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.tables import Version, VersionParent
from modelreg.names import Ref
from modelreg.services.actor import Actor, Permission
from modelreg.services.models import get_model
from modelreg.services.serialize import version_to_dict
from modelreg.services.versions import read_version, resolve


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
    data: dict[str, Any] = version_to_dict(version)["lineage"]
    return data

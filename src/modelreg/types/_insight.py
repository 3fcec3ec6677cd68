"""Results of reads and chores: rollback, history, comparison, lineage, audit, gc, deletion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelreg.types._wire import Result


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Rollback(Result):
    """What a rollback moved: ``target`` (a stage or ``@alias``) went back to ``to_version``."""

    name: str
    target: str
    from_version: int
    to_version: int


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Deleted(Result):
    """What ``delete`` removed: ``NAME`` (a model) or ``NAME:VERSION``."""

    deleted: str


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class HistoryEntry(Result):
    """One stage change or alias move of a model.

    A stage entry (``kind == "stage"``) is one version's move: ``version`` went from
    ``from_stage`` to ``to_stage`` (its ``key``). An alias entry moves the alias ``key`` from
    ``from_version`` to ``to_version`` (``None`` when it was set or removed); the three stage
    fields are ``None`` there and absent from its JSON shape.
    """

    kind: str
    key: str
    action: str
    from_version: int | None
    to_version: int | None
    actor: str
    at: str
    reason: str
    request_id: int | str | None
    version: int | None = None
    from_stage: str | None = None
    to_stage: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (stage fields only on stage entries)."""
        out = {
            "kind": self.kind,
            "key": self.key,
            "action": self.action,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "actor": self.actor,
            "at": self.at,
            "reason": self.reason,
            "request_id": self.request_id,
        }
        if self.kind == "stage":
            out.update(version=self.version, from_stage=self.from_stage, to_stage=self.to_stage)
        return out


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Comparison(Result):
    """Differences between versions ``a`` and ``b`` of a model.

    ``a`` and ``b`` summarise each version (number, semver, stage, creation); ``metrics``,
    ``params``, ``tags`` and ``lineage`` hold one row per key (``{key, a, b, changed}``, plus
    ``delta`` for metrics); ``files`` one per path with its ``status`` (added, removed, same,
    changed).
    """

    name: str
    a: dict[str, Any]
    b: dict[str, Any]
    metrics: list[dict[str, Any]]
    params: list[dict[str, Any]]
    tags: list[dict[str, Any]]
    files: list[dict[str, Any]]
    lineage: list[dict[str, Any]]

    def changed(self, section: str) -> list[str]:
        """The keys (or paths) of ``section`` that differ, e.g. ``changed("metrics")``."""
        rows: list[dict[str, Any]] = getattr(self, section)
        if section == "files":
            return [r["path"] for r in rows if r["status"] != "same"]
        return [r["key"] for r in rows if r["changed"]]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LineageGraph(Result):
    """A version's lineage (run, code, data), its ancestors and the versions derived from it.

    ``parents`` nest: each is ``{ref, lineage, parents}``, or ``{ref, hidden: true}`` for a
    model the caller may not read and ``{ref, deleted: true}`` for a deleted version.
    """

    ref: str
    lineage: dict[str, Any]
    parents: list[dict[str, Any]]
    children: list[str]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class AuditVerification(Result):
    """The outcome of checking the audit log's hash chain (and the ``anchors`` given)."""

    ok: bool
    events: int
    first_bad_seq: int | None
    problem: str | None
    last_hash: str | None
    anchors: int


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class AuditAnchor(Result):
    """The audit log's head; keep ``anchor`` (``SEQ:HASH``) elsewhere to verify against."""

    seq: int
    hash: str
    at: str | None
    anchor: str


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class GcReport(Result):
    """What garbage collection found and removed (or, on a dry run, would remove)."""

    unreferenced: int
    removed: int
    bytes_freed: int
    temporary_removed: int
    dry_run: bool

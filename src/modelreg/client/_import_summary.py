"""What an import did, model by model and version by version: the summary and its totals.

Shared by the importers (``modelreg.client.mlflow_import``); the CLI prints it, ``--json``
emits ``ImportSummary.to_dict()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from modelreg.errors import Conflict


@dataclass(slots=True)
class VersionResult:
    """What happened to one MLflow version.

    ``status`` is ``imported``, ``present`` (copied by an earlier run, files checked),
    ``planned`` (dry run), ``skipped`` (cannot be imported by design: see ``reason``) or
    ``failed``. ``stage`` is the stage given here, ``mlflow_stage`` the one MLflow's stage maps
    to (they differ unless the import keeps stages).
    """

    version: int
    status: str
    stage: str = "none"
    mlflow_stage: str = "none"
    files: int = 0
    bytes: int = 0
    reason: str = ""
    conflict: bool = False
    notes: list[str] = field(default_factory=list)
    # The number it has here, when that differs or may (bundle imports map taken numbers).
    number_here: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return asdict(self)


@dataclass(slots=True)
class AliasResult:
    """What happened to one alias.

    ``status`` is ``set``, ``present``, ``planned``, ``kept`` (it points elsewhere here),
    ``pending`` (a policy protects it: a request now waits for approval) or ``skipped``.
    """

    alias: str
    version: int
    status: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return asdict(self)


@dataclass(slots=True)
class ModelResult:
    """One registered model: ``created``, ``existing``, ``planned``, ``skipped`` or ``failed``."""

    name: str
    status: str = "existing"
    reason: str = ""
    versions: list[VersionResult] = field(default_factory=list)
    aliases: list[AliasResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "versions": [v.to_dict() for v in self.versions],
            "aliases": [a.to_dict() for a in self.aliases],
            "notes": list(self.notes),
        }


@dataclass(slots=True)
class ImportSummary:
    """The outcome of one import run."""

    source: str
    target: str
    dry_run: bool
    pattern: str
    models: list[ModelResult] = field(default_factory=list)

    def _versions(self, status: str) -> list[VersionResult]:
        return [v for m in self.models for v in m.versions if v.status == status]

    def totals(self) -> dict[str, int]:
        """Counts of models, versions, bytes and aliases by outcome."""
        moved = self._versions("planned" if self.dry_run else "imported")
        aliases = [a for m in self.models for a in m.aliases]
        return {
            "models": len(self.models),
            "models_skipped": sum(m.status == "skipped" for m in self.models),
            "models_failed": sum(m.status == "failed" for m in self.models),
            "versions_imported": len(self._versions("imported")),
            "versions_planned": len(self._versions("planned")),
            "versions_present": len(self._versions("present")),
            "versions_skipped": len(self._versions("skipped")),
            "versions_failed": len(self._versions("failed")),
            "files": sum(v.files for v in moved),
            "bytes": sum(v.bytes for v in moved),
            "aliases_set": sum(a.status in ("set", "planned") for a in aliases),
            "aliases_present": sum(a.status == "present" for a in aliases),
            "aliases_not_set": sum(a.status in ("kept", "pending", "skipped") for a in aliases),
        }

    @property
    def exit_code(self) -> int:
        """0 when nothing failed; 6 when only conflicts did; 1 otherwise (DESIGN.md §5)."""
        failed = self._versions("failed")
        models_failed = [m for m in self.models if m.status == "failed"]
        if not failed and not models_failed:
            return 0
        if not models_failed and all(v.conflict for v in failed):
            return Conflict.exit_code
        return 1

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``--json`` prints."""
        return {
            "source": self.source,
            "target": self.target,
            "dry_run": self.dry_run,
            "models_pattern": self.pattern,
            "totals": self.totals(),
            "models": [m.to_dict() for m in self.models],
        }


class ImportProgress(Protocol):
    """What an import reports as it goes (the CLI draws a progress bar from it)."""

    def start(self, versions: int) -> None:
        """The number of versions about to be looked at."""

    def begin(self, label: str, size: int) -> Callable[[int], None] | None:
        """Version ``label`` starts transferring ``size`` bytes; returns a byte counter."""

    def done(self, model: str, result: VersionResult) -> None:
        """One version is dealt with."""

"""Operators' side of ``modelreg.Registry``: rescans, allowed sources and gc."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from modelreg.client._backend import Backend

if TYPE_CHECKING:
    from modelreg.types import GcReport

Pathish = str | os.PathLike[str]


class Operations:
    """Keeping a registry healthy (docs/operations.md, docs/safety.md)."""

    @property
    def backend(self) -> Backend:  # pragma: no cover - ``Registry`` defines it
        raise NotImplementedError

    def scan(self, ref: str, *, force: bool = False) -> dict[str, Any]:
        """Rescan a version's files with the registry's current scanner (docs/safety.md).

        Returns ``{name, version, before, after, changed}`` (``before``/``after`` are scans);
        a change is recorded in the audit log. ``force`` rereads blobs already judged.
        """
        return self.backend.rescan(ref, force)

    def scan_all(self, *, force: bool = False) -> list[dict[str, Any]]:
        """Rescan every version (admin): ``[{name, version, status, before, changed}]``."""
        return self.backend.rescan_all(force)

    def allow_source(self, uri: str) -> dict[str, Any]:
        """Allow copying versions from ``s3://BUCKET[/PREFIX]`` (admin; audited)."""
        return self.backend.allow_source(uri)

    def allowed_sources(self) -> list[dict[str, Any]]:
        """The S3 sources an admin allowed: ``uri``, ``added_by``, ``added_at`` (admin)."""
        return self.backend.list_sources()

    def remove_source(self, uri: str) -> dict[str, Any]:
        """Stop allowing a source (admin; audited); versions copied from it stay."""
        return self.backend.remove_source(uri)

    def gc(self, *, grace_seconds: float = 3600, dry_run: bool = False) -> GcReport:
        """Remove blobs no version references (older than ``grace_seconds``)."""
        return self.backend.gc(grace_seconds, dry_run)

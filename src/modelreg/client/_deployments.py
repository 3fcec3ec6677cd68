"""``Registry``'s verbs for deployments: serve processes reporting themselves (a mixin)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from modelreg.errors import InvalidInput

if TYPE_CHECKING:
    from modelreg.client._backend import Backend
    from modelreg.types import Deployment, Page

# The server's limit on ``last_error`` (services.deployments.MAX_ERROR): a longer error is
# cut here, keeping its end (a traceback's last lines say what failed), so that a report
# carrying a long traceback is never refused and the heartbeat never lost.
MAX_ERROR = 4000


def parse_deployment_id(value: str | uuid.UUID) -> str:
    """A deployment id as its canonical UUID text; raises ``InvalidInput``.

    The server refuses alike, with this message; checked here so no other text reaches a URL.
    """
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except ValueError:
        raise InvalidInput(
            f"invalid deployment id {str(value)[:80]!r}: a UUID", detail={"id": str(value)[:80]}
        ) from None


def _instant(value: datetime | str | None, what: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(
            f"{what} must be a timestamp with a time zone", detail={what: str(value)[:80]}
        ) from None


def _error(text: str) -> str:
    if isinstance(text, str) and len(text) > MAX_ERROR:
        return "…" + text[-(MAX_ERROR - 1) :]
    return text


class Deployments:
    """Serve processes report where they run and what they serve; anyone who reads sees them."""

    @property
    def backend(self) -> Backend:  # pragma: no cover - ``Registry`` defines it
        raise NotImplementedError

    def report_deployment(
        self,
        deployment_id: str | uuid.UUID,
        *,
        ref: str,
        live_version: int | None,
        address: str,
        hostname: str,
        pid: int | None,
        started_at: datetime | str,
        loaded_at: datetime | str | None = None,
        last_error: str = "",
        info: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """Report this serve process (first call) or its heartbeat (every later one).

        ``deployment_id`` is a UUID the process chose when it started (``uuid.uuid4()``);
        the report is an idempotent upsert. Timestamps need a time zone. A ``last_error``
        over 4000 characters keeps its last ones. The caller needs only the viewer role on
        the model; only the principal that first reported an id may report it again.
        """
        fields: dict[str, Any] = {
            "ref": ref,
            "live_version": live_version,
            "address": address,
            "hostname": hostname,
            "pid": pid,
            "started_at": _instant(started_at, "started_at"),
            "loaded_at": _instant(loaded_at, "loaded_at"),
            "last_error": _error(last_error),
            "info": dict(info) if isinstance(info, Mapping) else info,
        }
        return self.backend.report_deployment(parse_deployment_id(deployment_id), fields)

    def deployments(
        self, name: str | None = None, *, page_size: int = 50, page_token: str | None = None
    ) -> Page[Deployment]:
        """Deployments newest first: of model ``name``, or of every model you may read.

        Each has a ``status`` from its last heartbeat: ``live``, ``stale`` or ``stopped``.
        """
        return self.backend.list_deployments(name, int(page_size), page_token)

    def end_deployment(self, deployment_id: str | uuid.UUID) -> Deployment:
        """End a deployment (its process stops): what it was.

        Its reporter may, and a contributor of the model (to clear a process that died).
        """
        return self.backend.end_deployment(parse_deployment_id(deployment_id))

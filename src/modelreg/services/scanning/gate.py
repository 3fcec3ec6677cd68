"""The registry-wide safety default: an ``unsafe`` version does not enter production.

It is not a policy rule, because a model's own rule replaces the registry's as a whole and
would silently drop it; it holds for every model's production whatever rules say. Only the
registry's operator can lift it, with the setting ``allow_unsafe_production`` (environment
``MODELREG_ALLOW_UNSAFE_PRODUCTION=true``), read when the server or embedded registry opens.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.orm import Session

from modelreg.db.tables import Version
from modelreg.names import Stage, Target

__all__ = ["allow_unsafe_production", "baseline", "configure"]

_ALLOWED: dict[str, bool] = {}
_LOCK = threading.Lock()


def _key(session_or_url: Session | str) -> str:
    if isinstance(session_or_url, str):
        return session_or_url
    bind = session_or_url.get_bind()
    return str(bind.engine.url)


def configure(url: str, *, allow_unsafe: bool) -> None:
    """Record the database ``url``'s registry setting (the server and embedded mode call it)."""
    with _LOCK:
        _ALLOWED[url] = allow_unsafe


def allow_unsafe_production(session: Session) -> bool:
    """Whether this registry's operator lifted the default (it holds unless they did)."""
    return _ALLOWED.get(_key(session), False)


def baseline(session: Session, version: Version, target: Target | None) -> list[dict[str, Any]]:
    """The default's failed criterion for a move into ``target``, if it refuses the move."""
    if target is None or target.stage is not Stage.PRODUCTION:
        return []
    if allow_unsafe_production(session):
        return []
    scan = version.scan or {}
    status = scan.get("status")
    if status not in ("unsafe", "pending"):
        return []  # shown only when it refuses: it is no rule anyone wrote
    if status == "unsafe":
        found = "; ".join(
            f"{f.get('file')}: {f.get('detail')}" for f in (scan.get("findings") or [])[:3]
        )
        message = f"the scanner found code that runs on load ({found})"
    else:
        message = "the scan has not finished; promote again when it has"
    return [
        {
            "criterion": "scan != 'unsafe' (registry default)",
            "passed": False,
            "actual": {"scan": status},
            "message": message,
        }
    ]

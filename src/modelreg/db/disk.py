"""The database's disk full (or failing) is a ``StorageFailure`` that says where and what to free.

SQLite reports a full disk as ``database or disk is full`` (SQLITE_FULL) on a write, and as
``disk I/O error`` (SQLITE_IOERR) when it cannot even make its shared-memory or WAL file on
connecting (``PRAGMA journal_mode = WAL``); PostgreSQL as SQLSTATE 53100 (``disk_full``) or a
``No space left on device`` message. Either used to reach the CLI as a raw traceback and an
HTTP client as ``internal server error``; the engine's ``handle_error`` hook turns them into
one precise error instead (503 ``storage_failure``, exit 1).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from modelreg.errors import StorageFailure

_SQLITE_SIGNS = ("database or disk is full", "disk i/o error")
_PG_DISK_FULL = "53100"
# With this much free, an I/O error is not a full disk (SQLite needs a few pages at most).
_ROOMY = 64 * 1024 * 1024


def watch(engine: Engine) -> None:
    """Map ``engine``'s disk-full and disk I/O errors to ``StorageFailure``."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        failure = storage_failure(engine, context.original_exception)
        if failure is not None:
            raise failure from context.original_exception


def storage_failure(engine: Engine, exc: BaseException) -> StorageFailure | None:
    """The ``StorageFailure`` ``exc`` (a driver's error) stands for, or None for other errors."""
    text = str(exc).lower()
    if engine.dialect.name == "sqlite":
        if not any(sign in text for sign in _SQLITE_SIGNS):
            return None
        return _full(Path(engine.url.database or "."), str(exc))
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if code != _PG_DISK_FULL and "no space left on device" not in text:
        return None
    host = engine.url.host or "localhost"
    return StorageFailure(
        f"the PostgreSQL server at {host} has no disk space left ({exc}): free space on its "
        "data volume (old WAL, logs, other databases) or grow it; nothing was written",
        detail={"database": engine.url.render_as_string(hide_password=True)},
    )


def _full(database: Path, error: str) -> StorageFailure:
    folder = database.absolute().parent
    try:
        free: int | None = shutil.disk_usage(folder).free
    except OSError:
        free = None
    left = f"{free} bytes free" if free is not None else "free space unknown"
    todo = (
        "free space there (remove old backups or other large files, run `modelreg gc` if the "
        "blob store shares that disk) or move the registry"
        if free is None or free < _ROOMY
        else "that disk has room, so check it (the kernel log, its health) and its permissions"
    )
    return StorageFailure(
        f"cannot write the registry database {database} ({error}; {left} on the filesystem "
        f"holding {folder}): {todo}; nothing was written",
        detail={"database": str(database), "folder": str(folder), "free_bytes": free},
    )


__all__ = ["storage_failure", "watch"]

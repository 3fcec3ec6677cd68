"""``modelreg backup``: a consistent snapshot of a registry that keeps serving.

A backup folder is itself a registry folder (``registry.db`` + ``blobs/sha256/…``) plus a
``manifest.json``, so ``fsck --repair --from BACKUP`` can take blobs from it and ``restore``
can check it with the same code as ``fsck``:

1. the database first, in one snapshot: SQLite through its online backup API (one step under
   one read transaction; WAL lets writers go on meanwhile), PostgreSQL by reading every table
   inside one ``REPEATABLE READ READ ONLY`` transaction into the backup's SQLite file. Why not
   ``pg_dump``: its output restores only into a PostgreSQL of a compatible version through
   ``psql``, and needs the client binaries of the server's major version on the machine; the
   SQL read gives the same snapshot guarantee (one MVCC snapshot for every table), a backup
   that restores into a folder or any PostgreSQL, and one format to check on restore;
2. then the blobs the snapshot names. Order matters: a blob is stored before the row naming
   it commits, and blobs are immutable and content-addressed, so every blob the snapshot names
   already exists when the snapshot is taken and is still the same bytes afterwards. Copying
   the blobs first (what ``cp -a`` of a live folder may do) can miss the blobs of versions
   registered in between. Blobs are copied, hashed on the way in (``BlobStore.put`` with the
   digest expected): a damaged store copy is reported, never backed up. A copy rather than a
   hard link, so damage to the store's file later cannot reach the backup's. A blob the folder
   already holds is not copied again: the second backup into a folder copies only new blobs;
3. the manifest last, written atomically: it names the snapshot file (by SHA-256), so a folder
   whose manifest names a snapshot is a complete backup, and an interrupted run leaves the
   previous backup intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text

from modelreg.config import SECRET_KEY_FILE
from modelreg.db import copy
from modelreg.db.schema import ensure_schema
from modelreg.db.session import make_engine
from modelreg.digest import CHUNK
from modelreg.errors import InvalidInput, RegistryError
from modelreg.services.actor import Actor, Permission
from modelreg.storage.base import BlobStore
from modelreg.storage.local import LocalBlobStore

FORMAT = "modelreg-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BLOBS = "blobs"


def backup(
    engine: Engine,
    store: BlobStore,
    folder: Path,
    *,
    actor: Actor,
    source: str,
    secret_key: Path | None = None,
) -> dict[str, Any]:
    """Snapshot the database, copy the blobs it names, write the manifest; answers a report.

    ``secret_key`` is the registry folder's key file that seals webhook secrets: the rows
    are useless without it, so it is kept beside them (readable by its owner only).
    """
    actor.require(Permission.BLOB_GC)
    previous = _prepare(folder)
    started = datetime.now(UTC)
    name = f"registry-{started.strftime('%Y%m%dT%H%M%S%fZ')}.db"
    partial = folder / f"{name}.partial"
    partial.unlink(missing_ok=True)
    try:
        snapshot(engine, partial)
        with open_snapshot(partial) as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            counts = copy.counts(conn)
            blobs = referenced_blobs(conn)
        os.replace(partial, folder / name)
    finally:
        partial.unlink(missing_ok=True)
    if secret_key is not None and secret_key.is_file():
        copy_private(secret_key, folder / SECRET_KEY_FILE)
    copied, copied_bytes, problems = _copy_blobs(store, LocalBlobStore(folder / BLOBS), blobs)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": started.isoformat(timespec="seconds"),
        "source": source,
        "dialect": engine.dialect.name,
        "schema_revision": revision,
        "database": {"file": name, "sha256": file_sha256(folder / name)},
        "counts": counts,
        "blobs": dict(sorted(blobs.items())),
        "problems": problems,
    }
    _write_json(folder / MANIFEST, manifest)
    if previous is not None and previous != name:
        (folder / previous).unlink(missing_ok=True)
    return {
        "ok": not problems,
        "folder": str(folder),
        "database": name,
        "schema_revision": revision,
        **_summary(counts),
        "blobs": len(blobs),
        "blobs_copied": copied,
        "bytes_copied": copied_bytes,
        "blobs_already_there": len(blobs) - copied - len(problems),
        "problems": problems,
    }


def _summary(counts: dict[str, int]) -> dict[str, int]:
    keys = {"models": "models", "versions": "model_versions", "audit_events": "audit_events"}
    return {key: counts.get(table, 0) for key, table in keys.items()}


def _prepare(folder: Path) -> str | None:
    """Create ``folder``, or check it is an earlier backup; answers its snapshot's file name."""
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"{folder} is a file; a backup is a folder", detail={})
    manifest = folder / MANIFEST
    if manifest.is_file():
        return str(read_manifest(folder)["database"]["file"])
    if folder.is_dir() and any(folder.iterdir()):
        raise InvalidInput(
            f"{folder} is neither empty nor a modelreg backup (no {MANIFEST}): give an empty "
            f"or new folder, or an earlier backup to update",
            detail={"folder": str(folder)},
        )
    folder.mkdir(parents=True, exist_ok=True)
    return None


def snapshot(engine: Engine, target: Path) -> None:
    """Write one consistent snapshot of ``engine``'s database into the SQLite file ``target``."""
    if engine.dialect.name == "sqlite":
        source = sqlite3.connect(str(engine.url.database), timeout=60)
        try:
            dest = sqlite3.connect(target)
            try:
                # pages=-1: the whole database in one step, under one read transaction.
                source.backup(dest)
                dest.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            finally:
                dest.close()
        finally:
            source.close()
        return
    schema = make_engine(f"sqlite:///{target}")
    try:
        ensure_schema(schema)
    finally:
        schema.dispose()
    # Plain engines: the registry's would stamp the target's writes and the source's SET.
    reader = create_engine(engine.url.render_as_string(hide_password=False))
    writer = create_engine(f"sqlite:///{target}")
    try:
        with reader.connect() as conn:
            src = conn.execution_options(isolation_level="REPEATABLE READ")
            with src.begin(), writer.begin() as dst:
                src.exec_driver_sql("SET TRANSACTION READ ONLY")
                copy.copy_rows(src, dst)
        with writer.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode = DELETE")
    finally:
        reader.dispose()
        writer.dispose()


@contextmanager
def open_snapshot(path: Path) -> Iterator[Connection]:
    """A read-only connection to a snapshot file (nothing is written next to it)."""
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def referenced_blobs(conn: Connection) -> dict[str, int]:
    """Every blob the database names (versions' files, MLflow runs' artifacts): digest → size."""
    rows = conn.execute(
        text(
            "SELECT sha256, size FROM version_files UNION SELECT sha256, size FROM mlflow_artifacts"
        )
    ).all()
    return {str(digest): int(size) for digest, size in rows}


def _copy_blobs(
    store: BlobStore, target: LocalBlobStore, blobs: dict[str, int]
) -> tuple[int, int, list[dict[str, str]]]:
    copied = copied_bytes = 0
    problems: list[dict[str, str]] = []
    for digest, size in sorted(blobs.items()):
        if target.exists(digest) and target.size(digest) == size:
            continue  # copied, verified, by an earlier run: blobs never change
        try:
            with store.open(digest) as fh:
                target.put(fh, expected=digest)
        except (RegistryError, OSError) as exc:
            problems.append({"sha256": digest, "problem": getattr(exc, "message", str(exc))})
            continue
        copied += 1
        copied_bytes += size
    return copied, copied_bytes, problems


def copy_private(source: Path, target: Path) -> None:
    """Copy a secret file, readable by its owner only, atomically."""
    partial = target.with_name(f"{target.name}.partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(source.read_bytes())
    os.replace(partial, target)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The backup's manifest, checked for its format; ``InvalidInput`` when it is not one."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInput(
            f"{folder} is not a modelreg backup: it has no {MANIFEST}",
            detail={"folder": str(folder)},
        ) from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"{path} cannot be read as a backup manifest: {exc}", detail={"folder": str(folder)}
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInput(f"{path} is not a modelreg backup manifest", detail={})
    if manifest.get("format_version") != FORMAT_VERSION:
        raise InvalidInput(
            f"{path} is backup format {manifest.get('format_version')}; this modelreg reads "
            f"{FORMAT_VERSION}",
            detail={},
        )
    return manifest


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, streamed."""
    hasher = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.partial")
    with tmp.open("w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


__all__ = [
    "backup",
    "copy_private",
    "file_sha256",
    "open_snapshot",
    "read_manifest",
    "referenced_blobs",
]

"""Sources outside the registry an admin allows: S3 buckets and prefixes copied in by content.

SECURITY.md rule 1 holds by default: nothing makes the server read a location of a caller's
choosing. An admin may name ``s3://BUCKET`` or ``s3://BUCKET/PREFIX`` (``modelreg sources
allow``, audited); then ``modelreg import mlflow`` and the MLflow door may name objects under
it, and the server reads them with its own AWS credentials (boto3's resolution, the endpoint
settings of the S3 store), hashes them into its blob store and registers the copy. A version
never points at the foreign object.

Matching is on path boundaries (``s3://b/models`` allows ``s3://b/models/x``, never
``s3://b/models-old``); a URI with an empty, ``.`` or ``..`` part, a query, a fragment or a
percent sign is refused before it is compared. Reads are bounded: at most ``MAX_OBJECTS``
objects, each and all together within the server's ``max_upload_bytes``; an object that
changes size while it is read is refused. boto3 follows no redirect to another host.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.tables import AllowedSource
from modelreg.errors import AlreadyExists, InvalidInput, NotFound, StorageFailure
from modelreg.paths import validate_manifest_path
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, record
from modelreg.services.versions import FileSpec
from modelreg.storage import BlobStore

__all__ = [
    "MAX_OBJECTS",
    "S3Location",
    "allow_source",
    "check_allowed",
    "check_apart_from_store",
    "copy_objects",
    "list_sources",
    "parse_source",
    "remove_source",
    "source_to_dict",
]

MAX_OBJECTS = 10_000
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MAX_URI = 1024


@dataclass(frozen=True, slots=True)
class S3Location:
    """``s3://BUCKET/KEY``: a bucket and a key or key prefix without outer slashes."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}".rstrip("/")

    def covers(self, other: S3Location) -> bool:
        """Whether ``other`` lies under this location, on a path boundary."""
        if other.bucket != self.bucket:
            return False
        return not self.key or other.key == self.key or other.key.startswith(self.key + "/")


def parse_source(uri: Any) -> S3Location:
    """``s3://BUCKET[/KEY]`` as a location; anything else is ``InvalidInput``."""
    if not isinstance(uri, str) or not uri.startswith("s3://") or len(uri) > _MAX_URI:
        raise InvalidInput(
            f"source {str(uri)[:200]!r} is not an s3://BUCKET/PREFIX URI of at most "
            f"{_MAX_URI} characters",
            detail={"source": str(uri)[:200]},
        )
    if any(ch in uri for ch in "\\?#%\x7f") or any(ord(ch) < 32 for ch in uri):
        raise InvalidInput(
            f"source {uri!r}: a backslash, '?', '#', '%' or a control character is not allowed",
            detail={"source": uri},
        )
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    key = key.rstrip("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise InvalidInput(
            f"source {uri!r}: the bucket must be 3-63 lower-case letters, digits, dots and hyphens",
            detail={"source": uri},
        )
    if key and any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidInput(
            f"source {uri!r}: the path has an empty, '.' or '..' part", detail={"source": uri}
        )
    return S3Location(bucket, key)


def source_to_dict(row: AllowedSource) -> dict[str, Any]:
    """An allowed source in its JSON shape."""
    return {"uri": row.uri, "added_by": row.added_by, "added_at": row.added_at.isoformat()}


def _row(session: Session, uri: str) -> AllowedSource | None:
    return session.scalar(select(AllowedSource).where(AllowedSource.uri == uri))


def allow_source(session: Session, uri: str, *, actor: Actor) -> AllowedSource:
    """Allow copying from ``uri`` and everything under it (registry-wide admin; audited)."""
    actor.require(Permission.ADMIN)
    location = parse_source(uri)
    if importlib.util.find_spec("boto3") is None:
        raise InvalidInput(
            "reading s3:// sources needs boto3 on the server: pip install 'modelreg[s3]'",
            detail={"source": location.uri},
        )
    if _row(session, location.uri) is not None:
        raise AlreadyExists(
            f"{location.uri} is already an allowed source", detail={"source": location.uri}
        )
    row = AllowedSource(uri=location.uri, added_by=actor.name)
    session.add(row)
    session.flush()
    record(
        session,
        EventTag.SOURCE_ALLOW,
        actor=actor,
        target=f"source:{location.uri}",
        after={"uri": location.uri},
    )
    return row


def list_sources(session: Session, *, actor: Actor) -> list[AllowedSource]:
    """Every allowed source (admin: the list names the server's buckets)."""
    actor.require(Permission.ADMIN)
    return list(session.scalars(select(AllowedSource).order_by(AllowedSource.uri)))


def remove_source(session: Session, uri: str, *, actor: Actor) -> AllowedSource:
    """Stop allowing ``uri`` (admin; audited); versions copied from it stay."""
    actor.require(Permission.ADMIN)
    location = parse_source(uri)
    row = _row(session, location.uri)
    if row is None:
        raise NotFound(f"{location.uri} is not an allowed source", detail={"source": location.uri})
    session.delete(row)
    session.flush()
    record(
        session,
        EventTag.SOURCE_REMOVE,
        actor=actor,
        target=f"source:{location.uri}",
        before={"uri": location.uri},
    )
    return row


def check_allowed(session: Session, uri: Any) -> S3Location:
    """The location ``uri`` names, if an admin allowed it; else ``InvalidInput``."""
    location = parse_source(uri)
    for row in session.scalars(select(AllowedSource)):
        if parse_source(row.uri).covers(location):
            return location
    # InvalidInput, as the door has always answered a source it does not read (MLflow's
    # INVALID_PARAMETER_VALUE), so clients see one kind of refusal for every bad source.
    raise InvalidInput(
        f"source {location.uri} is not under an allowed source; an admin allows it with "
        f"`modelreg sources allow s3://{location.bucket}/PREFIX`",
        detail={"source": location.uri, "reason": "source_not_allowed"},
    )


def check_apart_from_store(store: BlobStore, location: S3Location) -> None:
    """Refuse a location that overlaps the registry's own S3 store (``InvalidInput``).

    Copying from the store's own keys would hand whoever asks every blob under them, whatever
    model they belong to (a digest is not a credential, SECURITY.md rule 13).
    """
    bucket, prefix = getattr(store, "bucket", None), getattr(store, "prefix", None)
    if not isinstance(bucket, str) or not isinstance(prefix, str):
        return  # a folder or memory store: no bucket to overlap
    own = S3Location(bucket, prefix.strip("/"))
    if own.covers(location) or location.covers(own):
        raise InvalidInput(
            f"source {location.uri} overlaps the registry's own store {own.uri}: blobs are read "
            "through the registry, never copied from its store",
            detail={"source": location.uri, "reason": "source_is_store"},
        )


_CLIENTS: dict[tuple[str, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()
_AWS_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
)


def _client() -> Any:
    """One boto3 client per AWS setting (making one loads botocore's models: ~0.5 s)."""
    from modelreg.storage.s3_client import make_client

    key = tuple(os.environ.get(name, "") for name in _AWS_VARIABLES)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = make_client()  # boto3 clients are safe to share between threads
        return _CLIENTS[key]


def _failure(location: S3Location, exc: Exception) -> InvalidInput | StorageFailure:
    """The error for a failed read of the source.

    S3's refusal (4xx: no such bucket, access denied) fails the one request; anything else
    (5xx, no connection) is the storage being down (``storage_failure``).
    """
    status = _status(exc)
    if status is not None and 400 <= status < 500:
        return InvalidInput(
            f"cannot read the source {location.uri}: S3 answered {status} ({exc}); check the "
            "bucket and the server's credentials for it",
            detail={"source": location.uri, "status": status, "reason": "source_unreadable"},
        )
    return StorageFailure(
        f"cannot read the source {location.uri}: {exc}", detail={"source": location.uri}
    )


def _listing(client: Any, location: S3Location, max_bytes: int) -> list[tuple[str, str, int]]:
    """``(key, relative path, size)`` of the object ``location`` names, or of those under it."""
    try:
        head = (
            client.head_object(Bucket=location.bucket, Key=location.key) if location.key else None
        )
    except Exception as exc:  # botocore's ClientError: 404 means "a prefix, not an object"
        if _status(exc) not in (403, 404):
            raise _failure(location, exc) from None
        head = None
    if head is not None:
        return [(location.key, location.key.rsplit("/", 1)[-1], int(head["ContentLength"]))]
    prefix = f"{location.key}/" if location.key else ""
    found: list[tuple[str, str, int]] = []
    total = listed = 0
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=location.bucket, Prefix=prefix
        )
        for page in pages:
            for item in page.get("Contents") or []:
                key, size = str(item["Key"]), int(item["Size"])
                listed += 1  # folder markers count too: listing is bounded, not only copying
                if key.endswith("/"):
                    continue  # a folder marker some tools write
                total += size
                if listed > MAX_OBJECTS or total > max_bytes:
                    raise InvalidInput(
                        f"source {location.uri} holds more than {MAX_OBJECTS:,} objects or "
                        f"{max_bytes:,} bytes; not copied",
                        detail={"source": location.uri, "max_bytes": max_bytes},
                    )
                found.append((key, key[len(prefix) :], size))
    except (InvalidInput, StorageFailure):
        raise
    except Exception as exc:
        raise _failure(location, exc) from None
    return found


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if isinstance(status, int) else None


def copy_objects(store: BlobStore, location: S3Location, *, max_bytes: int) -> list[FileSpec]:
    """Copy the object(s) at an allowed ``location`` into ``store``: their manifest.

    The caller checked the allowlist (``check_allowed``). Each object is hashed as it is
    stored; one longer than its listing said is refused before the extra bytes are kept.
    """
    check_apart_from_store(store, location)
    client = _client()
    listed = _listing(client, location, max_bytes)
    if not listed:
        raise InvalidInput(
            f"source {location.uri} holds no objects", detail={"source": location.uri}
        )
    files: list[FileSpec] = []
    for key, rel, size in listed:
        try:
            validate_manifest_path(rel)
        except InvalidInput as exc:
            raise InvalidInput(
                f"source {location.uri}: object {key!r} cannot be a file of a version: "
                f"{exc.message}",
                detail={"source": location.uri, "key": key},
            ) from None
        if size > max_bytes:
            raise InvalidInput(
                f"source {location.uri}: object {key!r} is {size:,} bytes, more than {max_bytes:,}",
                detail={"source": location.uri, "key": key},
            )
        files.append(FileSpec(rel, _copy_one(client, store, location, key, size), size))
    return sorted(files, key=lambda f: f.path)


def _copy_one(client: Any, store: BlobStore, location: S3Location, key: str, size: int) -> str:
    """Stream one object into the store; its SHA-256."""
    writer = store.writer()
    try:
        try:
            body = client.get_object(Bucket=location.bucket, Key=key)["Body"]
            got = 0
            for chunk in body.iter_chunks(1024 * 1024):
                got += len(chunk)
                if got > size:
                    break
                writer.write(chunk)
        except Exception as exc:
            raise _failure(location, exc) from None
        if got != size:
            raise StorageFailure(
                f"source {location.uri}: object {key!r} changed while it was read "
                f"({got:,} bytes, listed {size:,}); try again",
                detail={"source": location.uri, "key": key},
            )
        return writer.commit().sha256
    finally:
        writer.abort()

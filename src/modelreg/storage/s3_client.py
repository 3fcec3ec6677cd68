"""The S3 store's plumbing: its URL, its boto3 client, and the stream of an object's body."""

from __future__ import annotations

import contextlib
import io
import re
from typing import Any

from modelreg.errors import InvalidInput, StorageFailure

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def parse_s3_url(location: str) -> tuple[str, str]:
    """``s3://BUCKET[/PREFIX]`` as ``(bucket, prefix)``; the prefix has no outer slashes."""
    rest = location.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise InvalidInput(
            f"invalid artifact store {location!r}: expected s3://BUCKET/PREFIX with a bucket "
            "name of 3-63 lower-case letters, digits, dots and hyphens",
            detail={"artifacts": location},
        )
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise InvalidInput(
            f"invalid artifact store {location!r}: the prefix has an empty, '.' or '..' part",
            detail={"artifacts": location},
        )
    return bucket, prefix


def make_client(endpoint: str | None = None) -> Any:
    """An S3 client from boto3's standard resolution, with bounded waits and retries.

    ``endpoint`` overrides the resolved endpoint (presigned URLs for clients that reach the
    bucket at another address than the server does).
    """
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise InvalidInput(
            "an s3:// artifact store needs boto3: pip install 'modelreg[s3]'", detail={}
        ) from None
    config = Config(
        connect_timeout=10,
        read_timeout=120,
        retries={"mode": "standard"},
        # Uploads and downloads of several requests run at once, each in its own thread.
        max_pool_connections=32,
        # Presigned URLs in SigV4, which every region takes (SigV2's are refused in most).
        signature_version="s3v4",
    )
    return boto3.session.Session().client("s3", config=config, endpoint_url=endpoint or None)


class ObjectReader(io.RawIOBase):
    """The body of a ``GetObject``, read as it is consumed; errors become ``StorageFailure``."""

    def __init__(self, store: Any, body: Any, etag: str) -> None:
        self._store = store
        self._body = body
        self.etag = etag

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            with self._store.failures("read"):
                data = self._body.read(len(view))
        except StorageFailure:
            raise
        except Exception as exc:  # urllib3's ProtocolError and kin: the connection broke
            raise StorageFailure(
                f"reading from the artifact store {self._store.url} broke off: {exc}",
                detail={"store": self._store.url},
            ) from None
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()


__all__ = ["ObjectReader", "make_client", "parse_s3_url"]

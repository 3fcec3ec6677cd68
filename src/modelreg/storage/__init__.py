"""Content-addressed artifact storage: blobs named by their SHA-256, behind one small protocol."""

from modelreg.storage.base import BlobInfo, BlobStore, check_digest, copy_verified

__all__ = ["BlobInfo", "BlobStore", "check_digest", "copy_verified", "open_blob_store"]


def open_blob_store(location: str) -> BlobStore:
    """The blob store at ``location``: a local folder, or ``s3://BUCKET/PREFIX``."""
    from modelreg.errors import InvalidInput

    if location.startswith("s3://"):
        from modelreg.storage.s3 import S3BlobStore

        return S3BlobStore.from_url(location)
    if "://" in location and not location.startswith("file://"):
        raise InvalidInput(
            f"unsupported artifact store {location!r}: give a local folder or s3://BUCKET/PREFIX",
            detail={"artifacts": location},
        )
    from modelreg.storage.local import LocalBlobStore

    return LocalBlobStore(location.removeprefix("file://"))

"""modelreg: a fast, safe model registry for machine-learning teams.

``import modelreg`` loads nothing heavy: ``Registry`` and the errors are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from modelreg.client import Registry
    from modelreg.errors import (
        AliasNotFound,
        AlreadyExists,
        ApprovalRequired,
        BlobNotFound,
        BodyTimeout,
        ConcurrentChange,
        Conflict,
        DigestMismatch,
        Immutable,
        ImportStopped,
        IntegrityFailure,
        InvalidInput,
        InvalidName,
        InvalidPath,
        InvalidQuery,
        InvalidReference,
        ModelNotFound,
        NotFound,
        PermissionDenied,
        PolicyViolation,
        PromotionNotFound,
        RegistryError,
        SchemaOutdated,
        StorageFailure,
        TooManyUploads,
        Unauthenticated,
        Unavailable,
        VersionNotFound,
    )
    from modelreg.types import AuditEvent, FileInfo, Model, Page, Promotion, Version

__all__ = [
    "AliasNotFound",
    "AlreadyExists",
    "ApprovalRequired",
    "AuditEvent",
    "BlobNotFound",
    "BodyTimeout",
    "ConcurrentChange",
    "Conflict",
    "DigestMismatch",
    "FileInfo",
    "Immutable",
    "ImportStopped",
    "IntegrityFailure",
    "InvalidInput",
    "InvalidName",
    "InvalidPath",
    "InvalidQuery",
    "InvalidReference",
    "Model",
    "ModelNotFound",
    "NotFound",
    "Page",
    "PermissionDenied",
    "PolicyViolation",
    "Promotion",
    "PromotionNotFound",
    "Registry",
    "RegistryError",
    "SchemaOutdated",
    "StorageFailure",
    "TooManyUploads",
    "Unauthenticated",
    "Unavailable",
    "Version",
    "VersionNotFound",
    "__version__",
]

_HOMES = {
    "Registry": "modelreg.client",
    "AuditEvent": "modelreg.types",
    "FileInfo": "modelreg.types",
    "Model": "modelreg.types",
    "Page": "modelreg.types",
    "Promotion": "modelreg.types",
    "Version": "modelreg.types",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    if name in __all__:
        return getattr(importlib.import_module("modelreg.errors"), name)
    raise AttributeError(f"module 'modelreg' has no attribute {name!r}")

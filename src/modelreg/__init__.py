"""modelreg: a fast, safe model registry for machine-learning teams.

``import modelreg`` loads nothing heavy: ``Registry`` and the errors are imported on first use.
"""

# Only modules are imported here (no `from typing import …`), so every public name this
# module defines is one of __all__ (tests/unit/test_exports.py).
import typing

__version__ = "0.1.0"

if typing.TYPE_CHECKING:
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


def __getattr__(name: str) -> typing.Any:
    import importlib

    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    if name in __all__:
        return getattr(importlib.import_module("modelreg.errors"), name)
    raise AttributeError(f"module 'modelreg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""modelreg: a fast, safe model registry for machine-learning teams.

``import modelreg`` loads nothing heavy: ``Registry`` and the errors are imported on first use.
"""

# Only modules are imported here (no `from typing import …`), so every public name this
# module defines is one of __all__ (tests/unit/test_exports.py).
import typing

__version__ = "0.1.0"

if typing.TYPE_CHECKING:
    from modelreg.client import Registry
    from modelreg.client._objects import load
    from modelreg.errors import (
        AliasNotFound,
        AlreadyExists,
        ApprovalRequired,
        BlobNotFound,
        BodyTimeout,
        BodyTooLarge,
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
        ModelFailed,
        ModelNotFound,
        NotFound,
        PermissionDenied,
        PolicyViolation,
        PromotionNotFound,
        RegistryError,
        SchemaOutdated,
        SignatureInvalid,
        StorageFailure,
        TooManyUploads,
        Unauthenticated,
        Unavailable,
        UnsafeModel,
        VersionNotFound,
    )
    from modelreg.types import (
        AuditAnchor,
        AuditEvent,
        AuditVerification,
        Comparison,
        Deleted,
        Delivery,
        Deployment,
        Event,
        FileInfo,
        GcReport,
        Grant,
        HistoryEntry,
        LineageGraph,
        Model,
        Page,
        Policies,
        Policy,
        PolicyApplyReport,
        PolicyRule,
        Promotion,
        Result,
        Rollback,
        Signature,
        SignatureCheck,
        Token,
        TrustedKey,
        User,
        Version,
        Webhook,
    )

__all__ = [
    "AliasNotFound",
    "AlreadyExists",
    "ApprovalRequired",
    "AuditAnchor",
    "AuditEvent",
    "AuditVerification",
    "BlobNotFound",
    "BodyTimeout",
    "BodyTooLarge",
    "Comparison",
    "ConcurrentChange",
    "Conflict",
    "Deleted",
    "Delivery",
    "Deployment",
    "DigestMismatch",
    "Event",
    "FileInfo",
    "GcReport",
    "Grant",
    "HistoryEntry",
    "Immutable",
    "ImportStopped",
    "IntegrityFailure",
    "InvalidInput",
    "InvalidName",
    "InvalidPath",
    "InvalidQuery",
    "InvalidReference",
    "LineageGraph",
    "Model",
    "ModelFailed",
    "ModelNotFound",
    "NotFound",
    "Page",
    "PermissionDenied",
    "Policies",
    "Policy",
    "PolicyApplyReport",
    "PolicyRule",
    "PolicyViolation",
    "Promotion",
    "PromotionNotFound",
    "Registry",
    "RegistryError",
    "Result",
    "Rollback",
    "SchemaOutdated",
    "Signature",
    "SignatureCheck",
    "SignatureInvalid",
    "StorageFailure",
    "Token",
    "TooManyUploads",
    "TrustedKey",
    "Unauthenticated",
    "Unavailable",
    "UnsafeModel",
    "User",
    "Version",
    "VersionNotFound",
    "Webhook",
    "__version__",
    "load",
]

_HOMES = {
    "Registry": "modelreg.client",
    "load": "modelreg.client._objects",
    "AuditAnchor": "modelreg.types",
    "AuditEvent": "modelreg.types",
    "AuditVerification": "modelreg.types",
    "Comparison": "modelreg.types",
    "Deleted": "modelreg.types",
    "Delivery": "modelreg.types",
    "Deployment": "modelreg.types",
    "Event": "modelreg.types",
    "FileInfo": "modelreg.types",
    "GcReport": "modelreg.types",
    "Grant": "modelreg.types",
    "HistoryEntry": "modelreg.types",
    "LineageGraph": "modelreg.types",
    "Model": "modelreg.types",
    "Page": "modelreg.types",
    "Policies": "modelreg.types",
    "Policy": "modelreg.types",
    "PolicyApplyReport": "modelreg.types",
    "PolicyRule": "modelreg.types",
    "Promotion": "modelreg.types",
    "Result": "modelreg.types",
    "Rollback": "modelreg.types",
    "Signature": "modelreg.types",
    "SignatureCheck": "modelreg.types",
    "Token": "modelreg.types",
    "TrustedKey": "modelreg.types",
    "User": "modelreg.types",
    "Version": "modelreg.types",
    "Webhook": "modelreg.types",
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

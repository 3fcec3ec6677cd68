"""ORM tables of the metadata store; the schema itself exists only through Alembic migrations.

One ``Base.metadata`` holds them all, split by concept: the registry's models and versions
(``registry``), who may act (``access``), promotion policy (``promotions``), notifications
(``notify``), safety scans and signatures (``safety``), serve processes (``serving``)
and the MLflow door's tracking state (``tracking``). The registry's tables are
importable from here; the MLflow door's only from ``modelreg.db.tables.tracking``. Importing
this package registers every table, which Alembic's autogenerate relies on.
"""

from __future__ import annotations

from modelreg.db.tables import tracking as tracking
from modelreg.db.tables.access import (
    AllowedSource,
    ApiToken,
    BlobPossession,
    Grant,
    Principal,
    PrincipalKind,
    Role,
    WebSession,
)
from modelreg.db.tables.notify import (
    DeliveryAttempt,
    DeliveryState,
    Webhook,
    WebhookDelivery,
    WebhookKind,
    WorkerLease,
)
from modelreg.db.tables.promotions import PolicyRule, Promotion, PromotionState, PromotionVote
from modelreg.db.tables.registry import (
    Alias,
    AuditEvent,
    AuditHead,
    HistoryAction,
    HistoryEntry,
    HistoryKind,
    Model,
    ModelTag,
    Tombstone,
    Version,
    VersionDataset,
    VersionFile,
    VersionMetric,
    VersionParam,
    VersionParent,
    VersionStatus,
    VersionTag,
)
from modelreg.db.tables.safety import BlobScan, TrustedKey, VersionSignature
from modelreg.db.tables.serving import Deployment

__all__ = [
    "Alias",
    "AllowedSource",
    "ApiToken",
    "AuditEvent",
    "AuditHead",
    "BlobPossession",
    "BlobScan",
    "DeliveryAttempt",
    "DeliveryState",
    "Deployment",
    "Grant",
    "HistoryAction",
    "HistoryEntry",
    "HistoryKind",
    "Model",
    "ModelTag",
    "PolicyRule",
    "Principal",
    "PrincipalKind",
    "Promotion",
    "PromotionState",
    "PromotionVote",
    "Role",
    "Tombstone",
    "TrustedKey",
    "Version",
    "VersionDataset",
    "VersionFile",
    "VersionMetric",
    "VersionParam",
    "VersionParent",
    "VersionSignature",
    "VersionStatus",
    "VersionTag",
    "WebSession",
    "Webhook",
    "WebhookDelivery",
    "WebhookKind",
    "WorkerLease",
    "tracking",
]

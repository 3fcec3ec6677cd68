"""The typed objects the Python client returns; their fields are the JSON shapes of DESIGN.md §5.

Every result has ``from_dict`` (built from the REST answer's body, the one place a result is
made from its wire shape, for both backends) and ``to_dict`` (that body again, key for key: the
CLI's ``--json`` output). Results that were plain dicts before 0.x still read by key
(``result["to_version"]``) as well as by attribute.
"""

from modelreg.types._events import Event
from modelreg.types._identity import Grant, Token, User
from modelreg.types._insight import (
    AuditAnchor,
    AuditVerification,
    Comparison,
    Deleted,
    GcReport,
    HistoryEntry,
    LineageGraph,
    Rollback,
)
from modelreg.types._notify import Delivery, Webhook
from modelreg.types._policy import Policies, Policy, PolicyApplyReport, PolicyRule
from modelreg.types._records import AuditEvent, FileInfo, Model, Page, Promotion, Version
from modelreg.types._serving import Deployment
from modelreg.types._wire import Result

__all__ = [
    "AuditAnchor",
    "AuditEvent",
    "AuditVerification",
    "Comparison",
    "Deleted",
    "Delivery",
    "Deployment",
    "Event",
    "FileInfo",
    "GcReport",
    "Grant",
    "HistoryEntry",
    "LineageGraph",
    "Model",
    "Page",
    "Policies",
    "Policy",
    "PolicyApplyReport",
    "PolicyRule",
    "Promotion",
    "Result",
    "Rollback",
    "Token",
    "User",
    "Version",
    "Webhook",
]

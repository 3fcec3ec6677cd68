"""``signed``: whether a version has a signature by a trusted key that is not revoked.

Apart from ``services.signatures`` so that search and policies, which it imports through
``versions``, can use it without an import cycle.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from modelreg.db.tables import TrustedKey, VersionSignature


def trusted_clause(version_id: Any) -> Any:
    """SQL: the version ``version_id`` has a signature by a trusted, unrevoked key.

    Every stored signature verified when it was stored, so this is a join on the key's
    fingerprint, not a cryptographic check on every read.
    """
    return exists().where(
        VersionSignature.version_id == version_id,
        TrustedKey.fingerprint == VersionSignature.key_fingerprint,
        TrustedKey.revoked_at.is_(None),
    )


def is_signed(session: Session, version_id: uuid.UUID) -> bool:
    """Whether the version has a signature by a trusted, unrevoked key."""
    return bool(session.scalar(select(trusted_clause(version_id))))

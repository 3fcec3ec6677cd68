"""Safety: what the scanner found in each stored blob, version signatures, trusted keys.

Blobs are content-addressed, so a scan belongs to a digest: a digest scanned once by a scanner
is never scanned again by it (``BlobScan``), and a version's ``scan`` (on ``model_versions``)
is the summary over its files. A signature covers one version's manifest (every path and
SHA-256); it is stored as registered, immutable, and checked against the trusted keys.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from modelreg.db.base import Base, UTCDateTime, created_at, uuid_pk


class BlobScan(Base):
    """The scanner's verdict on one blob: ``clean``, ``unsafe``, ``not_applicable`` or ``error``."""

    __tablename__ = "blob_scans"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    # [{kind, detail}] (the file path is the version's, added when a version's scan is built).
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Name and version of the scanner (``modelreg-pickle/1 fickling/0.1.12``): a newer scanner
    # rescans, an equal one never does.
    scanner: Mapped[str] = mapped_column(String(128))
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VersionSignature(Base):
    """One signature of a version's manifest, as uploaded (an OpenSSF model-signing bundle)."""

    __tablename__ = "version_signatures"

    id: Mapped[uuid_pk]
    version_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    # The signing key's fingerprint (SHA-256 of its public key, hex).
    key_fingerprint: Mapped[str] = mapped_column(String(128), index=True)
    # The signed payload's digest over the manifest, to show and compare without parsing.
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    bundle: Mapped[str] = mapped_column(Text)
    signed_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[created_at]


class TrustedKey(Base):
    """A public key whose signatures count (``signed = true``); a registry setting (admin)."""

    __tablename__ = "trusted_keys"

    id: Mapped[uuid_pk]
    name: Mapped[str] = mapped_column(String(128), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(128), unique=True)
    public_key: Mapped[str] = mapped_column(Text)  # PEM
    added_by: Mapped[str] = mapped_column(String(128), default="")
    added_at: Mapped[created_at]
    # A revoked key stays (old signatures must say *why* they no longer count), never deleted.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str] = mapped_column(String(128), default="")
    revoke_reason: Mapped[str] = mapped_column(String(500), default="")

"""Who may act: principals, their API tokens and grants, and proof of blob possession."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from modelreg.db.base import Base, UTCDateTime, created_at, string_enum, uuid_pk


class PrincipalKind(StrEnum):
    """A person, or a machine (CI, a serving fleet)."""

    USER = "user"
    SERVICE = "service"


class Role(StrEnum):
    """What a principal may do, each role including the ones before it."""

    VIEWER = "viewer"
    CONTRIBUTOR = "contributor"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for viewer … 3 for admin."""
        return list(Role).index(self)


class Principal(Base):
    """A user or service account; authentication is on once one exists."""

    __tablename__ = "principals"

    id: Mapped[uuid_pk]
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[PrincipalKind] = mapped_column(string_enum(PrincipalKind, "principal_kind"))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[created_at]


class ApiToken(Base):
    """An API token: only the SHA-256 of its secret is kept, so the database never holds it."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint("length(secret_hash) = 64", name="hash_hex"),)

    id: Mapped[uuid_pk]
    principal_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("principals.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128), default="")
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[created_at]
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    principal: Mapped[Principal] = relationship(lazy="joined", innerjoin=True)


class Grant(Base):
    """A role for a principal, registry-wide (``model_id`` NULL) or on one model."""

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_principal_id_model_id", "principal_id", "model_id"),)

    id: Mapped[uuid_pk]
    principal_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("principals.id", ondelete="CASCADE")
    )
    model_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("models.id", ondelete="CASCADE")
    )
    role: Mapped[Role] = mapped_column(string_enum(Role, "role"))
    created_at: Mapped[created_at]


class BlobPossession(Base):
    """A principal sent these bytes: proof of possession of blob ``sha256`` (SECURITY.md 13).

    Content-addressed dedup stores a blob once, but a digest is not a credential: a manifest
    may name a stored blob only if its registrant may read a version holding it or has
    uploaded the bytes itself, which this row records. The primary key answers "which of these
    digests did this principal send" in one index range per registration.
    """

    __tablename__ = "blob_possessions"
    __table_args__ = (CheckConstraint("length(sha256) = 64", name="sha256_hex"),)

    principal_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True
    )
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[created_at]


class WebSession(Base):
    """A web UI sign-in: a browser's cookie stands for one API token until it ends.

    Only the SHA-256 of the cookie's secret is kept. A session works while it is unrevoked and
    unexpired, its token works and its principal is enabled, so revoking the token, disabling
    the user or signing out ends it at once, on every server process.
    """

    __tablename__ = "web_sessions"
    __table_args__ = (CheckConstraint("length(secret_hash) = 64", name="hash_hex"),)

    id: Mapped[uuid_pk]
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True
    )
    principal_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("principals.id", ondelete="CASCADE"), index=True
    )
    client: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[created_at]
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    token: Mapped[ApiToken] = relationship(lazy="joined", innerjoin=True)


class AllowedSource(Base):
    """A bucket and prefix outside the registry whose objects may be copied in (admin setting).

    ``modelreg import mlflow`` and the MLflow door read an ``s3://`` source only when it lies
    under one of these (docs/operations.md, "Sources in S3"); removing the row ends that.
    """

    __tablename__ = "allowed_sources"

    id: Mapped[uuid_pk]
    # ``s3://BUCKET`` or ``s3://BUCKET/PREFIX``, normalised (no trailing slash).
    uri: Mapped[str] = mapped_column(String(1100), unique=True)
    added_by: Mapped[str] = mapped_column(String(128), default="")
    added_at: Mapped[created_at]

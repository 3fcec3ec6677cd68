"""The registry's own tables: models, versions and their manifests, aliases and history.

Also the audit log and the tombstones of deleted versions.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    event,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship
from sqlalchemy.orm.util import identity_key

from modelreg.db.base import Base, UTCDateTime, created_at, string_enum, utcnow, uuid_pk
from modelreg.names import Stage


class VersionStatus(StrEnum):
    """A version is ``pending`` while its files arrive, then ``ready`` (or ``failed``)."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class HistoryKind(StrEnum):
    """What moved: a stage or an alias."""

    STAGE = "stage"
    ALIAS = "alias"


class HistoryAction(StrEnum):
    """Why it moved: set directly, promoted through a policy, replaced, or rolled back."""

    MOVE = "move"
    PROMOTE = "promote"
    REPLACED = "replaced"
    ROLLBACK = "rollback"


class Model(Base):
    """A registered model: a name, its metadata and the counter that numbers its versions."""

    __tablename__ = "models"

    id: Mapped[uuid_pk]
    name: Mapped[str] = mapped_column(String(128))
    normalized_name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(128), default="")
    # Version numbers come from this counter, bumped by one atomic UPDATE under the row lock
    # (SECURITY.md rule 8); it only grows, so numbers are never reused.
    last_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    tags: Mapped[list[ModelTag]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="ModelTag.key"
    )
    aliases: Mapped[list[Alias]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="Alias.name"
    )


class ModelTag(Base):
    """A key/value label on a model."""

    __tablename__ = "model_tags"

    model_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Version(Base):
    """One immutable, numbered version of a model."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "number"),
        UniqueConstraint("model_id", "semver"),
        UniqueConstraint("model_id", "idempotency_key"),
        CheckConstraint("number >= 1", name="number_positive"),
        Index("ix_model_versions_model_id_stage", "model_id", "stage"),
        # Searches list newest first, (created_at, id) descending: walking these indexes
        # yields the rows in that order with the keys alone, across all models and within one,
        # so a page stops after its rows instead of sorting every match.
        Index("ix_model_versions_created_at_id", "created_at", "id"),
        Index("ix_model_versions_model_id_created_at_id", "model_id", "created_at", "id"),
        # SECURITY.md rule 9: two concurrent promotions can never both leave a production
        # version behind; the database refuses the second even if the model lock were bypassed.
        Index(
            "ux_model_versions_one_production",
            "model_id",
            unique=True,
            sqlite_where=text("stage = 'production'"),
            postgresql_where=text("stage = 'production'"),
        ),
    )

    id: Mapped[uuid_pk]
    model_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("models.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    semver: Mapped[str | None] = mapped_column(String(128))
    semver_key: Mapped[str | None] = mapped_column(String(160))
    status: Mapped[VersionStatus] = mapped_column(
        string_enum(VersionStatus, "version_status"), default=VersionStatus.READY
    )
    stage: Mapped[Stage] = mapped_column(string_enum(Stage, "stage"), default=Stage.NONE)
    description: Mapped[str] = mapped_column(Text, default="")
    framework: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(256))
    git_repo: Mapped[str | None] = mapped_column(String(1024))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    git_dirty: Mapped[bool | None] = mapped_column(Boolean)
    # Where the files came from, as the registering client named it (e.g. an MLflow
    # ``models:/m-…`` or ``runs:/…`` URI); informational, never dereferenced again.
    source_uri: Mapped[str | None] = mapped_column(String(2048))
    # Set by ``modelreg import``: the version this one was copied from, in its own registry.
    imported_from: Mapped[str | None] = mapped_column(String(2048))
    environment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The model's input/output schema (columns and dtypes), inferred from an input example.
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # How to load the files back (``Registry.load``): ``{name, format, libraries{}, ...}``,
    # written by the flavor that saved a Python object; ``framework`` holds its name.
    flavor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The safety scan's summary over the files (``services.scanning``); see ``BlobScan``.
    scan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(256))
    total_size: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    model: Mapped[Model] = relationship(lazy="joined", innerjoin=True)
    files: Mapped[list[VersionFile]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="VersionFile.path"
    )
    tags: Mapped[list[VersionTag]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="VersionTag.key"
    )
    params: Mapped[list[VersionParam]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="VersionParam.key"
    )
    metrics: Mapped[list[VersionMetric]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="VersionMetric.key"
    )
    datasets: Mapped[list[VersionDataset]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="VersionDataset.position"
    )
    parents: Mapped[list[VersionParent]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="VersionParent.position",
        foreign_keys="VersionParent.version_id",
    )
    aliases: Mapped[list[Alias]] = relationship(order_by="Alias.name", viewonly=True)


class VersionFile(Base):
    """One entry of a version's manifest: a relative path and the digest of its bytes."""

    __tablename__ = "version_files"
    __table_args__ = (
        CheckConstraint("length(sha256) = 64", name="sha256_hex"),
        CheckConstraint("size >= 0", name="size_nonnegative"),
        Index("ix_version_files_sha256", "sha256"),
    )

    version_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))


class VersionTag(Base):
    """A key/value label on a version (mutable through audited actions)."""

    __tablename__ = "version_tags"
    __table_args__ = (Index("ix_version_tags_key", "key"),)

    version_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class VersionParam(Base):
    """A training parameter, immutable once the version is ready."""

    __tablename__ = "version_params"
    __table_args__ = (Index("ix_version_params_key", "key"),)

    version_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class VersionMetric(Base):
    """A metric recorded at registration, immutable once the version is ready."""

    __tablename__ = "version_metrics"
    __table_args__ = (
        Index("ix_version_metrics_key_value", "key", "value"),
        # Covering: a gate or filter probing one version's metric reads the value from the
        # index alone (measured at 1,000,000 versions: the probes dominated filtered search).
        Index("ix_version_metrics_version_id_key_value", "version_id", "key", "value"),
        # A search across models filtering on a metric walks this newest first and reads the
        # page straight off it (`search.versions_query`), instead of probing every version it
        # walks past for its metric.
        Index(
            "ix_version_metrics_key_version_created_at_version_id_value",
            "key",
            "version_created_at",
            "version_id",
            "value",
        ),
    )

    version_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    # A copy of the version's created_at, which never changes: the order searches list
    # versions in, kept next to the metric so an index can hold both. Filled in on insert.
    version_created_at: Mapped[datetime] = mapped_column(UTCDateTime)


@event.listens_for(VersionMetric, "before_insert")
def _copy_version_created_at(_mapper: Any, _connection: Any, metric: VersionMetric) -> None:
    # Whoever writes a metric, and whatever they set, the copy must equal the original. A
    # version registered in this session is at hand; otherwise its row, inserted before its
    # metrics, is read by a subquery in the metric's INSERT (which then goes alone rather
    # than batched with its siblings).
    session = object_session(metric)
    version = (
        session.identity_map.get(identity_key(Version, metric.version_id))
        if session is not None
        else None
    )
    created = version.__dict__.get("created_at") if version is not None else None
    metric.version_created_at = (
        created
        if created is not None
        else select(Version.created_at).where(Version.id == metric.version_id).scalar_subquery()
    )


class VersionDataset(Base):
    """A dataset the version was trained or evaluated on: a name and a version or digest."""

    __tablename__ = "version_datasets"

    version_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    ref: Mapped[str] = mapped_column(String(256))


class VersionParent(Base):
    """A version this one was derived from (fine-tuned from, distilled from, …)."""

    __tablename__ = "version_parents"
    __table_args__ = (Index("ix_version_parents_parent_id", "parent_id"),)

    version_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The name and number are kept as text too, so lineage still reads after a parent is deleted.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    parent_name: Mapped[str] = mapped_column(String(128))
    parent_number: Mapped[int] = mapped_column(Integer)


class Alias(Base):
    """A movable, model-scoped pointer (``champion``) to one version."""

    __tablename__ = "aliases"
    __table_args__ = (Index("ix_aliases_version_id", "version_id"),)

    model_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    updated_by: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    version: Mapped[Version] = relationship(lazy="joined", overlaps="aliases")


class HistoryEntry(Base):
    """One move of a stage or an alias: the answer to "which version held it, when, why"."""

    __tablename__ = "history"
    __table_args__ = (Index("ix_history_model_id_at", "model_id", "at"),)

    id: Mapped[uuid_pk]
    model_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("models.id", ondelete="CASCADE"))
    kind: Mapped[HistoryKind] = mapped_column(string_enum(HistoryKind, "history_kind"))
    key: Mapped[str] = mapped_column(String(64))
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[created_at]
    reason: Mapped[str] = mapped_column(Text, default="")
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Stage entries record one version's move: ``to_version`` is the version, ``key`` its new
    # stage and ``from_stage`` the old one. Alias entries use from/to version.
    from_stage: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[HistoryAction] = mapped_column(
        string_enum(HistoryAction, "history_action"),
        default=HistoryAction.MOVE,
        server_default=HistoryAction.MOVE.value,
    )


class AuditEvent(Base):
    """An append-only, hash-chained record of one mutating action."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_model_id_seq", "model_id", "seq"),
        Index("ix_audit_events_model_key_seq", "model_key", "seq"),
        CheckConstraint("length(hash) = 64", name="hash_hex"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(300))
    # The model's normalised name when the event was written (what the hash has always covered).
    model_key: Mapped[str | None] = mapped_column(String(128))
    # The model the event is about, by id: `audit --model NAME` finds a model's events by it,
    # so a name reused after a rename or delete is a new model that sees none of the old
    # model's events. No foreign key: events outlive their model.
    model_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row that names the chain's last event.

    Appending locks this row, which serialises appends so sequence numbers have no gaps, and
    lets `audit verify` notice events cut off the end of the log.
    """

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class Tombstone(Base):
    """What was deleted, so a name's version numbers are never handed out again."""

    __tablename__ = "tombstones"
    __table_args__ = (Index("ix_tombstones_normalized_name", "normalized_name"),)

    id: Mapped[uuid_pk]
    normalized_name: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128))
    # NULL when the whole model was deleted; then last_version keeps its counter.
    number: Mapped[int | None] = mapped_column(Integer)
    last_version: Mapped[int] = mapped_column(Integer)
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    deleted_by: Mapped[str] = mapped_column(String(128))
    deleted_at: Mapped[created_at]
    reason: Mapped[str] = mapped_column(Text, default="")

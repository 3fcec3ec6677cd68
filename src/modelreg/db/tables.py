"""ORM tables of the metadata store; the schema itself exists only through Alembic migrations."""

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
    Enum,
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

from modelreg.db.base import Base, UTCDateTime, created_at, utcnow, uuid_pk
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


class PromotionState(StrEnum):
    """Where a promotion request stands.

    An approval that completes the count applies the request in the same transaction, so
    "approved" is never a resting state: a request goes from ``pending`` to ``applied``,
    ``refused`` (its gates failed when re-checked) or ``rejected``.
    """

    PENDING = "pending"
    APPLIED = "applied"
    REFUSED = "refused"
    REJECTED = "rejected"


def _enum(cls: type[StrEnum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint: portable, readable in SQL, and a new
    # value is a migration rather than an ALTER TYPE.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


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
        _enum(VersionStatus, "version_status"), default=VersionStatus.READY
    )
    stage: Mapped[Stage] = mapped_column(_enum(Stage, "stage"), default=Stage.NONE)
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
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON)
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
    kind: Mapped[HistoryKind] = mapped_column(_enum(HistoryKind, "history_kind"))
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
        _enum(HistoryAction, "history_action"),
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
    kind: Mapped[PrincipalKind] = mapped_column(_enum(PrincipalKind, "principal_kind"))
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
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
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


class PolicyRule(Base):
    """The rule for moving a version into one target of one model (or of every model).

    ``scope`` is a normalised model name, or ``*`` for the registry-wide default; a model's rule
    for a target replaces the default's rule for that target. ``target`` is a stage, or
    ``@alias`` for a protected alias. A rule may exist before its model does (policy as code).
    """

    __tablename__ = "policy_rules"
    __table_args__ = (UniqueConstraint("scope", "target"),)

    id: Mapped[uuid_pk]
    scope: Mapped[str] = mapped_column(String(128))
    target: Mapped[str] = mapped_column(String(72))
    requires: Mapped[list[str]] = mapped_column(JSON, default=list)
    from_stages: Mapped[list[str]] = mapped_column(JSON, default=list)
    required_tags: Mapped[dict[str, str | None]] = mapped_column(JSON, default=dict)
    approvals: Mapped[int] = mapped_column(Integer, default=0)
    approver_role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.APPROVER)
    # Production only: the stage the replaced production version moves to.
    previous_to: Mapped[str | None] = mapped_column(String(32))
    updated_by: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Promotion(Base):
    """A request to move a version into a stage or protected alias, and its outcome."""

    __tablename__ = "promotions"
    __table_args__ = (
        Index("ix_promotions_state", "state"),
        Index("ix_promotions_model_id", "model_id"),
        CheckConstraint("approvals_required >= 0", name="approvals_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("models.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(72))
    state: Mapped[PromotionState] = mapped_column(_enum(PromotionState, "promotion_state"))
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[created_at]
    reason: Mapped[str] = mapped_column(Text, default="")
    # The holder the requester expected to replace (0: nothing); checked again on apply.
    expect_current: Mapped[int | None] = mapped_column(Integer)
    from_version: Mapped[int | None] = mapped_column(Integer)
    approvals_required: Mapped[int] = mapped_column(Integer, default=0)
    approver_role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.APPROVER)
    failed_criteria: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str] = mapped_column(Text, default="")

    model: Mapped[Model] = relationship(lazy="joined", innerjoin=True)
    votes: Mapped[list[PromotionVote]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="PromotionVote.at"
    )


class PromotionVote(Base):
    """One approver's approval (or rejection) of a request; each approver counts once."""

    __tablename__ = "promotion_votes"

    promotion_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("promotions.id", ondelete="CASCADE"), primary_key=True
    )
    actor: Mapped[str] = mapped_column(String(128), primary_key=True)
    approve: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[created_at]
    reason: Mapped[str] = mapped_column(Text, default="")


# --- The MLflow door's tracking state ----------------------------------------------------------
# MLflow clients log models into experiments and runs before registering them. modelreg keeps
# just enough of that to answer the client and to turn a run or logged model into a version:
# the bytes are content-addressed blobs like every other file, and the tree that names them
# (``mlflow_artifacts``) is the only mutable piece.


class MlflowExperiment(Base):
    """An MLflow experiment (id 0 is MLflow's "Default", created on first use)."""

    __tablename__ = "mlflow_experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(500), unique=True)
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class MlflowRun(Base):
    """An MLflow run: its params, tags and latest metric values, and its artifact tree."""

    __tablename__ = "mlflow_runs"
    __table_args__ = (Index("ix_mlflow_runs_experiment_id", "experiment_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("mlflow_experiments.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(250), default="")
    user_id: Mapped[str] = mapped_column(String(256), default="")
    status: Mapped[str] = mapped_column(String(16), default="RUNNING")
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")
    start_ms: Mapped[int] = mapped_column(BigInteger)
    end_ms: Mapped[int | None] = mapped_column(BigInteger)
    params: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # key -> [value, timestamp ms, step]: the latest value, as ``runs/get`` reports it.
    metrics: Mapped[dict[str, list[Any]]] = mapped_column(JSON, default=dict)
    # Every logged point, for ``metrics/get-history``: key -> [[value, timestamp, step], …].
    history: Mapped[dict[str, list[list[Any]]]] = mapped_column(JSON, default=dict)
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(128), default="")


class MlflowLoggedModel(Base):
    """An MLflow 3 logged model (``m-…``): a named artifact tree, usually from a run."""

    __tablename__ = "mlflow_logged_models"
    __table_args__ = (Index("ix_mlflow_logged_models_source_run_id", "source_run_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("mlflow_experiments.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(500))
    source_run_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default="LOGGED_MODEL_PENDING")
    model_type: Mapped[str] = mapped_column(String(128), default="")
    params: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # [{key, value, timestamp, step, run_id}, …] logged against this model.
    metrics: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class MlflowArtifact(Base):
    """One file of the MLflow artifact tree: a validated relative path naming a stored blob.

    The client picks the path (as MLflow's protocol requires), never where bytes live: the
    path is a key here, the bytes are the blob ``sha256`` in the content-addressed store.
    """

    __tablename__ = "mlflow_artifacts"

    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

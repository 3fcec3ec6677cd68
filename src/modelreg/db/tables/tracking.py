"""ORM tables of the MLflow door's tracking state, on the registry's ``Base.metadata``.

MLflow clients log models into experiments and runs before registering them. modelreg keeps
just enough of that to answer the client and to turn a run or logged model into a version: the
bytes are content-addressed blobs like every other file, and the tree that names them
(``mlflow_artifacts``) is the only mutable piece.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from modelreg.db.base import Base, UTCDateTime, utcnow


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
    # key -> [value, timestamp ms, step]: the latest value, as ``runs/get`` reports it and
    # runs/search filters and orders on (MLflow's own store keeps these apart from the
    # history too). One entry per key, however many points were logged: every point is a row
    # of ``mlflow_metric_history``.
    metrics: Mapped[dict[str, list[Any]]] = mapped_column(JSON, default=dict)
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(128), default="")


class MlflowMetricPoint(Base):
    """One logged point of a run's metric, for ``metrics/get-history``.

    Logging appends rows, so a batch costs its own points, not the run's whole history. ``id``
    grows with every insert: the index ``(run_id, key, id)`` yields a key's history in logging
    order without a sort, and counts a key's points without reading the table.
    """

    __tablename__ = "mlflow_metric_history"
    __table_args__ = (Index("ix_mlflow_metric_history_run_id_key_id", "run_id", "key", "id"),)

    # SQLite numbers rows itself only for an INTEGER PRIMARY KEY; PostgreSQL needs 64 bits.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("mlflow_runs.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(String(250))
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    # NULL is NaN: SQLite stores a NaN as NULL anyway, so both databases keep it one way.
    # Infinities are ordinary floats on both.
    value: Mapped[float | None] = mapped_column(Float)


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

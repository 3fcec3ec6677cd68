"""Deployments: the ``modelreg serve`` processes that follow a model, as they report themselves.

A serve process picks its own ``id`` when it starts and reports (upserts) its row on every
heartbeat: the ref it follows, the version it serves now, its address, its last error. Nothing
else writes here, and no cached answer reads it, so the table is unstamped (heartbeats would
otherwise flush every server's cache every few seconds).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from modelreg.db.base import Base, UTCDateTime, created_at


class Deployment(Base):
    """One serve process following ``ref`` (``models:/NAME/production``, ``NAME@champion``)."""

    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_model_id_heartbeat_at", "model_id", "heartbeat_at"),)

    # Chosen by the serve process (a UUID4) so that its reports are idempotent upserts.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    model_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("models.id", ondelete="CASCADE"))
    ref: Mapped[str] = mapped_column(String(300))
    live_version: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(512), default="")
    hostname: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    loaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[created_at]
    # What else the process reports (flavor, guard, workers, modelreg version): shown, never
    # queried.
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

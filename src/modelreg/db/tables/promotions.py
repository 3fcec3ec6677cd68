"""Promotion policy rules, promotion requests and their approvals."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from modelreg.db.base import Base, UTCDateTime, created_at, string_enum, utcnow, uuid_pk
from modelreg.db.tables.access import Role
from modelreg.db.tables.registry import Model


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
    approver_role: Mapped[Role] = mapped_column(string_enum(Role, "role"), default=Role.APPROVER)
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
    state: Mapped[PromotionState] = mapped_column(string_enum(PromotionState, "promotion_state"))
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[created_at]
    reason: Mapped[str] = mapped_column(Text, default="")
    # The holder the requester expected to replace (0: nothing); checked again on apply.
    expect_current: Mapped[int | None] = mapped_column(Integer)
    from_version: Mapped[int | None] = mapped_column(Integer)
    approvals_required: Mapped[int] = mapped_column(Integer, default=0)
    approver_role: Mapped[Role] = mapped_column(string_enum(Role, "role"), default=Role.APPROVER)
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

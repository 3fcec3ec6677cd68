"""Audit events keyed by model id: a name reused after a rename or delete is a new model.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 04:40:00.000000

Events written before this revision carried only the model's normalised name, so after a
rename and the old name's reuse, ``audit --model NAME`` showed the new model the old model's
events. This adds ``model_id`` and fills it for existing events by replaying the log in
sequence order (the rule, also in docs/lifecycle.md):

- ``registry:model:create`` of name N starts a new model identity under N;
- a ``registry:model:update`` whose ``before`` holds a ``name`` (a rename) moves the identity
  from the old name to the new one;
- ``registry:model:delete`` of N ends the identity under N;
- any other event of N belongs to the identity N holds at that point of the log;
- a policy event of a name no model held then (a rule written before its model) waits for the
  next model created under that name and belongs to it, as the code does from now on
  (``services.models``); other events of a name no model held get no model id;
- at the end, the identity each name holds becomes the id of the model that has that name now,
  and a deleted model's identity a new random id that no model has (nothing finds its events
  by model, as for models deleted from now on).

Events without a model id appear in the registry-wide log only. No hash changes: the chain
covers ``model_key`` (the name at the time), not the id, so old and new events verify alike
before and after this revision.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_EVENTS = sa.table(
    "audit_events",
    sa.column("seq", sa.BigInteger()),
    sa.column("action", sa.String()),
    sa.column("model_key", sa.String()),
    sa.column("before", sa.JSON()),
    sa.column("model_id", sa.Uuid()),
)
_MODELS = sa.table("models", sa.column("id", sa.Uuid()), sa.column("normalized_name", sa.String()))


def _normalize(name: str) -> str:
    # names.normalize_name as of this revision, copied so later changes cannot alter the replay.
    return "/".join(re.sub(r"[-_.]+", "-", part).lower() for part in name.split("/"))


_POLICY = ("registry:policy:set", "registry:policy:delete")
# A rename was ``registry:model:update`` (with ``before.name``) until issue 20 named it
# ``registry:model:rename``; a registry downgraded below this revision and upgraded again holds
# both.
_RENAME = ("registry:model:update", "registry:model:rename")


def _replay(bind: sa.Connection) -> dict[int, Any]:
    """Seq -> model id for every old event that belongs to a model."""
    holder: dict[str, int] = {}  # normalised name -> identity holding it now
    owner: dict[int, int] = {}  # seq -> identity
    waiting: dict[str, list[int]] = {}  # name -> policy events written while no model held it
    identities = 0
    rows = bind.execute(
        sa.select(_EVENTS.c.seq, _EVENTS.c.action, _EVENTS.c.model_key, _EVENTS.c.before)
        .where(_EVENTS.c.model_key.is_not(None))
        .order_by(_EVENTS.c.seq)
        .execution_options(yield_per=5000)
    )
    for seq, action, key, before in rows:
        renamed_from = before.get("name") if isinstance(before, dict) else None
        if action == "registry:model:create":
            identities += 1
            holder[key] = identities
            for early in waiting.pop(key, []):
                owner[early] = identities
        elif action in _RENAME and isinstance(renamed_from, str):
            old = _normalize(renamed_from)
            identity = holder.pop(old, None) if old != key else holder.get(key)
            if identity is None:
                identities += 1
                identity = identities
            holder[key] = identity
        identity = holder.get(key)
        if identity is not None:
            owner[seq] = identity
        elif action in _POLICY:
            waiting.setdefault(key, []).append(seq)
        if action == "registry:model:delete":
            holder.pop(key, None)
    current = dict(bind.execute(sa.select(_MODELS.c.normalized_name, _MODELS.c.id)).all())
    model_of = {identity: current[key] for key, identity in holder.items() if key in current}
    for identity in set(owner.values()) - set(model_of):
        model_of[identity] = uuid.uuid4()
    return {seq: model_of[i] for seq, i in owner.items()}


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch_op:
        batch_op.add_column(sa.Column("model_id", sa.Uuid(), nullable=True))
        batch_op.create_index("ix_audit_events_model_id_seq", ["model_id", "seq"], unique=False)
    bind = op.get_bind()
    owners = _replay(bind)
    if owners:
        bind.execute(
            _EVENTS.update()
            .where(_EVENTS.c.seq == sa.bindparam("s"))
            .values(model_id=sa.bindparam("m")),
            [{"s": seq, "m": model_id} for seq, model_id in owners.items()],
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch_op:
        batch_op.drop_index("ix_audit_events_model_id_seq")
        batch_op.drop_column("model_id")

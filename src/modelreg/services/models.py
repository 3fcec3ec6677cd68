"""Registered models: create, look up, describe, tag, list and delete."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import Model, ModelTag, PolicyRule, Tombstone, Version
from modelreg.errors import AlreadyExists, ModelNotFound
from modelreg.names import (
    MAX_DESCRIPTION,
    normalize_name,
    validate_key,
    validate_model_name,
    validate_text,
)
from modelreg.services import search
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, adopt_policy_events, record
from modelreg.services.pages import Page, paginate


def find_model(session: Session, name: str, *, lock: bool = False) -> Model | None:
    """The model called ``name`` (after normalisation), or ``None``."""
    query = select(Model).where(Model.normalized_name == normalize_name(validate_model_name(name)))
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def not_found(name: str) -> ModelNotFound:
    """The one answer for a model that does not exist, or that the caller may not read."""
    return ModelNotFound(f"no model named {name!r}", detail={"name": name})


def get_model(session: Session, name: str, *, actor: Actor | None, lock: bool = False) -> Model:
    """The model called ``name``, if ``actor`` may see it; raises ``ModelNotFound``.

    A model ``actor`` may not read is answered exactly like one that does not exist (same
    error, same message), so names cannot be probed (SECURITY.md rule 14); a reader who lacks
    a right to write still gets ``PermissionDenied`` from the check that follows. ``actor``
    ``None`` is for lookups after an access check, or of names the caller chose itself.
    """
    model = find_model(session, name, lock=lock)
    if model is None or (actor is not None and not actor.can(Permission.READ, model.id)):
        raise not_found(name)
    return model


def check_tags(tags: dict[str, str] | None, *, kind: str = "tag") -> dict[str, str]:
    """Validate a tag mapping's keys and values."""
    clean: dict[str, str] = {}
    for key, value in (tags or {}).items():
        clean[validate_key(key, kind=kind)] = validate_text(value, kind=f"{kind} {key!r}")
    return clean


def _new_model(
    session: Session, name: str, *, actor: Actor, description: str, tags: dict[str, str]
) -> Model | None:
    """Insert the model unless someone else just did; returns the new row or ``None``."""
    normalized = normalize_name(name)
    # A deleted model's counter lives on in its tombstone, so a re-created model never hands
    # out an old number again.
    previous = session.scalar(
        select(func.max(Tombstone.last_version)).where(Tombstone.normalized_name == normalized)
    )
    now = utcnow()
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": name,
        "normalized_name": normalized,
        "description": description,
        "owner": actor.name,
        "last_version": previous or 0,
        "created_at": now,
        "updated_at": now,
    }
    # INSERT … ON CONFLICT DO NOTHING lets two writers race to create a model on PostgreSQL
    # without one failing its whole transaction.
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table: Any = Model.__table__
    inserted = session.execute(
        insert(table)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["normalized_name"])
        .returning(table.c.id)
    ).scalar_one_or_none()
    if inserted is None:
        return None
    created = session.get(Model, inserted)
    assert created is not None
    for key, value in tags.items():
        session.add(ModelTag(model_id=created.id, key=key, value=value))
    session.flush()
    adopt_policy_events(session, created)
    record(
        session,
        EventTag.MODEL_CREATE,
        actor=actor,
        target=created.name,
        model=created,
        after={"name": created.name, "description": description, "tags": tags},
    )
    return created


def create_model(
    session: Session,
    name: str,
    *,
    actor: Actor,
    description: str = "",
    tags: dict[str, str] | None = None,
) -> Model:
    """Register a new, empty model; raises ``AlreadyExists`` if the name is taken."""
    actor.require(Permission.MODEL_CREATE)
    validate_model_name(name)
    description = validate_text(description, kind="description", limit=MAX_DESCRIPTION)
    clean = check_tags(tags)
    model = _new_model(session, name, actor=actor, description=description, tags=clean)
    if model is None:
        existing = get_model(session, name, actor=None)
        raise AlreadyExists(
            f"a model named {existing.name!r} exists already",
            detail={"name": existing.name},
        )
    return model


def ensure_model(session: Session, name: str, *, actor: Actor, lock: bool = False) -> Model:
    """The model called ``name``, created on the spot if it does not exist yet."""
    model = find_model(session, name, lock=lock)
    if model is not None and actor.can(Permission.READ, model.id):
        return model
    # A model the actor may not see is treated as absent: creating it needs the registry-wide
    # right, which also reads every model (so the answer never tells the two apart).
    actor.require(Permission.MODEL_CREATE)
    if model is not None:
        return model
    validate_model_name(name)
    _new_model(session, name, actor=actor, description="", tags={})
    return get_model(session, name, actor=None, lock=lock)


def update_model(
    session: Session, name: str, *, actor: Actor, description: str, reason: str = ""
) -> Model:
    """Change a model's description (audited)."""
    reason = validate_text(reason, kind="reason")
    model = get_model(session, name, actor=actor, lock=True)
    actor.require(Permission.MODEL_UPDATE, model.id)
    description = validate_text(description, kind="description", limit=MAX_DESCRIPTION)
    before = model.description
    model.description = description
    session.flush()
    record(
        session,
        EventTag.MODEL_DESCRIBE,
        actor=actor,
        target=model.name,
        model=model,
        before={"description": before},
        after={"description": description},
        reason=reason,
    )
    return model


def set_model_tags(
    session: Session,
    name: str,
    *,
    actor: Actor,
    set_tags: dict[str, str] | None = None,
    delete: list[str] | None = None,
) -> Model:
    """Set and/or delete tags on a model in one audited action."""
    model = get_model(session, name, actor=actor, lock=True)
    actor.require(Permission.MODEL_UPDATE, model.id)
    clean = check_tags(set_tags)
    removing = [validate_key(k, kind="tag") for k in (delete or [])]
    current = {t.key: t for t in model.tags}
    before = {k: t.value for k, t in current.items() if k in clean or k in removing}
    for key in removing:
        if key in current:
            session.delete(current.pop(key))
    for key, value in clean.items():
        if key in current:
            current[key].value = value
        else:
            tag = ModelTag(model_id=model.id, key=key, value=value)
            session.add(tag)
            current[key] = tag
    model.updated_at = utcnow()
    session.flush()
    session.expire(model, ["tags"])
    record(
        session,
        EventTag.MODEL_TAG,
        actor=actor,
        target=model.name,
        model=model,
        before={"tags": before},
        after={"tags": clean, "deleted": removing},
    )
    return model


def read_model(session: Session, name: str, *, actor: Actor) -> Model:
    """The model called ``name``, if ``actor`` may read it."""
    return get_model(session, name, actor=actor)


def list_models(
    session: Session,
    *,
    actor: Actor,
    filter: str | None = None,
    page_size: int = 100,
    page_token: str | None = None,
) -> Page[Model]:
    """Models matching ``filter`` (the search language), ordered by name unless it says so."""
    # Only the rows: `serialize.models_to_dicts` reads a page's tags, aliases and versions in
    # one query, where loading them onto each model here built thousands of ORM objects.
    query = select(Model)
    readable = actor.readable_models()
    if readable is not None:
        query = query.where(Model.id.in_(readable))
    query, order = search.apply(
        query, filter, scope="models", default_order=[(Model.normalized_name, False)]
    )
    return paginate(
        session, query, order=order, page_size=page_size, page_token=page_token, context=filter
    )


def delete_model(session: Session, name: str, *, actor: Actor, reason: str = "") -> None:
    """Delete a model and all its versions, leaving a tombstone that keeps its numbers used."""
    reason = validate_text(reason, kind="reason")
    model = get_model(session, name, actor=actor, lock=True)
    actor.require(Permission.MODEL_DELETE, model.id)
    numbers = list(session.scalars(select(Version.number).where(Version.model_id == model.id)))
    session.add(
        Tombstone(
            normalized_name=model.normalized_name,
            name=model.name,
            number=None,
            last_version=model.last_version,
            files=[],
            deleted_by=actor.name,
            reason=reason,
        )
    )
    record(
        session,
        EventTag.MODEL_DELETE,
        actor=actor,
        target=model.name,
        model=model,
        before={"name": model.name, "versions": sorted(numbers)},
        reason=reason,
    )
    session.delete(model)
    session.flush()


def rename_model(session: Session, name: str, new_name: str, *, actor: Actor) -> Model:
    """Give a model a new name (admin only: every ``models:/OLD…`` reference stops working).

    The old name keeps a tombstone holding the model's counter, so ``OLD:3`` can never come
    to mean a different version, and the model's policy rules move with it, so a rename is no
    way around a gate.
    """
    model = get_model(session, name, actor=actor, lock=True)
    actor.require(Permission.ADMIN, model.id)
    validate_model_name(new_name)
    old, normalized = model.name, normalize_name(new_name)
    if normalized != model.normalized_name and find_model(session, new_name) is not None:
        raise AlreadyExists(f"a model named {new_name!r} exists already", detail={"name": new_name})
    if normalized != model.normalized_name:
        if session.scalar(select(PolicyRule.id).where(PolicyRule.scope == normalized).limit(1)):
            raise AlreadyExists(
                f"policy rules exist for {new_name!r}; delete them or rename elsewhere",
                detail={"name": new_name},
            )
        for rule in session.scalars(
            select(PolicyRule).where(PolicyRule.scope == model.normalized_name)
        ):
            rule.scope = normalized
        session.add(
            Tombstone(
                normalized_name=model.normalized_name,
                name=old,
                number=None,
                last_version=model.last_version,
                files=[],
                deleted_by=actor.name,
                reason=f"renamed to {new_name}",
            )
        )
        # A model deleted under the new name numbered versions too; never hand those out again.
        previous = session.scalar(
            select(func.max(Tombstone.last_version)).where(Tombstone.normalized_name == normalized)
        )
        model.last_version = max(model.last_version, previous or 0)
    model.name = new_name
    model.normalized_name = normalized
    model.updated_at = utcnow()
    session.flush()
    record(
        session,
        EventTag.MODEL_RENAME,
        actor=actor,
        target=new_name,
        model=model,
        before={"name": old},
        after={"name": new_name},
    )
    return model

"""Models and versions: register, read, list, search, describe, tag, delete; compare, lineage."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from modelreg.names import Ref
from modelreg.services import compare as comparing
from modelreg.services import lifecycle, models, registration, serialize, versions
from modelreg.services.actor import Actor
from modelreg.services.scanning import records as scan_records
from modelreg.services.usecases import scans
from modelreg.services.usecases._handles import Handles, Page, page


def register(h: Handles, actor: Actor, spec: registration.RegistrationSpec) -> dict[str, Any]:
    """Create the next version from stored blobs, as ``spec`` says."""
    inline = getattr(getattr(h, "settings", None), "scan_inline_bytes", None)
    with h.write() as session:
        version = registration.register_version(
            session,
            h.store,
            spec,
            actor=actor,
            scan_inline_bytes=inline if inline is not None else scan_records.INLINE_BYTES,
        )
        registered, version_id = serialize.version_to_dict(version), version.id
    return scans.after_register(h, registered, version_id)


def create_model(
    h: Handles, actor: Actor, name: str, description: str, tags: Mapping[str, str]
) -> dict[str, Any]:
    """Register an empty model."""
    with h.write() as session:
        model = models.create_model(
            session, name, actor=actor, description=description, tags=dict(tags)
        )
        return serialize.model_to_dict(session, model)


def get_model(h: Handles, actor: Actor, name: str) -> dict[str, Any]:
    """One model."""
    with h.read() as session:
        return serialize.model_to_dict(session, models.read_model(session, name, actor=actor))


def list_models(
    h: Handles, actor: Actor, filter: str | None, page_size: int, page_token: str | None
) -> Page:
    """A page of models matching ``filter``."""
    with h.read() as session:
        found = models.list_models(
            session, actor=actor, filter=filter, page_size=page_size, page_token=page_token
        )
        return page(serialize.models_to_dicts(session, list(found)), found.next_page_token)


def get_version(h: Handles, actor: Actor, ref: Ref | str) -> dict[str, Any]:
    """One version by any reference."""
    with h.read() as session:
        return serialize.version_to_dict(versions.read_version(session, ref, actor=actor))


def version_at(h: Handles, actor: Actor, ref: str, moment: datetime) -> dict[str, Any]:
    """The version a stage or alias reference named at ``moment``."""
    with h.read() as session:
        return serialize.version_to_dict(lifecycle.version_at(session, ref, moment, actor=actor))


def list_versions(
    h: Handles,
    actor: Actor,
    name: str,
    filter: str | None,
    page_size: int,
    page_token: str | None,
) -> Page:
    """A page of one model's versions."""
    with h.read() as session:
        found = versions.list_versions(
            session, name, actor=actor, filter=filter, page_size=page_size, page_token=page_token
        )
        return page(serialize.versions_to_dicts(session, list(found)), found.next_page_token)


def search(
    h: Handles, actor: Actor, query: str | None, page_size: int, page_token: str | None
) -> Page:
    """A page of versions across models."""
    with h.read() as session:
        found = versions.search_versions(
            session, query, actor=actor, page_size=page_size, page_token=page_token
        )
        return page(serialize.versions_to_dicts(session, list(found)), found.next_page_token)


def set_tags(
    h: Handles, actor: Actor, ref: Ref, tags: Mapping[str, str], delete: list[str]
) -> dict[str, Any]:
    """Set and delete the tags of a model (``ref.is_model``) or of a version."""
    with h.write() as session:
        if ref.is_model:
            model = models.set_model_tags(
                session, ref.name, actor=actor, set_tags=dict(tags), delete=delete
            )
            return serialize.model_to_dict(session, model)
        version = versions.set_version_tags(
            session, ref, actor=actor, set_tags=dict(tags), delete=delete
        )
        return serialize.version_to_dict(version)


def set_description(h: Handles, actor: Actor, ref: Ref, description: str) -> dict[str, Any]:
    """Describe a model (``ref.is_model``) or a version."""
    with h.write() as session:
        if ref.is_model:
            model = models.update_model(session, ref.name, actor=actor, description=description)
            return serialize.model_to_dict(session, model)
        version = versions.update_version(session, ref, actor=actor, description=description)
        return serialize.version_to_dict(version)


def delete(h: Handles, actor: Actor, ref: Ref, reason: str) -> dict[str, Any]:
    """Delete a model or one version (numbers are never reused): ``{"deleted": ...}``."""
    with h.write() as session:
        if ref.is_model:
            models.delete_model(session, ref.name, actor=actor, reason=reason)
            return {"deleted": ref.name}
        number = versions.delete_version(session, ref, actor=actor, reason=reason)
        return {"deleted": f"{ref.name}:{number}"}


def compare(h: Handles, actor: Actor, name: str, a: int, b: int) -> dict[str, Any]:
    """Differences between versions ``a`` and ``b``."""
    with h.read() as session:
        return comparing.compare(session, name, a, b, actor=actor)


def lineage(h: Handles, actor: Actor, ref: str) -> dict[str, Any]:
    """The lineage graph around one version."""
    with h.read() as session:
        return comparing.lineage(session, ref, actor=actor)

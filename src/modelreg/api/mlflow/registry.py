"""MLflow's model-registry RPCs under ``/api/2.0/mlflow/``, translated onto the service layer."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from modelreg import errors
from modelreg.api.deps import Registry
from modelreg.api.mlflow._common import (
    STAGE_NAMES,
    ModelAnswer,
    add_route,
    as_list,
    key_values,
    latest_per_stage,
    max_results,
    model_json,
    order_by,
    page_offset,
    page_token,
    required,
    text,
    version_json,
    version_number,
)
from modelreg.db.tables import Model, Promotion, Version, VersionStatus
from modelreg.errors import InvalidInput
from modelreg.names import Stage, validate_key
from modelreg.services import (
    lifecycle,
    mlflow_filter,
    models,
    registration,
    serialize,
    tracking,
    versions,
)
from modelreg.services.actor import Actor, Permission
from modelreg.services.registration import RegistrationSpec
from modelreg.services.usecases.sources import copy_source
from modelreg.services.versions import FileSpec, Lineage

router = APIRouter(prefix="/api/2.0/mlflow", tags=["mlflow"])
_KEY_SPILL = re.compile(r"[^A-Za-z0-9_.:/-]")


# MLflow's order_by fields, for each search.
MODEL_ORDER: dict[str, Any] = {
    "name": Model.normalized_name,
    "timestamp": Model.updated_at,
    "last_updated_timestamp": Model.updated_at,
    "creation_timestamp": Model.created_at,
}
VERSION_ORDER: dict[str, Any] = {
    "name": Model.normalized_name,
    "version_number": Version.number,
    "creation_timestamp": Version.created_at,
    "timestamp": Version.updated_at,
    "last_updated_timestamp": Version.updated_at,
}


def _ordering(p: dict[str, Any], columns: dict[str, Any], what: str) -> list[Any]:
    """``order_by`` as SQL, from the fields ``columns`` allows."""
    order = []
    for field, descending in order_by(p):
        column = columns.get(field)
        if column is None:
            raise InvalidInput(f"cannot order {what} by {field[:100]!r}", detail={})
        order.append(column.desc() if descending else column.asc())
    return order


def _stage(value: Any) -> Stage:
    names = {v.lower(): k for k, v in STAGE_NAMES.items()}
    stage = names.get(str(value).strip().lower()) if isinstance(value, str) else None
    if stage is None:
        raise InvalidInput(
            f"invalid stage {value!r}: one of None, Staging, Production, Archived",
            detail={"stage": value},
        )
    return stage


def model_exists(name: str) -> errors.AlreadyExists:
    """The error for a taken model name, in MLflow's words (clients match on the message)."""
    return errors.AlreadyExists(
        f"Registered Model (name={name}) already exists.", detail={"name": name}
    )


def _model_answer(registry: Registry, actor: Actor, name: str) -> dict[str, Any]:
    return _read_model(registry, actor, name).body


def _read_model(registry: Registry, actor: Actor, name: str) -> ModelAnswer:
    with registry.read() as session:
        model = models.read_model(session, name, actor=actor)
        latest = latest_per_stage(session, [model]).get(model.id, [])
        return ModelAnswer(model.id, {"registered_model": model_json(model, latest)})


def _version_answer(registry: Registry, actor: Actor, name: str, number: int) -> dict[str, Any]:
    with registry.read() as session:
        version = versions.read_version(session, f"{name}:{number}", actor=actor)
        return {"model_version": version_json(version)}


# -- registered models ------------------------------------------------------------------------


def create_registered_model(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``registered-models/create``."""
    name = text(p, "name")
    with registry.write() as session:
        existing = models.find_model(session, name)
        if existing is not None and actor.can(Permission.READ, existing.id):
            # Before the permission check: mlflow.register_model always asks to create the
            # model and goes on only on this answer, also for contributors of just this model.
            raise model_exists(existing.name)
        try:
            model = models.create_model(
                session,
                name,
                actor=actor,
                description=text(p, "description"),
                tags=key_values(p.get("tags"), "tag"),
            )
        except errors.AlreadyExists:
            raise model_exists(name) from None
        return {"registered_model": model_json(model)}


def get_registered_model(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``registered-models/get`` (every mutating MLflow call is preceded by one)."""
    return _read_model(registry, actor, text(p, "name"))


def update_registered_model(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``registered-models/update``: the description."""
    name = text(p, "name")
    if "description" in p:
        with registry.write() as session:
            models.update_model(session, name, actor=actor, description=text(p, "description"))
    return _model_answer(registry, actor, name)


def rename_registered_model(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``registered-models/rename`` (admin only in modelreg)."""
    new_name = text(p, "new_name")
    with registry.write() as session:
        try:
            models.rename_model(session, text(p, "name"), new_name, actor=actor)
        except errors.AlreadyExists:
            taken = models.find_model(session, new_name)
            if taken is None:  # something else of that name (policy rules): modelreg's words
                raise
            raise model_exists(taken.name) from None
    return _model_answer(registry, actor, new_name)


def delete_registered_model(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``registered-models/delete`` (its numbers stay used, as for every modelreg delete)."""
    with registry.write() as session:
        models.delete_model(session, text(p, "name"), actor=actor, reason="deleted via MLflow API")
    return {}


def set_registered_model_tag(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``registered-models/set-tag``."""
    with registry.write() as session:
        models.set_model_tags(
            session,
            text(p, "name"),
            actor=actor,
            set_tags={text(p, "key"): text(p, "value")},
        )
    return {}


def delete_registered_model_tag(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``registered-models/delete-tag``."""
    with registry.write() as session:
        models.set_model_tags(session, text(p, "name"), actor=actor, delete=[text(p, "key")])
    return {}


def search_registered_models(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``registered-models/search``: MLflow's filter on name and tags, paged."""
    limit = max_results(p, 100, 1000)
    offset = page_offset(p.get("page_token"))
    condition = mlflow_filter.models_condition(text(p, "filter") or None)
    order = _ordering(p, MODEL_ORDER, "registered models")
    query = select(Model).options(selectinload(Model.tags), selectinload(Model.aliases))
    with registry.read() as session:
        readable = actor.readable_models()
        if readable is not None:
            query = query.where(Model.id.in_(readable))
        if condition is not None:
            query = query.where(condition)
        query = query.order_by(*order, Model.normalized_name).offset(offset).limit(limit + 1)
        rows = list(session.scalars(query))
        page = rows[:limit]
        latest = latest_per_stage(session, page)
        answer: dict[str, Any] = {
            "registered_models": [model_json(m, latest.get(m.id, [])) for m in page]
        }
    if len(rows) > limit:
        answer["next_page_token"] = page_token(offset + limit)
    return answer


def get_latest_versions(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``registered-models/get-latest-versions``: the newest version in each asked stage."""
    stages = [_stage(s) for s in as_list(p.get("stages"))] or None
    with registry.read() as session:
        model = models.read_model(session, text(p, "name"), actor=actor)
        latest = latest_per_stage(session, [model], stages).get(model.id, [])
        return ModelAnswer(model.id, {"model_versions": [version_json(v) for v in latest]})


def set_alias(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``registered-models/alias`` (POST): through modelreg's policy for protected aliases."""
    number = version_number(p)
    with registry.write() as session:
        result = lifecycle.set_alias(
            session, text(p, "name"), text(p, "alias"), number, actor=actor
        )
        promotion = serialize.promotion_to_dict(result) if isinstance(result, Promotion) else None
    _raise_unless_applied(promotion)
    return {}


def delete_alias(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``registered-models/alias`` (DELETE)."""
    with registry.write() as session:
        lifecycle.delete_alias(session, text(p, "name"), text(p, "alias"), actor=actor)
    return {}


def get_by_alias(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``registered-models/alias`` (GET): the version an alias names."""
    name, alias = text(p, "name"), text(p, "alias")
    with registry.read() as session:
        version = versions.read_version(session, f"{name}@{alias}", actor=actor)
        return ModelAnswer(version.model_id, {"model_version": version_json(version)})


# -- model versions ---------------------------------------------------------------------------


def _spill_keys(values: dict[str, Any]) -> dict[str, Any]:
    """MLflow keys may hold spaces and more; modelreg keys are stricter. Map, never drop."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        clean = _KEY_SPILL.sub("_", key)[:250]
        if clean and not clean[0].isalnum():
            clean = "k" + clean[:249]
        try:
            validate_key(clean)
        except errors.InvalidName:
            continue
        out.setdefault(clean, value)
    return out


def create_model_version(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``model-versions/create``: a new version from artifacts this server holds.

    The source's files become the version's immutable manifest (the same blobs, nothing is
    copied) and its run's params and metrics become the version's, with the source URI and
    run id as lineage.
    """
    name = text(p, "name")
    source_uri = text(p, "source")
    copied = _copied_source(registry, actor, source_uri, name)
    with registry.write() as session:
        source = copied or tracking.sources.resolve_source(
            session, source_uri, actor=actor, model_id=p.get("model_id") or None
        )
        if not source.files:
            raise InvalidInput(
                f"source {source_uri!r} holds no files: log the model's artifacts first",
                detail={"source": source_uri},
            )
        metrics, params = tracking.sources.registration_lineage(source)
        run_id = text(p, "run_id") or (source.run.id if source.run is not None else None)
        if run_id and source.run is not None and run_id != source.run.id:
            raise InvalidInput(
                f"run_id {run_id!r} is not the run that produced {source_uri!r}",
                detail={"run_id": run_id},
            )
        spec = RegistrationSpec(
            name=name,
            files=source.files,
            metrics=_spill_keys(metrics),
            params=_spill_keys(params),
            tags=key_values(p.get("tags"), "tag"),
            description=text(p, "description"),
            lineage=Lineage(run_id=run_id or None, source=source_uri),
            framework=_framework(source),
        )
        version = registration.register_version(
            session,
            registry.store,
            spec,
            actor=actor,
            # resolve_source checked that the actor may read the source, so its files.
            files_readable=True,
            scan_inline_bytes=registry.settings.scan_inline_bytes,
        )
        answer = {"model_version": version_json(version)}
    if registry.scan_worker is not None and (version.scan or {}).get("status") == "pending":
        registry.scan_worker.wake()  # big files: scanned after the answer (docs/safety.md)
    return answer


def _copied_source(
    registry: Registry, actor: Actor, uri: str, model: str
) -> tracking.sources.Source | None:
    """An ``s3://`` source under an allowed source, copied into the store; else ``None``.

    The server reads it with its own credentials, only when an admin allowed the bucket and
    prefix (``services.allowed_sources``); the version holds the copy, never the S3 object.
    """
    if not uri.lower().startswith("s3:"):
        return None
    copied = copy_source(
        registry, actor, uri, max_bytes=registry.settings.max_upload_bytes, model=model
    )
    return tracking.sources.Source(
        [FileSpec(f["path"], f["sha256"], f["size"]) for f in copied["files"]]
    )


def _framework(source: tracking.sources.Source) -> str | None:
    # The logged model's flavor is named in its MLmodel file, which the server must not parse
    # (SECURITY.md rule 3 forbids deserialising model files; MLmodel is YAML). The model file's
    # name is a safe, cheap hint.
    names = {f.path.rsplit("/", 1)[-1] for f in source.files}
    for suffix, framework in ((".skops", "sklearn"), (".onnx", "onnx"), (".pt", "pytorch")):
        if any(n.endswith(suffix) for n in names):
            return framework
    return None


def get_model_version(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``model-versions/get``."""
    name, number = text(p, "name"), version_number(p)
    with registry.read() as session:
        version = versions.read_version(session, f"{name}:{number}", actor=actor)
        return ModelAnswer(version.model_id, {"model_version": version_json(version)})


def update_model_version(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``model-versions/update``: the description."""
    name, number = text(p, "name"), version_number(p)
    if "description" in p:
        with registry.write() as session:
            versions.update_version(
                session, f"{name}:{number}", actor=actor, description=text(p, "description")
            )
    return _version_answer(registry, actor, name, number)


def delete_model_version(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``model-versions/delete`` (the number is never reused)."""
    with registry.write() as session:
        versions.delete_version(
            session,
            f"{text(p, 'name')}:{version_number(p)}",
            actor=actor,
            reason="deleted via MLflow API",
        )
    return {}


def set_model_version_tag(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``model-versions/set-tag``."""
    with registry.write() as session:
        versions.set_version_tags(
            session,
            f"{text(p, 'name')}:{version_number(p)}",
            actor=actor,
            set_tags={text(p, "key"): text(p, "value")},
        )
    return {}


def delete_model_version_tag(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``model-versions/delete-tag``."""
    with registry.write() as session:
        versions.set_version_tags(
            session,
            f"{text(p, 'name')}:{version_number(p)}",
            actor=actor,
            delete=[text(p, "key")],
        )
    return {}


def search_model_versions(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``model-versions/search``: MLflow's filter on name, version, run id, source and tags."""
    limit = max_results(p, 10_000, 200_000)
    offset = page_offset(p.get("page_token"))
    condition = mlflow_filter.versions_condition(text(p, "filter") or None)
    order = _ordering(p, VERSION_ORDER, "model versions")
    query = select(Version).join(Model).where(Version.status == VersionStatus.READY)
    with registry.read() as session:
        readable = actor.readable_models()
        if readable is not None:
            query = query.where(Version.model_id.in_(readable))
        if condition is not None:
            query = query.where(condition)
        query = query.order_by(*order, Model.normalized_name, Version.number.desc())
        rows = list(
            session.scalars(
                query.options(selectinload(Version.tags), selectinload(Version.aliases))
                .offset(offset)
                .limit(limit + 1)
            )
        )
        answer: dict[str, Any] = {"model_versions": [version_json(v) for v in rows[:limit]]}
    if len(rows) > limit:
        answer["next_page_token"] = page_token(offset + limit)
    return answer


def get_download_uri(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``model-versions/get-download-uri``: the version's own, immutable files."""
    name, number = text(p, "name"), version_number(p)
    with registry.read() as session:
        version = versions.read_version(session, f"{name}:{number}", actor=actor)
        path = tracking.tree.version_view_path(version.model.name, version.number)
    return {"artifact_uri": f"mlflow-artifacts:/{path}"}


def _raise_unless_applied(promotion: dict[str, Any] | None) -> None:
    if promotion is None or promotion["state"] == "applied":
        return
    if promotion["state"] == "pending":
        raise errors.awaiting(promotion)
    raise errors.refused(promotion)


def transition_stage(registry: Registry, actor: Actor, p: dict[str, Any]) -> Any:
    """``model-versions/transition-stage``: a modelreg promotion, gates and approvals included.

    A refusal answers with the failed criteria; a move that needs approval is stored as a
    pending request and answered with its id (MLflow's client only accepts 200 as success).
    ``archive_existing_versions`` archives the other versions in the target stage; production
    always replaces its previous holder (the policy's ``previous_to``, archived by default).
    """
    name, number = text(p, "name"), version_number(p)
    stage = _stage(required(p, "stage"))
    archive = p.get("archive_existing_versions") in (True, "true", "True", "1")
    promotion: dict[str, Any] | None = None
    with registry.write() as session:
        result = lifecycle.promote(
            session, name, number, stage.value, actor=actor, reason="transition via MLflow API"
        )
        promotion = serialize.promotion_to_dict(result)
        if promotion["state"] == "applied" and archive and stage is Stage.STAGING:
            others = session.scalars(
                select(Version.number).where(
                    Version.model_id == result.model_id,
                    Version.stage == Stage.STAGING,
                    Version.number != number,
                )
            ).all()
            for other in others:
                archived = lifecycle.promote(
                    session,
                    name,
                    other,
                    Stage.ARCHIVED.value,
                    actor=actor,
                    reason=f"archive_existing_versions: version {number} entered staging",
                )
                if archived.state.value != "applied":
                    # All or nothing: the staging move is undone with this transaction.
                    _raise_unless_applied(serialize.promotion_to_dict(archived))
    _raise_unless_applied(promotion)
    return _version_answer(registry, actor, name, number)


# Reads MLflow's client makes before every change (and to resolve aliases): cached per stamp.
CACHED = {get_registered_model, get_latest_versions, get_by_alias, get_model_version}
ROUTES: list[tuple[str, list[str], Any]] = [
    ("/registered-models/create", ["POST"], create_registered_model),
    ("/registered-models/get", ["GET"], get_registered_model),
    ("/registered-models/update", ["PATCH"], update_registered_model),
    ("/registered-models/rename", ["POST"], rename_registered_model),
    ("/registered-models/delete", ["DELETE"], delete_registered_model),
    ("/registered-models/search", ["GET"], search_registered_models),
    ("/registered-models/set-tag", ["POST"], set_registered_model_tag),
    ("/registered-models/delete-tag", ["DELETE"], delete_registered_model_tag),
    ("/registered-models/get-latest-versions", ["GET", "POST"], get_latest_versions),
    ("/registered-models/alias", ["POST"], set_alias),
    ("/registered-models/alias", ["DELETE"], delete_alias),
    ("/registered-models/alias", ["GET"], get_by_alias),
    ("/model-versions/create", ["POST"], create_model_version),
    ("/model-versions/get", ["GET"], get_model_version),
    ("/model-versions/update", ["PATCH"], update_model_version),
    ("/model-versions/delete", ["DELETE"], delete_model_version),
    ("/model-versions/set-tag", ["POST"], set_model_version_tag),
    ("/model-versions/delete-tag", ["DELETE"], delete_model_version_tag),
    ("/model-versions/search", ["GET"], search_model_versions),
    ("/model-versions/get-download-uri", ["GET"], get_download_uri),
    ("/model-versions/transition-stage", ["POST"], transition_stage),
]
for _path, _methods, _handler in ROUTES:
    add_route(router, _path, _methods, _handler, cached=_handler in CACHED)

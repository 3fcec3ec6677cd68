"""What an MLflow ``source`` URI registers: files this server holds, and their lineage.

SECURITY.md rule 1: a client never makes the server read a location of its choosing, so
``file://``, ``s3://``, ``http(s)://`` and every other scheme are refused, and the accepted
ones (``runs:/``, ``models:/`` and ``mlflow-artifacts:/``) are looked up in modelreg's own
tables. The one exception is an admin's: an ``s3://`` source under a bucket and prefix an
admin allowed is copied in by the door before it gets here (``services.allowed_sources``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.tables.tracking import MlflowArtifact, MlflowLoggedModel, MlflowRun
from modelreg.errors import InvalidInput
from modelreg.names import parse_ref
from modelreg.services.actor import Actor
from modelreg.services.models import get_model
from modelreg.services.tracking._access import MODEL_ID
from modelreg.services.tracking.logged_models import get_logged_model
from modelreg.services.tracking.runs import get_run
from modelreg.services.tracking.tree import (
    clean_tree_path,
    files_under,
    owner_of,
    parse_view,
    tree_files,
)
from modelreg.services.versions import FileSpec, resolve


@dataclass(slots=True)
class Source:
    """What a ``source`` URI resolves to: the files and the lineage a version gets."""

    files: list[FileSpec]
    run: MlflowRun | None = None
    logged_model: MlflowLoggedModel | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


def _bad_source(source: Any, why: str) -> InvalidInput:
    return InvalidInput(
        f"source {source!r} is not allowed: {why}. modelreg registers only artifacts this "
        "server holds: runs:/RUN_ID/PATH, models:/MODEL_ID (a logged model), "
        "models:/NAME/VERSION or mlflow-artifacts:/PATH (or s3://… under a source an admin "
        "allowed with `modelreg sources allow`)",
        detail={"source": source},
    )


def _numeric(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _from_tree(session: Session, prefix: str) -> list[FileSpec]:
    files = [FileSpec(rel, digest, size) for rel, size, digest in tree_files(session, prefix)]
    if not files and prefix:
        # A source may name one file (MLflow registers runs:/RUN/model.pkl as that file).
        row = session.get(MlflowArtifact, prefix)
        if row is not None:
            files = [FileSpec(prefix.rsplit("/", 1)[-1], row.sha256, row.size)]
    return files


def _logged_source(session: Session, model: MlflowLoggedModel) -> Source:
    prefix = f"{model.experiment_id}/models/{model.id}/artifacts"
    run = session.get(MlflowRun, model.source_run_id) if model.source_run_id else None
    return Source(_from_tree(session, prefix), run=run, logged_model=model)


def _models_source(
    session: Session, source: str, body: str, *, actor: Actor, model_id: Any
) -> Source:
    """``models:/m-…`` (a logged model) or ``models:/NAME/VERSION`` (a registered version)."""
    if MODEL_ID.fullmatch(body):
        return _logged_source(session, get_logged_model(session, body, actor=actor))
    if model_id not in (None, "") and body != model_id:
        raise _bad_source(source, "it does not name the given model_id")
    # A registry URI (copy_model_version sends models:/NAME/VERSION).
    ref = parse_ref(body, allow_model=False)
    get_model(session, ref.name, actor=actor)  # unreadable reads as absent
    version = resolve(session, ref)
    return Source(
        [FileSpec(f.path, f.sha256, f.size) for f in version.files],
        metrics={m.key: m.value for m in version.metrics},
        params={p.key: p.value for p in version.params},
    )


def _runs_source(session: Session, body: str, *, actor: Actor) -> Source:
    """``runs:/RUN_ID/PATH``: a file or folder of the run, or the run's logged model PATH."""
    run_id, _, sub = body.partition("/")
    run = get_run(session, run_id, actor=actor)
    sub = clean_tree_path(sub)
    prefix = f"{run.experiment_id}/{run.id}/artifacts" + (f"/{sub}" if sub else "")
    files = _from_tree(session, prefix)
    if not files and sub:
        # MLflow 3 logs models outside the run's folder: runs:/ID/NAME means the run's
        # logged model NAME.
        logged = session.scalars(
            select(MlflowLoggedModel)
            .where(MlflowLoggedModel.source_run_id == run.id, MlflowLoggedModel.name == sub)
            .order_by(MlflowLoggedModel.created_ms.desc())
            .limit(1)
        ).first()
        if logged is not None:
            get_logged_model(session, logged.id, actor=actor)  # the same access check
            return _logged_source(session, logged)
    return Source(files, run=run)


def _tree_source(session: Session, source: str, body: str, *, actor: Actor) -> Source:
    """``mlflow-artifacts:/PATH``: a registered version's files, or a run's or logged model's."""
    if body.startswith("//"):
        # mlflow-artifacts://HOST/… names another server.
        raise _bad_source(source, "it names a host; only this server's paths are allowed")
    clean = clean_tree_path(body, allow_empty=False)
    view = parse_view(clean)
    if view is not None:
        return Source([FileSpec(p, d, s) for p, s, d in files_under(session, clean, actor)])
    # Only one run's or one logged model's artifacts (or a folder inside them): never an
    # experiment's worth of every team's files bundled into one version.
    owner = owner_of(session, clean, actor=actor, write=False)
    parts = clean.split("/")
    depth = 4 if isinstance(owner, MlflowLoggedModel) else 3
    if owner is None or len(parts) < depth or parts[depth - 1] != "artifacts":
        raise _bad_source(source, "it is not inside a run's or logged model's artifacts")
    if isinstance(owner, MlflowLoggedModel):
        if len(parts) == depth:
            return _logged_source(session, owner)
        return Source(_from_tree(session, clean))
    return Source(_from_tree(session, clean), run=owner)


def resolve_source(session: Session, source: Any, *, actor: Actor, model_id: Any = None) -> Source:
    """The files (and run) an MLflow ``source`` names, if it names something this server holds.

    Anything but ``runs:``, ``models:`` and ``mlflow-artifacts:`` is refused (SECURITY.md
    rule 1), as are characters a path may not hold.
    """
    if not isinstance(source, str) or not source or len(source) > 2048:
        raise _bad_source(source, "it is empty or too long")
    if any(ch in source for ch in "\\\x00?#;%") or any(ord(ch) < 32 for ch in source):
        raise _bad_source(source, "it contains a character paths may not hold")
    scheme, sep, rest = source.partition(":")
    if not sep:
        raise _bad_source(source, "it has no scheme")
    scheme = scheme.lower()
    if scheme == "models":
        return _models_source(session, source, rest.lstrip("/"), actor=actor, model_id=model_id)
    if scheme == "runs":
        return _runs_source(session, rest.lstrip("/"), actor=actor)
    if scheme == "mlflow-artifacts":
        return _tree_source(session, source, rest, actor=actor)
    raise _bad_source(source, f"the {scheme}: scheme points outside this registry")


def registration_lineage(source: Source) -> tuple[dict[str, float], dict[str, str]]:
    """The metrics and params a version registered from ``source`` carries.

    The run's latest metric values and params, then the logged model's own (which win).
    """
    metrics = dict(source.metrics)
    params = dict(source.params)
    if source.run is not None:
        params.update(source.run.params or {})
        for key, (value, _t, _s) in (source.run.metrics or {}).items():
            number = _numeric(value)
            if number is not None:
                metrics[key] = number
    if source.logged_model is not None:
        params.update(source.logged_model.params or {})
        for item in source.logged_model.metrics or []:
            number = _numeric(item.get("value"))
            if number is not None:
                metrics[str(item.get("key"))] = number
    return metrics, params

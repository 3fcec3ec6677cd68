"""MLflow experiments: the Default (id 0), made on first use, and the ones clients create."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.tables.tracking import MlflowExperiment
from modelreg.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from modelreg.names import validate_mlflow_key, validate_text
from modelreg.services.actor import Actor, Permission
from modelreg.services.tracking._access import (
    MAX_TAG_VALUE,
    check_tags,
    now_ms,
    require_writer,
)

DEFAULT_EXPERIMENT_ID = 0
DEFAULT_EXPERIMENT_NAME = "Default"
_EXPERIMENT_ID = re.compile(r"^[0-9]{1,9}$")


def ensure_default(session: Session) -> MlflowExperiment:
    """MLflow's "Default" experiment (id 0), made on first use."""
    experiment = session.get(MlflowExperiment, DEFAULT_EXPERIMENT_ID)
    if experiment is None:
        # MLflow clients assume experiment "0" exists; it is made on first use.
        stamp = now_ms()
        experiment = MlflowExperiment(
            id=DEFAULT_EXPERIMENT_ID,
            name=DEFAULT_EXPERIMENT_NAME,
            created_ms=stamp,
            updated_ms=stamp,
            tags={},
        )
        session.add(experiment)
        session.flush()
    return experiment


def experiment_id(value: Any) -> int:
    """An experiment id as MLflow sends it (a string of digits)."""
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not _EXPERIMENT_ID.fullmatch(text):
        raise InvalidInput(f"invalid experiment id {value!r}", detail={"experiment_id": value})
    return int(text)


class Use(StrEnum):
    """What a caller does with an experiment; ``_check_use`` decides who may."""

    READ = "read"
    LOG = "log"  # create a run or logged model in it
    CHANGE = "change"  # tag it (and rename or delete it, should those RPCs come)


def may_see(actor: Actor, experiment: MlflowExperiment) -> bool:
    """Experiments belong to their creator, as runs do (``check_access``).

    Everyone sees the shared Default experiment (id 0); a registry-wide viewer sees every
    experiment; anyone else sees only the experiments it created.
    """
    return (
        experiment.id == DEFAULT_EXPERIMENT_ID
        or actor.can(Permission.READ)
        or (bool(experiment.created_by) and experiment.created_by == actor.name)
    )


def _check_use(actor: Actor, experiment: MlflowExperiment, use: Use) -> None:
    """Refuse ``use`` of ``experiment`` unless ``actor`` may.

    Logging into an experiment is what a run's writer may do: its creator or a registry-wide
    contributor, and anyone who may log at all in the shared Default experiment. Changing an
    experiment is for its creator or an admin; the Default belongs to nobody, so only an admin
    changes it. (Visibility, ``may_see``, is checked before: unseen is absent.)
    """
    owner = bool(experiment.created_by) and experiment.created_by == actor.name
    if use is Use.LOG:
        require_writer(actor)
        if (
            experiment.id == DEFAULT_EXPERIMENT_ID
            or owner
            or actor.can(Permission.VERSION_REGISTER)
        ):
            return
    elif use is Use.CHANGE:
        if actor.can(Permission.ADMIN) or (owner and experiment.id != DEFAULT_EXPERIMENT_ID):
            return
    else:
        return
    raise PermissionDenied(
        f"experiment {experiment.id} belongs to "
        f"{experiment.created_by or 'everyone'}; {actor.name} may not "
        f"{'log into' if use is Use.LOG else 'change'} it",
        detail={"experiment_id": str(experiment.id), "owner": experiment.created_by},
    )


def get_experiment(
    session: Session, value: Any, *, actor: Actor, use: Use = Use.READ
) -> MlflowExperiment:
    """The experiment with id ``value``, for ``use`` by ``actor``.

    Raises ``NotFound`` when there is none or ``actor`` may not see it (the same answer),
    ``PermissionDenied`` when it may see but not ``use`` it.
    """
    number = experiment_id(value)
    if number == DEFAULT_EXPERIMENT_ID:
        experiment: MlflowExperiment | None = ensure_default(session)
    else:
        experiment = session.get(MlflowExperiment, number)
    if experiment is None or not may_see(actor, experiment):
        raise NotFound(f"no experiment with id {number}", detail={"experiment_id": str(number)})
    _check_use(actor, experiment, use)
    return experiment


def get_experiment_by_name(session: Session, name: Any, *, actor: Actor) -> MlflowExperiment:
    """The experiment called ``name``, if ``actor`` may see it (``NotFound`` otherwise)."""
    name = validate_text(
        "" if name is None else name, kind="experiment name", limit=500, blank=False
    )
    if name == DEFAULT_EXPERIMENT_NAME:
        return ensure_default(session)
    experiment = session.scalars(
        select(MlflowExperiment).where(MlflowExperiment.name == name)
    ).one_or_none()
    if experiment is None or not may_see(actor, experiment):
        raise NotFound(f"no experiment named {name!r}", detail={"name": name})
    return experiment


def create_experiment(
    session: Session, name: Any, *, actor: Actor, tags: dict[str, str] | None = None
) -> MlflowExperiment:
    """A new experiment; ``AlreadyExists`` when the name is taken."""
    require_writer(actor)
    name = validate_text(
        "" if name is None else name, kind="experiment name", limit=500, blank=False
    )
    ensure_default(session)
    taken = session.scalar(select(MlflowExperiment.id).where(MlflowExperiment.name == name))
    if taken is not None:
        # MLflow's wording: clients match on it as well as on RESOURCE_ALREADY_EXISTS.
        raise AlreadyExists(f"Experiment(name={name}) already exists.", detail={"name": name})
    stamp = now_ms()
    experiment = MlflowExperiment(
        name=name,
        tags=check_tags(tags or {}),
        created_by=actor.name,
        created_ms=stamp,
        updated_ms=stamp,
    )
    session.add(experiment)
    session.flush()
    return experiment


def search_experiments(
    session: Session, *, actor: Actor, max_results: int = 1000
) -> list[MlflowExperiment]:
    """Active experiments ``actor`` may see (``may_see``), newest first."""
    ensure_default(session)
    query = select(MlflowExperiment).where(MlflowExperiment.lifecycle_stage == "active")
    if not actor.can(Permission.READ):
        query = query.where(
            (MlflowExperiment.id == DEFAULT_EXPERIMENT_ID)
            | (MlflowExperiment.created_by == actor.name)
        )
    return list(
        session.scalars(
            query.order_by(MlflowExperiment.id.desc()).limit(max(1, min(max_results, 50_000)))
        )
    )


def set_experiment_tag(
    session: Session, value: Any, key: Any, tag_value: Any, *, actor: Actor
) -> None:
    """Set one tag on an experiment (its creator or an admin; the Default: an admin)."""
    experiment = get_experiment(session, value, actor=actor, use=Use.CHANGE)
    tags = dict(experiment.tags or {})
    tags[validate_mlflow_key(key, kind="tag key")] = validate_text(
        "" if tag_value is None else tag_value, kind="tag value", limit=MAX_TAG_VALUE
    )
    experiment.tags = tags
    experiment.updated_ms = now_ms()

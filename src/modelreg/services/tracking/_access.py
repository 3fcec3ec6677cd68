"""Who may read and write tracking data, and the limits and id formats every module shares."""

from __future__ import annotations

import re
import time
from typing import Any

from modelreg.errors import PermissionDenied
from modelreg.names import validate_mlflow_key, validate_text
from modelreg.services import artifacts
from modelreg.services.actor import Actor, Permission

MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_BATCH = 1000
RUN_ID = re.compile(r"^[0-9a-f]{32}$")
MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")


def now_ms() -> int:
    """The current time in epoch milliseconds, MLflow's timestamp unit."""
    return int(time.time() * 1000)


def require_writer(actor: Actor) -> None:
    """Logging is the first step of registering: the same contributor right that uploads blobs."""
    artifacts.require_upload(actor)


def check_access(actor: Actor, owner: str, *, write: bool, what: str) -> None:
    """Runs and logged models belong to whoever created them.

    A registry-wide viewer reads, and a registry-wide contributor writes, every team's tracking
    data; a principal whose roles are per model reaches only what it created itself (one
    team's runs are not another's to read, extend or register).
    """
    if write:
        require_writer(actor)
    wide = actor.can(Permission.VERSION_REGISTER if write else Permission.READ)
    if wide or owner == actor.name:
        return
    raise PermissionDenied(
        f"{what} belongs to {owner or 'another user'}; {actor.name} may "
        f"{'change' if write else 'read'} only its own runs and logged models",
        detail={"owner": owner},
    )


def check_tags(tags: dict[str, Any]) -> dict[str, str]:
    """Validated ``key -> value`` tags (a JSON null value is an empty one, as MLflow reads it)."""
    return {
        validate_mlflow_key(k, kind="tag key"): validate_text(
            "" if v is None else v, kind=f"tag {k!r}", limit=MAX_TAG_VALUE
        )
        for k, v in dict(tags).items()
    }


def check_params(params: dict[str, Any]) -> dict[str, str]:
    """Validated ``key -> value`` params; values are kept as their text, as MLflow does."""
    return {
        validate_mlflow_key(k, kind="param key"): validate_text(
            str(v), kind=f"param {k!r}", limit=MAX_PARAM_VALUE
        )
        for k, v in params.items()
    }

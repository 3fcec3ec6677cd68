"""Deployments: the serve processes that report themselves, their heartbeats and their status.

A ``modelreg serve`` process picks a UUID when it starts and reports (``report``) its row
every heartbeat (``HEARTBEAT`` seconds): the ref it follows, the version it serves, its
address, its last error. The first report of an id is audited (``registry:deployment:report``:
the process started), later ones are heartbeats and are not (they would flood the log and the
event stream); ``end`` removes the row and is audited (``registry:deployment:end``).

Who may report: a viewer of the model. A serve process only reads the model, so its token
needs no right to change it; a leaked serving token then cannot register, move or promote
anything. Against spoofing, a row belongs to the principal that created it
(``reported_by``): nobody else may overwrite it, and the heartbeat time is always the
server's clock, never the client's. ``end`` is the reporter's, or a contributor's of the model
(clearing the row of a process that died without ending it).

``status`` is computed from the heartbeat's age when read, never stored: ``live`` within
``STALE_AFTER`` (three heartbeats: one late beat or a slow request is not an outage),
``stale`` after that, ``stopped`` after ``STOPPED_AFTER`` without a heartbeat (the process is
presumed gone: it died or lost the registry without ending). Rows silent for ``PRUNE_AFTER``
are deleted when another deployment of any model starts.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import Deployment, Model
from modelreg.errors import ConcurrentChange, Conflict, InvalidInput, NotFound, PermissionDenied
from modelreg.names import parse_ref
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, record
from modelreg.services.models import get_model
from modelreg.services.pages import Page, paginate

__all__ = [
    "HEARTBEAT",
    "PRUNE_AFTER",
    "STALE_AFTER",
    "STOPPED_AFTER",
    "Report",
    "end",
    "list_deployments",
    "parse_id",
    "report",
    "status_of",
    "to_dict",
]

HEARTBEAT = timedelta(seconds=5)
STALE_AFTER = 3 * HEARTBEAT
STOPPED_AFTER = timedelta(minutes=5)
PRUNE_AFTER = timedelta(days=7)

MAX_ADDRESS = 512
MAX_HOSTNAME = 255
MAX_ERROR = 4000
MAX_INFO = 16 * 1024  # bytes of ``info`` as compact JSON
MAX_INT = 2**31 - 1
EARLIEST, LATEST = 1970, 9999  # the years a report's timestamps may name


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """What a serve process says about itself on each heartbeat (the body of its ``PUT``)."""

    ref: str
    live_version: int | None = None
    address: str = ""
    hostname: str = ""
    pid: int | None = None
    started_at: datetime
    loaded_at: datetime | None = None
    last_error: str = ""
    info: dict[str, Any] | None = None


def parse_id(text: str) -> uuid.UUID:
    """A deployment id (a UUID); raises ``InvalidInput``."""
    try:
        return uuid.UUID(str(text))
    except ValueError:
        raise InvalidInput(
            f"invalid deployment id {str(text)[:80]!r}: a UUID", detail={"id": str(text)[:80]}
        ) from None


def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string", detail={what: repr(value)[:80]})
    if len(value) > limit:
        raise InvalidInput(
            f"{what} is longer than {limit} characters", detail={"length": len(value)}
        )
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise InvalidInput(f"{what} contains a control character", detail={})
    return value


def _count(value: object, what: str, low: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_INT:
        raise InvalidInput(f"{what} must be an integer from {low}", detail={what: value})
    return value


def _instant(value: object, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(
            f"{what} must be a timestamp with a time zone", detail={what: str(value)[:80]}
        )
    try:
        # Stored in UTC: an offset that moves it out of the calendar must fail here, not there.
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc.year <= LATEST:
        raise InvalidInput(
            f"{what} must be between the years {EARLIEST} and {LATEST}",
            detail={what: str(value)[:80]},
        )
    return utc


def _info(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("info must be a JSON object", detail={})
    try:
        size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError, RecursionError):
        raise InvalidInput("info must hold JSON values only", detail={}) from None
    if size > MAX_INFO:
        raise InvalidInput(f"info is larger than {MAX_INFO} bytes as JSON", detail={"bytes": size})
    return value


def _checked(spec: Report) -> Report:
    """``spec`` with every field checked (the same rules behind every door)."""
    started = _instant(spec.started_at, "started_at")
    if started is None:
        raise InvalidInput("started_at is required", detail={})
    return Report(
        ref=spec.ref,
        live_version=_count(spec.live_version, "live_version", 1),
        address=_text(spec.address, "address", MAX_ADDRESS),
        hostname=_text(spec.hostname, "hostname", MAX_HOSTNAME),
        pid=_count(spec.pid, "pid", 0),
        started_at=started,
        loaded_at=_instant(spec.loaded_at, "loaded_at"),
        last_error=_text(spec.last_error, "last_error", MAX_ERROR),
        info=_info(spec.info),
    )


def _owned(actor: Actor, row: Deployment) -> bool:
    return actor.superuser or row.reported_by == actor.name


def report(
    session: Session, deployment_id: str, spec: Report, *, actor: Actor
) -> tuple[Deployment, Model, bool]:
    """Create or refresh a deployment's row: ``(row, its model, whether it was created)``.

    Raises ``InvalidInput`` (a field; the id), ``InvalidReference``, ``ModelNotFound`` (no
    such model, or one ``actor`` may not read), ``PermissionDenied`` (the row is another
    principal's) and ``Conflict`` (the id follows another model).
    """
    key = parse_id(deployment_id)
    clean = _checked(spec)
    ref = parse_ref(clean.ref, allow_model=False)
    model = get_model(session, ref.name, actor=actor)
    now = utcnow()
    row = session.get(Deployment, key, with_for_update=True)
    created = row is None
    if row is None:
        row = _insert(session, key, model, actor, now)
    elif not _owned(actor, row):
        raise PermissionDenied(
            f"deployment {key} is reported by another principal", detail={"id": str(key)}
        )
    elif row.model_id != model.id:
        raise Conflict(
            f"deployment {key} follows another model: a new process takes a new id",
            detail={"id": str(key)},
        )
    if clean.last_error and (created or clean.last_error != row.last_error):
        row.last_error_at = now
    elif not clean.last_error:
        row.last_error_at = None
    row.ref = clean.ref.strip()
    row.live_version = clean.live_version
    row.address = clean.address
    row.hostname = clean.hostname
    row.pid = clean.pid
    row.started_at = clean.started_at
    row.loaded_at = clean.loaded_at
    row.last_error = clean.last_error
    row.info = clean.info or {}
    row.heartbeat_at = now
    if created:
        _prune(session, now)
        record(
            session,
            EventTag.DEPLOYMENT_REPORT,
            actor=actor,
            target=f"deployment:{key}",
            model=model,
            after=_audited(row),
        )
    session.flush()
    return row, model, created


def _insert(
    session: Session, key: uuid.UUID, model: Model, actor: Actor, now: datetime
) -> Deployment:
    """The new row, or ``ConcurrentChange`` when another first report of ``key`` won the race.

    Locking a row that does not exist yet locks nothing, so two first reports of one id (a
    heartbeat racing a swap's report) both insert; the loser gets a clear 409 to retry, which
    then finds the row.
    """
    row = Deployment(
        id=key,
        model_id=model.id,
        reported_by=actor.name,
        created_at=now,
        heartbeat_at=now,
        started_at=now,
        ref="",
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise ConcurrentChange(
            f"deployment {key} was first reported twice at once: report again",
            detail={"id": str(key)},
        ) from None
    return row


def _prune(session: Session, now: datetime) -> None:
    """Forget deployments silent for ``PRUNE_AFTER``: processes long gone without ending."""
    session.execute(delete(Deployment).where(Deployment.heartbeat_at < now - PRUNE_AFTER))


def end(session: Session, deployment_id: str, *, actor: Actor) -> tuple[Deployment, Model]:
    """Remove a deployment's row (its process stopped): what it was, and its model.

    Raises ``NotFound`` (no such id, or one whose model ``actor`` may not read) and
    ``PermissionDenied`` (neither its reporter nor a contributor of its model).
    """
    key = parse_id(deployment_id)
    row = session.get(Deployment, key, with_for_update=True)
    if row is None or not actor.can(Permission.READ, row.model_id):
        raise NotFound(f"no deployment with id {key}", detail={"id": str(key)})
    if not _owned(actor, row):
        actor.require(Permission.MODEL_UPDATE, row.model_id)
    model = session.get_one(Model, row.model_id)
    record(
        session,
        EventTag.DEPLOYMENT_END,
        actor=actor,
        target=f"deployment:{key}",
        model=model,
        before=_audited(row),
    )
    session.delete(row)
    session.flush()
    return row, model


def list_deployments(
    session: Session,
    *,
    actor: Actor,
    name: str | None = None,
    page_size: int = 50,
    page_token: str | None = None,
) -> Page[tuple[Deployment, str]]:
    """Deployments of the models ``actor`` may read (of ``name`` only), newest first.

    Each item is ``(row, model name)``. Raises ``ModelNotFound`` for a ``name`` that does not
    exist or that ``actor`` may not read.
    """
    query = select(Deployment.id)
    if name is not None:
        query = query.where(Deployment.model_id == get_model(session, name, actor=actor).id)
    else:
        readable = actor.readable_models()
        if readable is not None:
            query = query.where(Deployment.model_id.in_(list(readable)))
    order = [(Deployment.created_at, True), (Deployment.id, True)]
    found = paginate(
        session,
        query,
        order=order,
        page_size=page_size,
        page_token=page_token,
        context=f"deployments:{name}",
        load=Deployment,
    )
    ids = {d.model_id for d in found}
    # ``.all()``: a Result has ``keys()``, so ``dict(result)`` would read it as a mapping.
    names = dict(session.execute(select(Model.id, Model.name).where(Model.id.in_(ids))).all())
    return Page([(d, names[d.model_id]) for d in found], found.next_page_token)


def status_of(heartbeat_at: datetime, now: datetime) -> str:
    """``live``, ``stale`` or ``stopped``, from the heartbeat's age at ``now``."""
    age = now - heartbeat_at
    if age <= STALE_AFTER:
        return "live"
    return "stale" if age <= STOPPED_AFTER else "stopped"


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def to_dict(row: Deployment, model: str, now: datetime | None = None) -> dict[str, Any]:
    """A deployment as JSON, with its ``status`` and heartbeat age (seconds) at ``now``."""
    at = now or utcnow()
    return {
        "id": str(row.id),
        "model": model,
        "ref": row.ref,
        "live_version": row.live_version,
        "address": row.address,
        "hostname": row.hostname,
        "pid": row.pid,
        "started_at": _iso(row.started_at),
        "loaded_at": _iso(row.loaded_at),
        "heartbeat_at": _iso(row.heartbeat_at),
        "heartbeat_age": round(max((at - row.heartbeat_at).total_seconds(), 0.0), 3),
        "status": status_of(row.heartbeat_at, at),
        "last_error": row.last_error,
        "last_error_at": _iso(row.last_error_at),
        "reported_by": row.reported_by,
        "created_at": _iso(row.created_at),
        "info": dict(row.info or {}),
    }


def _audited(row: Deployment) -> dict[str, Any]:
    """What the audit log keeps: where the process runs and what it serves (no ``info``)."""
    return {
        "ref": row.ref,
        "live_version": row.live_version,
        "address": row.address,
        "hostname": row.hostname,
        "pid": row.pid,
        "started_at": _iso(row.started_at),
    }

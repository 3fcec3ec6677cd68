"""What routes need: the registry's engine, blob store and settings, and who is asking."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from modelreg.api.access_log import note_actor
from modelreg.api.cache import AnswerCache, StampedCache
from modelreg.api.origin import is_loopback_host
from modelreg.api.uploads import UploadGate
from modelreg.config import Settings
from modelreg.db.base import utcnow
from modelreg.db.session import transaction
from modelreg.db.stamp import SqliteStampReader
from modelreg.db.stamp import current as stamp_of
from modelreg.errors import InvalidInput, Unauthenticated
from modelreg.names import MAX_VERSION
from modelreg.services import auth
from modelreg.services.actor import Actor
from modelreg.storage import BlobStore


@dataclass
class Registry:
    """The server's handles on one registry; every request opens its own transaction."""

    settings: Settings
    engine: Engine
    store: BlobStore
    owner: str
    # What this process remembers while the change stamp stands still (``api.cache``): the
    # answers it served, and who each ``Authorization`` header it saw authenticated as.
    answers: AnswerCache = field(default_factory=AnswerCache)
    actors: StampedCache = field(default_factory=StampedCache)
    # The stamp read on the event loop, without the pool; ``None`` unless a SQLite file.
    sqlite_stamp: SqliteStampReader | None = field(init=False)
    # Uploads running per principal in this process (``api.uploads``).
    uploads: UploadGate = field(init=False)
    # Finishes pending scans (``services.scanning.worker``) while the app runs.
    scan_worker: Any = None

    def __post_init__(self) -> None:
        self.sqlite_stamp = SqliteStampReader.for_engine(self.engine)
        self.uploads = UploadGate(self.settings.max_uploads_per_principal)

    def read(self) -> contextlib.AbstractContextManager[Session]:
        """A read-only transaction."""
        return transaction(self.engine, write=False)

    def write(self) -> contextlib.AbstractContextManager[Session]:
        """A write transaction (takes SQLite's write lock up front)."""
        return transaction(self.engine, write=True)


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


# The MLflow door: its client sends credentials as HTTP Basic, so only these paths take it.
MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/api/3.0/mlflow", "/api/2.0/mlflow-artifacts")

# What a 401 on the MLflow door tells its callers: MLflow's client reads these variables.
MLFLOW_CREDENTIALS_HINT = (
    "set MLFLOW_TRACKING_TOKEN to a modelreg token, or MLFLOW_TRACKING_USERNAME (any name) and "
    "MLFLOW_TRACKING_PASSWORD (the token)"
)


def client_is_loopback(host: str | None) -> bool:
    """Whether a request's peer address is this machine (laptop mode answers only those)."""
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_local(client: str | None, host: str, settings: Settings) -> bool:
    """Whether a request may act as the owner of a registry without users (laptop mode).

    It must come from this machine (peer address) and name the server by a loopback name
    (``Host``) or an allowed host: a web page can point any other name at 127.0.0.1 (DNS
    rebinding, SECURITY.md rule 15). ``api.origin.HostAndOrigin`` refuses such requests
    first; this keeps authentication itself from trusting them.
    """
    if not client_is_loopback(client):
        return False
    if settings.allowed_hosts:
        return True  # HostAndOrigin has let only allowed names through
    return is_loopback_host(host)


def basic_outside_door(header: str, path: str) -> bool:
    """Whether ``header`` holds Basic credentials sent to a path other than the MLflow door.

    ``/api/v1`` takes Bearer tokens only: browsers remember Basic credentials and send them
    on their own, MLflow's client needs them, and nothing else does.
    """
    return header[:6].lower() == "basic " and not path.startswith(MLFLOW_PREFIXES)


def check_scheme(header: str, path: str) -> None:
    """Raise ``Unauthenticated`` for Basic credentials outside the MLflow door."""
    if basic_outside_door(header, path):
        raise Unauthenticated(
            "HTTP Basic credentials are accepted only by the MLflow door (/api/2.0/mlflow…); "
            "send the token as `Authorization: Bearer TOKEN`",
            detail={},
        )


def _actor(request: Request) -> Actor:
    """Authenticate the request: deny by default, every route under /api depends on this.

    A registry without users answers local requests only (laptop mode, ``is_local``): they
    are processes of this machine's users and act as the registry's owner, as in embedded
    mode. Once a user exists, every request needs a valid token: ``Bearer``, or ``Basic``
    with the token as password on the MLflow door.
    """
    registry: Registry = request.app.state.registry
    client = request.client.host if request.client else None
    header = request.headers.get("authorization", "")
    check_scheme(header, request.url.path)
    loopback = is_local(client, request.headers.get("host", ""), registry.settings)
    key = actor_key(header, loopback)
    with registry.read() as session:
        stamp = stamp_of(session)
        request.state.stamp = stamp
        known = cached_actor(registry, key, stamp, client)
        if known is not None:
            note_actor(request.scope, known.name)
            return known
        door = request.url.path.startswith(MLFLOW_PREFIXES)
        actor = _authenticate(session, registry, header, loopback, client, door)
    # Creating a user, granting, revoking: each writes, so each moves the stamp.
    registry.actors.put(key, stamp, actor)
    note_actor(request.scope, actor.name)
    return actor


def actor_key(header: str, loopback: bool) -> tuple[str, str, bool]:
    """The cache key of the actor an ``Authorization`` header authenticates as.

    Keyed by a digest, so no token secret is kept in memory longer than the request.
    """
    return ("actor", hashlib.sha256(header.encode()).hexdigest(), loopback)


def cached_actor(
    registry: Registry, key: tuple[str, str, bool], stamp: int, client: str | None
) -> Actor | None:
    """The actor cached under ``key`` while ``stamp`` stands, unless its token has expired."""
    known: Actor | None = registry.actors.get(key, stamp)
    if known is None or (known.expires_at is not None and utcnow() >= known.expires_at):
        return None
    return known if known.superuser else replace(known, source=f"api:{client}")


def _authenticate(
    session: Session,
    registry: Registry,
    header: str,
    loopback: bool,
    client: str | None,
    mlflow: bool = False,
) -> Actor:
    if not auth.has_principals(session):
        if not loopback:
            raise Unauthenticated(
                "this registry has no users yet, so it only answers clients on this machine "
                "that address it by a loopback name (localhost, 127.0.0.1, [::1])",
                detail={},
            )
        return Actor(registry.owner, source="api", superuser=True)
    scheme, _, token = header.partition(" ")
    secret = token.strip() if scheme.lower() == "bearer" else None
    if scheme.lower() == "basic":
        # MLflow clients send MLFLOW_TRACKING_USERNAME/PASSWORD as Basic auth; the password
        # is a modelreg token and the user name is ignored (the token names its user).
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            decoded = ""
        secret = decoded.partition(":")[2] or None
    if mlflow:
        return auth.authenticate(
            session, secret, source=f"api:{client}", hint=MLFLOW_CREDENTIALS_HINT
        )
    return auth.authenticate(session, secret, source=f"api:{client}")


_ENTITY_TAG = re.compile(r'^(?:"(none|[0-9]{1,10})"|(none|[0-9]{1,10}))$', re.IGNORECASE)


def _if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=32,
            description='the version that must hold the target now: "3", or "none" ("0")',
        ),
    ] = None,
) -> int | None:
    """The ``If-Match`` header as an expected holder (``0``: nothing holds it)."""
    if if_match is None:
        return None
    match = _ENTITY_TAG.fullmatch(if_match.strip())
    value = None if match is None else (match[1] or match[2]).lower()
    number = None if value is None else 0 if value == "none" else int(value)
    if number is None or number > MAX_VERSION:
        raise InvalidInput(
            'If-Match takes a version number or "none", e.g. If-Match: "3"',
            detail={"if_match": if_match},
        )
    return number


def expect_current(given: int | None, if_match: int | None) -> int | None:
    """The expected holder from a body or query value and/or ``If-Match``; they must agree."""
    if given is not None and if_match is not None and given != if_match:
        raise InvalidInput(
            f"If-Match says {if_match} but expect_current says {given}",
            detail={"if_match": if_match, "expect_current": given},
        )
    return given if given is not None else if_match


RegistryDep = Annotated[Registry, Depends(_registry)]
ActorDep = Annotated[Actor, Depends(_actor)]
IfMatchDep = Annotated[int | None, Depends(_if_match)]

"""Identity: users and service accounts, API tokens (shown once, stored hashed), role grants."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import ApiToken, Grant, Principal, PrincipalKind, Role
from modelreg.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    InvalidName,
    NotFound,
    Unauthenticated,
)
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, record
from modelreg.services.models import get_model

TOKEN_PREFIX = "mr_"  # noqa: S105 (a marker that makes leaked tokens greppable)
_PRINCIPAL_RE = re.compile(r"[a-z0-9][a-z0-9._@-]{0,127}")
MAX_TOKEN_DAYS = 3650


def _hash(secret: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough: no dictionary to attack.
    return hashlib.sha256(secret.encode()).hexdigest()


def check_principal_name(name: str) -> str:
    """A principal name: lower-case letters, digits and ``._@-``, up to 128 characters."""
    if not isinstance(name, str) or not _PRINCIPAL_RE.fullmatch(name):
        raise InvalidName(
            f"invalid user name {name!r}: lower-case letters, digits, '.', '_', '@', '-'",
            detail={"name": name},
        )
    return name


def has_principals(session: Session) -> bool:
    """Whether authentication is on (some user or service account exists)."""
    return bool(session.scalar(select(exists().where(Principal.id.is_not(None)))))


def count_principals(session: Session) -> int:
    """How many users and service accounts exist (disabled ones included)."""
    return session.scalar(select(func.count()).select_from(Principal)) or 0


def role_holders(
    session: Session, names: Iterable[str], role: Role, model_id: uuid.UUID
) -> set[str]:
    """Which of ``names`` hold ``role`` (or a stronger one) on ``model_id`` or registry-wide now.

    A disabled principal holds no role. A name that is no principal is the registry owner
    acting locally (embedded, or a server with no users answering loopback): a superuser, who
    holds every role.
    """
    wanted = set(names)
    if not wanted:
        return set()
    principals = list(session.scalars(select(Principal).where(Principal.name.in_(wanted))))
    held = wanted - {p.name for p in principals}
    enabled = {p.id: p.name for p in principals if not p.disabled}
    if enabled:
        grants = session.scalars(
            select(Grant).where(
                Grant.principal_id.in_(list(enabled)),
                or_(Grant.model_id.is_(None), Grant.model_id == model_id),
            )
        )
        held |= {enabled[g.principal_id] for g in grants if g.role.rank >= role.rank}
    return held


def get_principal(session: Session, name: str) -> Principal:
    """The principal called ``name``; raises ``NotFound``."""
    principal = session.scalars(select(Principal).where(Principal.name == name)).one_or_none()
    if principal is None:
        raise NotFound(f"no user or service account named {name!r}", detail={"name": name})
    return principal


def create_principal(
    session: Session,
    name: str,
    *,
    actor: Actor,
    kind: PrincipalKind = PrincipalKind.USER,
    role: Role | None = None,
    model: str | None = None,
) -> Principal:
    """Create a user or service account, optionally granting it a first role."""
    actor.require(Permission.ADMIN)
    check_principal_name(name)
    if session.scalars(select(Principal.id).where(Principal.name == name)).first() is not None:
        raise AlreadyExists(f"a user named {name!r} exists already", detail={"name": name})
    principal = Principal(name=name, kind=kind)
    session.add(principal)
    session.flush()
    record(
        session,
        EventTag.USER_CREATE,
        actor=actor,
        target=f"principal:{name}",
        after={"name": name, "kind": kind.value},
    )
    if role is not None:
        grant_role(session, name, role, actor=actor, model=model)
    return principal


def grant_role(
    session: Session, name: str, role: Role, *, actor: Actor, model: str | None = None
) -> Grant:
    """Give ``name`` the ``role`` registry-wide or on ``model``, replacing a previous one there."""
    actor.require(Permission.ADMIN)
    principal = get_principal(session, name)
    target = get_model(session, model, actor=actor) if model is not None else None
    model_id = target.id if target is not None else None
    previous = session.scalars(
        select(Grant).where(
            Grant.principal_id == principal.id,
            Grant.model_id.is_(None) if model_id is None else Grant.model_id == model_id,
        )
    ).all()
    before = [g.role.value for g in previous]
    for grant in previous:
        session.delete(grant)
    grant = Grant(principal_id=principal.id, model_id=model_id, role=role)
    session.add(grant)
    session.flush()
    record(
        session,
        EventTag.ROLE_GRANT,
        actor=actor,
        target=f"principal:{name}",
        model=target,
        before={"roles": before},
        after={"role": role.value, "model": target.name if target is not None else None},
    )
    return grant


def revoke_role(
    session: Session, name: str, role: Role, *, actor: Actor, model: str | None = None
) -> Principal:
    """Take ``role`` on ``model`` (registry-wide when ``None``) away from ``name``.

    The principal's requests are checked against its remaining grants from the next request
    on (the audit event moves the registry's change stamp, which every cached actor is
    keyed by).

    Raises:
        NotFound: ``name`` does not hold exactly that role there.
        Conflict: it is the registry-wide admin role of the last enabled admin.
    """
    actor.require(Permission.ADMIN)
    principal = get_principal(session, name)
    target = get_model(session, model, actor=actor) if model is not None else None
    model_id = target.id if target is not None else None
    scope = f"on {target.name}" if target is not None else "registry-wide"
    held = session.scalars(
        select(Grant).where(
            Grant.principal_id == principal.id,
            Grant.model_id.is_(None) if model_id is None else Grant.model_id == model_id,
        )
    ).all()
    grant = next((g for g in held if g.role == role), None)
    if grant is None:
        raise NotFound(
            f"{name} holds no {role.value} role {scope}",
            detail={
                "principal": name,
                "role": role.value,
                "model": target.name if target is not None else None,
                "held": sorted(g.role.value for g in held),
            },
        )
    if role == Role.ADMIN and model_id is None and not principal.disabled:
        _keep_an_admin(session, principal, f"taking the admin role from {name}")
    session.delete(grant)
    session.flush()
    record(
        session,
        EventTag.ROLE_REVOKE,
        actor=actor,
        target=f"principal:{name}",
        model=target,
        before={"role": role.value, "model": target.name if target is not None else None},
    )
    return principal


def set_disabled(session: Session, name: str, *, actor: Actor, disabled: bool) -> Principal:
    """Disable (or enable again) a user or service account; its history stays.

    A disabled principal's tokens are refused from the next request on (the audit event moves
    the change stamp that cached actors are keyed by); enabling it makes its unrevoked,
    unexpired tokens work again. Doing what is already so records nothing.

    Raises:
        Conflict: an admin disabling itself, or disabling the last enabled admin.
    """
    actor.require(Permission.ADMIN)
    principal = get_principal(session, name)
    if principal.disabled == disabled:
        return principal
    if disabled:
        if actor.principal_id is not None and actor.principal_id == principal.id:
            raise Conflict("you cannot disable yourself; ask another admin", detail={"name": name})
        if _is_admin(session, principal):
            _keep_an_admin(session, principal, f"disabling {name}")
    principal.disabled = disabled
    session.flush()
    record(
        session,
        EventTag.USER_DISABLE if disabled else EventTag.USER_ENABLE,
        actor=actor,
        target=f"principal:{name}",
        before={"disabled": not disabled},
        after={"disabled": disabled},
    )
    return principal


def _is_admin(session: Session, principal: Principal) -> bool:
    return (
        session.scalar(
            select(Grant.id).where(
                Grant.principal_id == principal.id,
                Grant.model_id.is_(None),
                Grant.role == Role.ADMIN,
            )
        )
        is not None
    )


def _keep_an_admin(session: Session, principal: Principal, doing: str) -> None:
    # Locks the other admins' rows, so two admins disabling each other at once cannot both
    # succeed on PostgreSQL (SQLite serialises write transactions anyway).
    others = session.scalars(
        select(Principal.id)
        .join(Grant, Grant.principal_id == Principal.id)
        .where(
            Grant.model_id.is_(None),
            Grant.role == Role.ADMIN,
            Principal.disabled.is_(False),
            Principal.id != principal.id,
        )
        .with_for_update(of=Principal)
    ).all()
    if not others:
        raise Conflict(
            f"{doing} would leave no enabled admin; make another user admin first",
            detail={"name": principal.name},
        )


def create_token(
    session: Session,
    name: str,
    *,
    actor: Actor,
    label: str = "",
    expires_days: int | None = None,
) -> tuple[ApiToken, str]:
    """Issue a token for ``name``; returns the row and the secret, which is never stored."""
    actor.require(Permission.ADMIN)
    principal = get_principal(session, name)
    if expires_days is not None and not 1 <= expires_days <= MAX_TOKEN_DAYS:
        raise InvalidInput(
            f"--expires takes 1 to {MAX_TOKEN_DAYS} days", detail={"expires": expires_days}
        )
    if len(label) > 128:
        raise InvalidInput("a token name has at most 128 characters", detail={})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        principal_id=principal.id,
        name=label,
        secret_hash=_hash(secret),
        expires_at=utcnow() + timedelta(days=expires_days) if expires_days else None,
    )
    session.add(token)
    session.flush()
    record(
        session,
        EventTag.TOKEN_CREATE,
        actor=actor,
        target=f"token:{token.id}",
        after={"principal": name, "name": label, "expires_at": str(token.expires_at)},
    )
    return token, secret


def revoke_token(session: Session, token_id: str, *, actor: Actor) -> ApiToken:
    """Revoke a token by id; it stops working at once."""
    actor.require(Permission.ADMIN)
    try:
        key = uuid.UUID(str(token_id))
    except ValueError:
        raise InvalidInput(f"invalid token id {token_id!r}", detail={}) from None
    token = session.get(ApiToken, key)
    if token is None:
        raise NotFound(f"no token with id {token_id}", detail={"id": str(token_id)})
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
        record(
            session,
            EventTag.TOKEN_REVOKE,
            actor=actor,
            target=f"token:{token.id}",
            after={"principal": token.principal.name},
        )
    return token


def list_principals(session: Session, *, actor: Actor) -> list[tuple[Principal, list[Grant]]]:
    """Every principal with its grants."""
    actor.require(Permission.ADMIN)
    principals = list(session.scalars(select(Principal).order_by(Principal.name)))
    grants = list(session.scalars(select(Grant)))
    return [(p, [g for g in grants if g.principal_id == p.id]) for p in principals]


def grants_of(session: Session, principal: Principal) -> list[Grant]:
    """The grants ``principal`` holds now."""
    return list(session.scalars(select(Grant).where(Grant.principal_id == principal.id)))


def list_tokens(session: Session, *, actor: Actor, name: str | None = None) -> list[ApiToken]:
    """Tokens (never their secrets), optionally of one principal."""
    actor.require(Permission.ADMIN)
    query = select(ApiToken).order_by(ApiToken.created_at)
    if name is not None:
        query = query.where(ApiToken.principal_id == get_principal(session, name).id)
    return list(session.scalars(query))


CREDENTIALS_HINT = "Authorization: Bearer TOKEN; MODELREG_TOKEN for the CLI and modelreg.Registry"


def authenticate(
    session: Session, secret: str | None, *, source: str, hint: str = CREDENTIALS_HINT
) -> Actor:
    """The actor a bearer token stands for; raises ``Unauthenticated`` for any bad token.

    Missing, unknown (forged), expired and revoked tokens and disabled principals all get the
    same answer, so a caller learns nothing about which tokens exist. ``hint`` says how the
    caller's kind of client sends a token (each door names its own variables).
    """
    refusal = Unauthenticated(f"a valid API token is required ({hint})", detail={})
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise refusal
    token = session.scalars(
        select(ApiToken).where(ApiToken.secret_hash == _hash(secret))
    ).one_or_none()
    if token is None or not token_works(token):
        raise refusal
    return actor_for(session, token, source=source)


def token_works(token: ApiToken) -> bool:
    """Whether ``token`` still authenticates: unrevoked, unexpired, its principal enabled."""
    return not (
        token.revoked_at is not None
        or (token.expires_at is not None and token.expires_at <= utcnow())
        or token.principal.disabled
    )


def actor_for(
    session: Session, token: ApiToken, *, source: str, expires_at: datetime | None = None
) -> Actor:
    """The actor ``token`` stands for, with its roles.

    ``expires_at`` is when it stops, if sooner than the token (a web session).
    """
    grants = session.scalars(select(Grant).where(Grant.principal_id == token.principal_id))
    roles: dict[uuid.UUID | None, Role] = {}
    for grant in grants:
        current = roles.get(grant.model_id)
        if current is None or grant.role.rank > current.rank:
            roles[grant.model_id] = grant.role
    return Actor(
        token.principal.name,
        source=source,
        superuser=False,
        principal_id=token.principal_id,
        token_id=token.id,
        grants=roles,
        expires_at=expires_at or token.expires_at,
    )


def principal_to_dict(principal: Principal, grants: list[Grant]) -> dict[str, object]:
    """A principal and its roles (model names resolved), as JSON."""
    return {
        "name": principal.name,
        "kind": principal.kind.value,
        "disabled": principal.disabled,
        "created_at": principal.created_at.isoformat().replace("+00:00", "Z"),
        "roles": [
            {"role": g.role.value, "model": _model_name(g)} for g in sorted(grants, key=_grant_key)
        ],
    }


def _grant_key(grant: Grant) -> tuple[int, str]:
    return (grant.model_id is not None, str(grant.model_id or ""))


def _model_name(grant: Grant) -> str | None:
    if grant.model_id is None:
        return None
    from modelreg.db.tables import Model

    session = Session.object_session(grant)
    model = session.get(Model, grant.model_id) if session is not None else None
    return model.name if model is not None else None


def token_to_dict(token: ApiToken, secret: str | None = None) -> dict[str, object]:
    """A token's metadata as JSON; ``secret`` only when it was just issued."""
    data: dict[str, object] = {
        "id": str(token.id),
        "principal": token.principal.name,
        "name": token.name,
        "created_at": token.created_at.isoformat().replace("+00:00", "Z"),
        "expires_at": token.expires_at.isoformat().replace("+00:00", "Z")
        if token.expires_at
        else None,
        "revoked": token.revoked_at is not None,
    }
    if secret is not None:
        data["token"] = secret
    return data

"""Users, service accounts, grants and tokens; the audit log; garbage collection."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from modelreg.db.tables import PrincipalKind, Role
from modelreg.services import audit, auth, gc, models
from modelreg.services.actor import Actor
from modelreg.services.usecases._handles import Handles


def _principal(session: Session, name: str) -> dict[str, Any]:
    principal = auth.get_principal(session, name)
    return dict(auth.principal_to_dict(principal, auth.grants_of(session, principal)))


def create_principal(
    h: Handles,
    actor: Actor,
    name: str,
    kind: PrincipalKind,
    role: Role | None,
    model: str | None,
) -> dict[str, Any]:
    """Create a user or service account, optionally with a first role: the principal."""
    with h.write() as session:
        principal = auth.create_principal(
            session, name, actor=actor, kind=kind, role=role, model=model
        )
        return _principal(session, principal.name)


def list_principals(h: Handles, actor: Actor) -> list[dict[str, Any]]:
    """Every principal with its roles."""
    with h.read() as session:
        rows = auth.list_principals(session, actor=actor)
        return [dict(auth.principal_to_dict(p, g)) for p, g in rows]


def grant(h: Handles, actor: Actor, name: str, role: Role, model: str | None) -> dict[str, Any]:
    """Give a principal a role (registry-wide, or on ``model``): the principal."""
    with h.write() as session:
        auth.grant_role(session, name, role, actor=actor, model=model)
        return _principal(session, name)


def revoke(h: Handles, actor: Actor, name: str, role: Role, model: str | None) -> dict[str, Any]:
    """Take a role away from a principal: the principal."""
    with h.write() as session:
        principal = auth.revoke_role(session, name, role, actor=actor, model=model)
        return dict(auth.principal_to_dict(principal, auth.grants_of(session, principal)))


def set_disabled(h: Handles, actor: Actor, name: str, disabled: bool) -> dict[str, Any]:
    """Disable or enable a principal: the principal."""
    with h.write() as session:
        principal = auth.set_disabled(session, name, actor=actor, disabled=disabled)
        return dict(auth.principal_to_dict(principal, auth.grants_of(session, principal)))


def create_token(
    h: Handles, actor: Actor, name: str, label: str, expires_days: int | None
) -> dict[str, Any]:
    """Issue a token: its metadata and, only in this answer, its secret (``token``)."""
    with h.write() as session:
        token, secret = auth.create_token(
            session, name, actor=actor, label=label, expires_days=expires_days
        )
        return dict(auth.token_to_dict(token, secret))


def list_tokens(h: Handles, actor: Actor, name: str | None) -> list[dict[str, Any]]:
    """Tokens, never their secrets, optionally of one principal."""
    with h.read() as session:
        return [
            dict(auth.token_to_dict(t)) for t in auth.list_tokens(session, actor=actor, name=name)
        ]


def revoke_token(h: Handles, actor: Actor, token_id: str) -> dict[str, Any]:
    """Revoke a token: its metadata."""
    with h.write() as session:
        return dict(auth.token_to_dict(auth.revoke_token(session, token_id, actor=actor)))


def audit_events(
    h: Handles, actor: Actor, model: str | None, after: int, limit: int
) -> list[dict[str, Any]]:
    """Audit events in sequence order after ``after``, optionally of one model."""
    with h.read() as session:
        target = models.get_model(session, model, actor=actor) if model else None
        events = audit.list_events(session, actor=actor, model=target, after_seq=after, limit=limit)
        return [audit.event_to_dict(e) for e in events]


def verify_audit(h: Handles, actor: Actor, anchors: list[str]) -> dict[str, Any]:
    """Check the hash chain, and that it still holds each ``SEQ:HASH`` anchor."""
    parsed = [audit.Anchor.parse(a) for a in anchors]
    with h.read() as session:
        return audit.verify(session, actor=actor, anchors=parsed).to_dict()


def audit_head(h: Handles, actor: Actor) -> dict[str, Any]:
    """The chain's head: ``{seq, hash, at, anchor}``."""
    with h.read() as session:
        return audit.head(session, actor=actor).to_dict()


def collect_garbage(
    h: Handles, actor: Actor, grace_seconds: float, dry_run: bool
) -> dict[str, Any]:
    """Remove unreferenced blobs older than ``grace_seconds`` and abandoned uploads."""
    with h.write() as session:
        result = gc.collect(
            session, h.store, actor=actor, grace_seconds=grace_seconds, dry_run=dry_run
        )
    return {
        "unreferenced": len(result.unreferenced),
        "removed": result.removed,
        "bytes_freed": result.bytes_freed,
        "temporary_removed": result.temporary_removed,
        "dry_run": result.dry_run,
    }

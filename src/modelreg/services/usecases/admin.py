"""Users, service accounts, grants and tokens; the audit log; garbage collection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import PrincipalKind, Role
from modelreg.services import audit, auth, gc, models
from modelreg.services.actor import Actor, Permission
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


def audit_page(
    h: Handles,
    actor: Actor,
    model: str | None,
    before: int | None,
    limit: int,
    by: str | None = None,
) -> dict[str, Any]:
    """Audit events newest first, before sequence number ``before`` (keyset pages).

    Optionally of one model and/or one actor (``by``). ``{"items", "next_before"}``:
    ``next_before`` names the next page (``None`` on the last).
    """
    limit = max(1, min(limit, 500))
    with h.read() as session:
        target = models.get_model(session, model, actor=actor) if model else None
        events = audit.list_events(
            session,
            actor=actor,
            model=target,
            after_seq=max(0, before or 0),
            limit=limit + 1,
            descending=True,
            by=by,
        )
        items = [audit.event_to_dict(e) for e in events[:limit]]
    more = len(events) > limit
    return {"items": items, "next_before": items[-1]["seq"] if more else None}


class AuditVerifier:
    """The audit chain verified a step at a time, for pages that show how far it holds.

    One per process and registry: each ``advance`` extends the verified prefix by at most
    ``step`` events (``audit.verify_after``), so no request pays for a full walk. A break is
    kept and shown until the process restarts; ``modelreg audit verify`` walks the whole chain.
    """

    def __init__(self, step: int = 1000, clock: Callable[[], datetime] = utcnow) -> None:
        self.step = step
        self._clock = clock
        self._lock = threading.Lock()
        self._last: audit.VerifyStep | None = None
        self._anchor = audit.Anchor(0, audit.GENESIS)
        self._checked_at: datetime | None = None

    def advance(self, h: Handles, actor: Actor) -> dict[str, Any]:
        """Verify the next step (unless another request is doing it) and report the state.

        ``{ok, complete, verified_seq, verified_at, head_seq, checked_at, first_bad_seq,
        problem}``.
        """
        actor.require(Permission.AUDIT_READ)
        if self._lock.acquire(blocking=False):
            try:
                if self._last is None or self._last.ok:
                    with h.read() as session:
                        step = audit.verify_after(
                            session, actor=actor, anchor=self._anchor, limit=self.step
                        )
                    self._last, self._anchor = step, step.anchor
                    self._checked_at = self._clock()
            finally:
                self._lock.release()
        return self.state()

    def state(self) -> dict[str, Any]:
        """The last step's outcome, as ``advance`` reports it (``None`` values before one)."""
        last = self._last
        return {
            "ok": last.ok if last is not None else True,
            "complete": last.complete if last is not None else False,
            "verified_seq": self._anchor.seq,
            "verified_at": self._anchor.at,
            "head_seq": last.head_seq if last is not None else None,
            "checked_at": self._checked_at,
            "first_bad_seq": last.first_bad_seq if last is not None else None,
            "problem": last.problem if last is not None else None,
        }


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

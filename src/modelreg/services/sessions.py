"""Web UI sessions: an API token typed into the sign-in form becomes a browser cookie.

The cookie holds a random secret; the database keeps its SHA-256 only (``WebSession``), so a
leaked database holds no working cookie. A session stands for its token: it works only while
the token does and its principal is enabled, and it ends sooner still, after
``ui_session_hours`` or at sign-out. Sessions are rows, not signed cookies, so every server
process sees a sign-out or a revocation at once (DESIGN §1, stateless servers).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from modelreg.db.base import utcnow
from modelreg.db.tables import WebSession
from modelreg.errors import Unauthenticated
from modelreg.services import auth
from modelreg.services.actor import Actor

COOKIE_PREFIX = "mrs_"
# Expired or signed-out sessions are kept a day (for a support question), then pruned at the
# principal's next sign-in.
KEEP_ENDED = timedelta(days=1)


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def _refusal() -> Unauthenticated:
    return Unauthenticated("sign in again: this session has ended", detail={})


def open_session(
    session: Session, secret: str, *, client: str, hours: float
) -> tuple[WebSession, str]:
    """Sign in with an API token; returns the session and its cookie value (shown once).

    Raises:
        Unauthenticated: the token is missing, forged, expired or revoked, or its user is
            disabled (one answer for all, as for the API).
    """
    actor = auth.authenticate(session, secret, source=f"ui:{client}", hint="paste an API token")
    now = utcnow()
    expires = now + timedelta(hours=hours)
    if actor.expires_at is not None:
        expires = min(expires, actor.expires_at)
    assert actor.token_id is not None
    assert actor.principal_id is not None
    session.execute(
        delete(WebSession).where(
            WebSession.principal_id == actor.principal_id,
            or_(
                WebSession.expires_at < now - KEEP_ENDED,
                WebSession.revoked_at < now - KEEP_ENDED,
            ),
        )
    )
    cookie = COOKIE_PREFIX + secrets.token_urlsafe(32)
    row = WebSession(
        secret_hash=_hash(cookie),
        token_id=actor.token_id,
        principal_id=actor.principal_id,
        client=client[:64],
        created_at=now,
        expires_at=expires,
    )
    session.add(row)
    session.flush()
    return row, cookie


def session_actor(session: Session, cookie: str, *, source: str) -> Actor:
    """The actor a session cookie stands for.

    Raises:
        Unauthenticated: unknown cookie, or the session, its token or its user has ended.
    """
    if not cookie.startswith(COOKIE_PREFIX) or len(cookie) > 100:
        raise _refusal()
    row = session.scalars(
        select(WebSession).where(WebSession.secret_hash == _hash(cookie))
    ).one_or_none()
    if (
        row is None
        or row.revoked_at is not None
        or row.expires_at <= utcnow()
        or not auth.token_works(row.token)
    ):
        raise _refusal()
    return auth.actor_for(session, row.token, source=source, expires_at=row.expires_at)


def close_session(session: Session, cookie: str) -> bool:
    """Sign out: the session stops working on every server at once; False if none was open."""
    if not cookie.startswith(COOKIE_PREFIX):
        return False
    result = session.execute(
        update(WebSession)
        .where(WebSession.secret_hash == _hash(cookie), WebSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0))

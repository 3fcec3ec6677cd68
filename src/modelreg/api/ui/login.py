"""Signing in and out: ``GET/POST /login`` (field ``token``, button "Sign in"), ``POST /logout``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from modelreg.api import deps
from modelreg.api.access_log import note_actor
from modelreg.api.ui import forms, render
from modelreg.api.ui.auth import LoginThrottle, client_of
from modelreg.errors import Unauthenticated
from modelreg.services import auth, sessions

router = APIRouter(include_in_schema=False)


def safe_next(value: str) -> str:
    """Where to go after signing in: a path on this server only (no open redirect)."""
    if (
        not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or any(c in value for c in "\\\r\n\t")
        or len(value) > 2000
    ):
        return "/"
    return value


def _throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.ui_throttle
    return throttle


def _laptop(request: Request) -> bool:
    registry: deps.Registry = request.app.state.registry
    with registry.read() as session:
        if auth.has_principals(session):
            return False
    return deps.is_local(
        request.client.host if request.client else None,
        request.headers.get("host", ""),
        registry.settings,
    )


def _num_hours(request: Request) -> str:
    registry: deps.Registry = request.app.state.registry
    return f"{registry.settings.ui_session_hours:g}"


def _form(request: Request, *, next_url: str, error: str = "", status: int = 200) -> Response:
    return render.page(
        request,
        "login.html",
        {
            "next": next_url,
            "error": error,
            "laptop": _laptop(request),
            "hours": _num_hours(request),
        },
        status=status,
    )


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    """The sign-in form."""
    return _form(request, next_url=safe_next(next))


@router.post("/login")
def login(request: Request) -> Response:
    """Exchange an API token for a session cookie; the token itself is never stored."""
    next_url = safe_next(forms.field(request, "next", "/"))
    client = client_of(request)
    throttle = _throttle(request)
    wait = throttle.retry_after(client)
    if wait:
        response = _form(
            request,
            next_url=next_url,
            error=f"Too many failed sign-ins from this address: try again in {wait} s.",
            status=429,
        )
        response.headers["retry-after"] = str(wait)
        return response
    registry: deps.Registry = request.app.state.registry
    try:
        with registry.write() as session:
            row, cookie = sessions.open_session(
                session,
                forms.field(request, "token"),
                client=client,
                hours=registry.settings.ui_session_hours,
            )
            name = row.token.principal.name
            seconds = int((row.expires_at - row.created_at).total_seconds())
    except Unauthenticated:
        throttle.failed(client)
        return _form(
            request,
            next_url=next_url,
            error="That token does not work: it may be mistyped, expired or revoked, or its "
            "user disabled. Ask an admin for a new one (modelreg tokens create).",
            status=401,
        )
    throttle.succeeded(client)
    note_actor(request.scope, name)
    response = render.redirect(next_url)
    forms.set_cookie(response, request, forms.SESSION_COOKIE, cookie, max_age=max(seconds, 1))
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """End this browser's session on every server, and forget its cookie."""
    cookie = forms.session_cookie(request)
    if cookie:
        registry: deps.Registry = request.app.state.registry
        with registry.write() as session:
            sessions.close_session(session, cookie)
    response = render.redirect("/login?done=signed_out")
    forms.clear_session_cookie(response, request)
    return response

"""UI writes: HTML forms, each checked for its CSRF token before any route runs.

``FormWrites`` is a plain ASGI layer that every write outside the API passes through (the
API's own writes must be JSON, ``app.JsonOnly``). So no UI write can forget the check: it
happens before routing. A form must be ``application/x-www-form-urlencoded``, at most
``MAX_FORM_BYTES``, strict UTF-8, and carry a ``csrf`` field equal to the HMAC of the
browser's session cookie (or, before sign-in, of a random cookie the page set). Another site
can make a browser send a form but can read neither cookie, so it cannot compute the field;
``api.origin.HostAndOrigin`` already refuses cross-site ``Origin``/``Sec-Fetch-Site`` too.
The token needs no server-side secret, so any server process can check any other's forms.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 200
SESSION_COOKIE = "modelreg_session"
# Over HTTPS the session cookie takes the ``__Host-`` prefix: browsers then refuse it unless
# Secure, for this host only, and for every path, so a sibling subdomain cannot plant one.
SECURE_SESSION_COOKIE = "__Host-modelreg_session"
ANON_COOKIE = "modelreg_csrf"
_CSRF_LABEL = b"modelreg-ui-csrf-v1"


def _cookies(headers: Headers) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def _session_of(cookies: dict[str, str]) -> str:
    return cookies.get(SECURE_SESSION_COOKIE) or cookies.get(SESSION_COOKIE) or ""


def session_cookie(request: Request) -> str:
    """The browser's session cookie value, or ``""``."""
    return _session_of(dict(request.cookies))


def anonymous_cookie(request: Request) -> str:
    """The random pre-sign-in CSRF cookie (set by the page being rendered, or sent back)."""
    return getattr(request.state, "ui_anonymous", None) or request.cookies.get(ANON_COOKIE, "")


def _token_for(key: str) -> str:
    mac = hmac.new(key.encode(), _CSRF_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_token(request: Request) -> str:
    """The ``csrf`` field every form of this page carries."""
    key = session_cookie(request) or anonymous_cookie(request)
    return _token_for(key) if key else ""


def set_cookie(
    response: Response, request: Request, name: str, value: str, *, max_age: int | None
) -> None:
    """Set a UI cookie: HttpOnly, SameSite=Strict, Path=/, Secure over HTTPS."""
    secure = request.url.scheme == "https"
    if name == SESSION_COOKIE and secure:
        name = SECURE_SESSION_COOKIE
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="strict"
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    """Tell the browser to forget its session cookie."""
    secure = request.url.scheme == "https"
    name = SECURE_SESSION_COOKIE if secure else SESSION_COOKIE
    response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="strict")


def form(request: Request) -> dict[str, list[str]]:
    """The request's form fields (parsed and CSRF-checked by ``FormWrites``)."""
    parsed: dict[str, list[str]] = request.scope.get("state", {}).get("ui_form", {})
    return parsed


def field(request: Request, name: str, default: str = "") -> str:
    """The first value of form field ``name``, stripped; ``default`` when absent."""
    values = form(request).get(name)
    return values[0].strip() if values else default


class FormWrites:
    """Check every UI write before routing: a small form, with a valid CSRF token.

    Refusals: 415 not a urlencoded form, 413 too large, 400 not UTF-8 or too many fields,
    403 ``csrf_failed``. A refused write reaches no route and changes nothing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            await self._refuse(
                scope,
                receive,
                send,
                415,
                "unsupported_media_type",
                f"send the page's form (application/x-www-form-urlencoded); got "
                f"{kind or 'no Content-Type'}",
            )
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORM_BYTES:
                await self._refuse(
                    scope,
                    receive,
                    send,
                    413,
                    "too_large",
                    f"forms are limited to {MAX_FORM_BYTES // 1024} KiB",
                )
                return
        try:
            pairs = parse_qsl(
                bytes(body).decode("utf-8", errors="strict"),
                keep_blank_values=True,
                max_num_fields=MAX_FIELDS,
            )
        except (UnicodeDecodeError, ValueError):
            await self._refuse(
                scope,
                receive,
                send,
                400,
                "invalid_input",
                f"the form is not UTF-8 text of at most {MAX_FIELDS} fields",
            )
            return
        fields: dict[str, list[str]] = {}
        for key, value in pairs:
            fields.setdefault(key, []).append(value)
        cookies = _cookies(headers)
        key = _session_of(cookies) or cookies.get(ANON_COOKIE, "")
        sent = (fields.get("csrf") or [""])[0]
        if not key or not hmac.compare_digest(sent.encode(), _token_for(key).encode()):
            await self._refuse(
                scope,
                receive,
                send,
                403,
                "csrf_failed",
                "this form has expired or did not come from this registry's page: reload the "
                "page and send it again",
            )
            return
        scope.setdefault("state", {})["ui_form"] = fields
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
    ) -> None:
        from modelreg.api.ui import errors as ui_errors

        response = ui_errors.bare_page(status, code, message)
        await response(scope, receive, send)

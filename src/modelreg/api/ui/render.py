"""Rendering a UI page: one Jinja2 environment, the common context, and the page's headers.

Autoescaping is on for every template and undefined names fail loudly. Only
``ui.markdown`` and ``ui.svg`` produce ``Markup``; templates never use ``|safe``. The pages'
policy allows this server's own script and style sheets and nothing inline, so an injected
``<script>`` or ``style=`` cannot run even if a value escaped escaping.
"""

from __future__ import annotations

import contextvars
import math
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

from modelreg import __version__
from modelreg.api.ui import assets, forms
from modelreg.services.actor import Actor
from modelreg.services.usecases import governance

UI_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
UI_REFERRER_POLICY = "same-origin"
# The only texts a page shows from ``?done=CODE``: the query never reaches the page as text.
FLASH = {
    "signed_in": "Signed in.",
    "signed_out": "Signed out.",
    "promoted": "Promoted.",
    "requested": "Promotion requested: it waits for approval.",
    "approved": "Approved.",
    "rejected": "Rejected.",
    "refused": "Refused: the gates no longer pass (see the failed criteria below).",
    "rolled_back": "Rolled back.",
    "alias_set": "Alias set.",
    "alias_deleted": "Alias deleted.",
    "saved": "Saved.",
    "revoked": "Revoked.",
    "granted": "Granted.",
    "removed": "Removed.",
    "queued": "Queued: the delivery worker sends it next.",
}

_request: contextvars.ContextVar[Request] = contextvars.ContextVar("ui_request")


def _reltime(value: datetime | str | None) -> str:
    """How long ago a time was ("3 days ago"); empty for none."""
    moment = _as_datetime(value)
    if moment is None:
        return ""
    seconds = (datetime.now(UTC) - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (
        ("year", 31_536_000),
        ("month", 2_592_000),
        ("day", 86_400),
        ("hour", 3_600),
        ("minute", 60),
    ):
        if seconds >= size:
            count = int(seconds // size)
            text = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {text}" if future else f"{text} ago"
    return "just now"


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _utc(value: datetime | str | None) -> str:
    """The exact time, in UTC: ``2026-12-07 14:03:21 UTC``."""
    moment = _as_datetime(value)
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _filesize(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def _short_digest(digest: str | None) -> str:
    return "" if not digest else digest[:12]


def _num(value: Any) -> str:
    """A metric as people read it: up to 6 significant digits, integers as integers."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)


def model_url(name: str) -> str:
    """The model page of ``name`` (a namespaced name keeps its one ``/``)."""
    return "/models/" + quote(name, safe="/")


def version_url(name: str, number: int | str) -> str:
    """The page of version ``number`` of ``name``."""
    return f"{model_url(name)}/versions/{number}"


def url_with(**changes: Any) -> str:
    """This page's URL with some query parameters changed (``None`` removes one)."""
    request = _request.get()
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    for key, value in changes.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        params.extend((key, str(v)) for v in values)
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def _has_page_token() -> bool:
    return bool(_request.get().query_params.get("page_token"))


def _csrf() -> str:
    return forms.csrf_token(_request.get())


ENV = Environment(
    loader=PackageLoader("modelreg.api.ui", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    auto_reload=False,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(
    reltime=_reltime, utc=_utc, filesize=_filesize, short_digest=_short_digest, num=_num
)
ENV.globals.update(
    model_url=model_url,
    version_url=version_url,
    url_with=url_with,
    request_has_page_token=_has_page_token,
    csrf_token=_csrf,
    static=assets.url,
    modelreg_version=__version__,
)


def role_of(actor: Actor | None) -> str:
    """How the header names the actor's standing: owner, or their registry-wide role."""
    if actor is None:
        return ""
    if actor.superuser:
        return "owner"
    role = actor.role_on(None)
    return role.value if role is not None else "per-model access"


def page(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` with the common context, under the UI's headers."""
    actor: Actor | None = getattr(request.state, "ui_actor", None)
    done = request.query_params.get("done", "")
    waiting = None
    if actor is not None:
        # The header's inbox count: one indexed COUNT (``governance.waiting_count``).
        waiting = governance.waiting_count(request.app.state.registry, actor)
    common: dict[str, Any] = {
        "actor": actor,
        "role": role_of(actor),
        "signed_in": bool(forms.session_cookie(request)),
        "waiting": waiting,
        "flash": FLASH.get(done, ""),
        "path": request.url.path,
        "query": request.query_params,
        "search_q": request.query_params.get("q", "") if request.url.path == "/search" else "",
    }
    anonymous = None
    if not forms.session_cookie(request) and not forms.anonymous_cookie(request):
        # The CSRF key for forms shown before sign-in (and in laptop mode): a random cookie
        # this page sets, which another site can neither read nor set.
        anonymous = secrets.token_urlsafe(32)
        request.state.ui_anonymous = anonymous
    token = _request.set(request)
    try:
        html = ENV.get_template(template).render({**common, **(context or {})})
    finally:
        _request.reset(token)
    response = HTMLResponse(html, status_code=status, headers=headers)
    response.headers["content-security-policy"] = UI_CSP
    # Not ``no-referrer`` (the API's): under it Chromium sends ``Origin: null`` with the
    # page's forms, which ``HostAndOrigin`` rightly refuses as cross-site.
    response.headers["referrer-policy"] = UI_REFERRER_POLICY
    started = getattr(request.state, "ui_started", None)
    if started is not None:
        response.headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1e3:.1f}"
    if anonymous is not None:
        forms.set_cookie(response, request, forms.ANON_COOKIE, anonymous, max_age=None)
    return response


def redirect(url: str) -> RedirectResponse:
    """303 See Other: after a POST, the browser GETs ``url`` (no resubmission on reload)."""
    return RedirectResponse(url, status_code=303)

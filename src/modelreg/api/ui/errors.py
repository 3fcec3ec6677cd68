"""Errors on UI paths: an HTML page with the CLI's message, or a sign-in redirect.

The status is the API's (``api.errors.status_for``), and the page names the error's code in
``<meta name="modelreg-error">`` for tests and scripts. A request that needs a signed-in user
goes to ``/login?next=…`` instead (``next`` is checked there before it is followed).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from modelreg import errors

TITLES = {
    400: "Invalid input",
    401: "Sign in required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported form",
    422: "Refused by a policy gate",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Unavailable",
}


def bare_page(status: int, code: str, message: str) -> HTMLResponse:
    """An error page rendered without a request's context (for the ASGI layers' refusals)."""
    from modelreg.api.ui import render

    html = render.ENV.get_template("error_bare.html").render(
        status=status,
        title=TITLES.get(status, "Error"),
        code=code,
        message=message,
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["content-security-policy"] = render.UI_CSP
    response.headers["referrer-policy"] = render.UI_REFERRER_POLICY
    return response


def error_page(request: Request, status: int, code: str, message: str) -> HTMLResponse:
    """An error page inside the UI's frame (header, search box, the user)."""
    from modelreg.api.ui import render

    return render.page(
        request,
        "error.html",
        {"status": status, "title": TITLES.get(status, "Error"), "code": code, "message": message},
        status=status,
    )


def registry_error(request: Request, exc: errors.RegistryError, status: int) -> Response:
    """The page for a ``RegistryError`` raised by a UI route (401: off to sign in)."""
    if isinstance(exc, errors.Unauthenticated) and request.method in ("GET", "HEAD"):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)
    response = error_page(request, status, exc.code, exc.message)
    if isinstance(exc, errors.TooManyUploads):
        response.headers["retry-after"] = str(exc.retry_after)
    return response

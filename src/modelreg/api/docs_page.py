"""The API docs page (``/api/docs``): Swagger UI served from the package, under a strict CSP.

FastAPI's own page loads Swagger UI from a CDN, which the server's ``default-src 'none'``
policy blocks (and a CDN may be unreachable). Here the page, its vendored assets
(``static/swagger-ui``, see its README) and its initialiser (``static/docs.js``) all come from
the server, so the page's policy allows ``'self'`` and nothing else: no inline script, no
inline style sheet, no other origin.
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from modelreg import errors

SWAGGER_UI_VERSION = "5.36.0"
ASSETS = "/api/docs/assets"
SWAGGER_ASSETS = f"{ASSETS}/swagger-ui-{SWAGGER_UI_VERSION}"
# Exactly what the page loads: scripts and styles from this server, the UI's inline SVG
# icons (data: URLs in its style sheet), and fetches of the OpenAPI document ("Try it out"
# sends its requests to this server too).
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# The vendored files never change under their versioned path; our initialiser may change
# with modelreg, so browsers revalidate it.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

# Served path (under ASSETS) → (file under modelreg/api/static, media type, caching).
_FILES = {
    f"swagger-ui-{SWAGGER_UI_VERSION}/swagger-ui-bundle.js": (
        "swagger-ui/swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        IMMUTABLE,
    ),
    f"swagger-ui-{SWAGGER_UI_VERSION}/swagger-ui.css": (
        "swagger-ui/swagger-ui.css",
        "text/css; charset=utf-8",
        IMMUTABLE,
    ),
    f"swagger-ui-{SWAGGER_UI_VERSION}/favicon-32x32.png": (
        "swagger-ui/favicon-32x32.png",
        "image/png",
        IMMUTABLE,
    ),
    "docs.js": ("docs.js", "text/javascript; charset=utf-8", REVALIDATE),
}

router = APIRouter(include_in_schema=False)


def page_html(openapi_url: str, title: str) -> str:
    """The docs page: markup only; ``docs.js`` reads the document's URL from ``data-openapi``."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title} API docs</title>
<link rel="stylesheet" href="{SWAGGER_ASSETS}/swagger-ui.css">
<link rel="icon" type="image/png" href="{SWAGGER_ASSETS}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi_url}"></div>
<script src="{SWAGGER_ASSETS}/swagger-ui-bundle.js"></script>
<script src="{ASSETS}/docs.js"></script>
</body>
</html>
"""


@functools.cache
def _read(name: str) -> bytes:
    return (resources.files("modelreg.api") / "static" / name).read_bytes()


@router.get("/api/docs")
def docs_page() -> HTMLResponse:
    """The Swagger UI page for this server's OpenAPI document (public, like the document)."""
    return HTMLResponse(
        page_html("/openapi.json", "modelreg"),
        headers={"content-security-policy": DOCS_CSP},
    )


@router.get(f"{ASSETS}/{{path:path}}")
def docs_asset(path: str) -> Response:
    """One of the page's files; the path is looked up in a fixed table, never on disk."""
    entry = _FILES.get(path)
    if entry is None:
        raise errors.NotFound(
            f"no docs asset {path!r}; the docs page is /api/docs", detail={"path": path}
        )
    name, media_type, caching = entry
    return Response(_read(name), media_type=media_type, headers={"cache-control": caching})

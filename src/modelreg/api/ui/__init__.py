"""The web UI: server-rendered pages at ``/``, beside the REST API (DESIGN §6, UI.md).

Pages are Jinja2 templates rendered by routes that call the same use-cases as the API
(``services.usecases``), with the same permission checks; no page needs JavaScript and each
keeps its state in its URL. The UI lives under ``api`` because it is another face of the
server door: it shares the server's authentication (``api.deps``), its error map and its
security layers, and ``create_app`` mounts it, so the route-enumerating security tests see
its routes too. Its routes are left out of the OpenAPI document (``include_in_schema=False``).

Writes are HTML forms: ``forms.FormWrites`` checks every one's CSRF token before routing.
"""

from __future__ import annotations

from fastapi import APIRouter

# Paths that are not the UI's: the API, its document and docs page, and health checks.
_NOT_UI = ("/api/", "/openapi.json", "/healthz", "/readyz")


def is_ui_path(path: str) -> bool:
    """Whether ``path`` belongs to the web UI (HTML answers, form writes with CSRF)."""
    return not path.startswith(_NOT_UI) and path != "/api"


def build_router() -> APIRouter:
    """The UI's routes, the longer ``/models/{name}/…`` paths before ``/models/{name}``."""
    from modelreg.api.ui import admin, assets, browse, deployments, govern, login, webhooks

    router = APIRouter(include_in_schema=False)
    for module in (assets, login, govern, admin, webhooks, deployments, browse):
        router.include_router(module.router)
    return router

"""``/webhooks``: event subscriptions, their recent deliveries, and the forms that manage them.

The page calls the API's use-cases (``usecases.notify``), whose service checks who may: an
admin manages every subscription, a model's admin those of that model; anyone else sees a
page that says so, with no form. A new or rotated signing secret is shown once, in the answer
to its POST (no redirect, ``Cache-Control: no-store``), as a new token's is.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from modelreg.api.deps import RegistryDep
from modelreg.api.ui import forms, render
from modelreg.api.ui.auth import UiActorDep
from modelreg.db.tables.notify import WebhookKind
from modelreg.errors import InvalidInput
from modelreg.services import webhooks
from modelreg.services.usecases import notify

router = APIRouter(include_in_schema=False)

DELIVERIES_PAGE = 25
KINDS = tuple(k.value for k in WebhookKind)
# The CSS class of each delivery state's badge (govern.css colours requests the same way).
STATE_CLASS = {"pending": "state-pending", "delivered": "state-applied", "failed": "state-refused"}


@router.get("/webhooks")
def webhooks_page(
    request: Request,
    registry: RegistryDep,
    actor: UiActorDep,
    webhook: str = Query(default="", max_length=64),
    failed: bool = False,
    page_token: str | None = Query(default=None, max_length=4096),
) -> HTMLResponse:
    """Subscriptions the reader manages, their recent deliveries, and the add form."""
    if not webhooks.may_administer(actor):
        return render.page(request, "webhooks.html", {"manages": False})
    hooks = notify.list_webhooks(registry, actor)
    found = notify.deliveries(registry, actor, webhook or None, failed, DELIVERIES_PAGE, page_token)
    context = {
        "manages": True,
        "registry_wide": webhooks.admin_models(actor) is None,
        "hooks": hooks,
        "deliveries": found["items"],
        "next_page_token": found["next_page_token"],
        "webhook": webhook,
        "failed": failed,
        "kinds": KINDS,
        "state_class": STATE_CLASS,
    }
    return render.page(request, "webhooks.html", context)


def _secret_page(request: Request, hook: dict[str, Any], rotated: bool) -> HTMLResponse:
    response = render.page(request, "webhook_secret.html", {"hook": hook, "rotated": rotated})
    response.headers["Cache-Control"] = "no-store"
    return response


def _patterns(text: str) -> tuple[str, ...]:
    """Event patterns as the form takes them: one per line or separated by commas."""
    return tuple(p.strip() for p in text.replace(",", "\n").splitlines() if p.strip())


@router.post("/webhooks", response_model=None)
def add(
    request: Request, registry: RegistryDep, actor: UiActorDep
) -> HTMLResponse | RedirectResponse:
    """Create a subscription; a webhook's secret is shown in this answer only."""
    spec = webhooks.NewWebhook(
        kind=forms.field(request, "kind", WebhookKind.WEBHOOK.value),
        url=forms.field(request, "url"),
        to=forms.field(request, "to"),
        events=_patterns(forms.field(request, "events")),
        model=forms.field(request, "model") or "*",
        description=forms.field(request, "description"),
    )
    hook = notify.create(
        registry,
        actor,
        notify.sealer_for(registry.settings),
        spec,
        allow_private=registry.settings.webhook_allow_private,
    )
    if hook.get("secret"):
        return _secret_page(request, hook, rotated=False)
    return render.redirect("/webhooks?done=saved")


@router.post("/webhooks/rotate")
def rotate(request: Request, registry: RegistryDep, actor: UiActorDep) -> HTMLResponse:
    """A new signing secret, shown in this answer only; the previous one signs for a while."""
    hours = forms.field(request, "overlap_hours", str(webhooks.DEFAULT_OVERLAP_HOURS))
    if not (hours.isascii() and hours.isdigit()):
        raise InvalidInput("the overlap is a whole number of hours", detail={})
    sealer = notify.sealer_for(registry.settings)
    hook = notify.rotate(registry, actor, sealer, forms.field(request, "id"), int(hours))
    return _secret_page(request, hook, rotated=True)


@router.post("/webhooks/remove")
def remove(request: Request, registry: RegistryDep, actor: UiActorDep) -> RedirectResponse:
    """Remove a subscription and its deliveries."""
    notify.remove(registry, actor, forms.field(request, "id"))
    return render.redirect("/webhooks?done=removed")


@router.post("/webhooks/test")
def test(request: Request, registry: RegistryDep, actor: UiActorDep) -> RedirectResponse:
    """Queue a test message to a subscription."""
    notify.test(registry, actor, forms.field(request, "id"))
    return render.redirect("/webhooks?done=queued")


@router.post("/webhooks/redeliver")
def redeliver(request: Request, registry: RegistryDep, actor: UiActorDep) -> RedirectResponse:
    """Send a delivery again."""
    notify.redeliver(registry, actor, forms.field(request, "id"))
    return render.redirect("/webhooks?done=queued")

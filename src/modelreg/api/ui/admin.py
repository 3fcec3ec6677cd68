"""The audit log, the admin page (users, roles, tokens, policies), and a placeholder.

Deployments (issue 23) are not built yet; their page says so. Webhooks are ``ui.webhooks``.

``/audit`` shows how far the hash chain is verified: each view extends the verified prefix by
one step (``usecases.admin.AuditVerifier``, one per process and registry), so no request walks
the whole chain; ``modelreg audit verify`` does that.

Admin writes are POSTs under ``/admin/…`` calling the API's use-cases (``usecases.admin``,
``usecases.governance``), whose services require the admin role. Names travel in form fields,
not in paths, so no user or token name needs escaping into a URL. A new token's secret is shown
once, in the answer to its POST (no redirect, ``Cache-Control: no-store``); nothing keeps it.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from modelreg.api.deps import RegistryDep
from modelreg.api.ui import forms, render
from modelreg.api.ui.auth import UiActorDep
from modelreg.db.tables import PrincipalKind, Role
from modelreg.errors import InvalidInput
from modelreg.services.actor import Permission
from modelreg.services.usecases import admin, governance

router = APIRouter(include_in_schema=False)

AUDIT_PAGE = 50
ROLES = tuple(r.value for r in Role)
_verifier_lock = threading.Lock()


def _verifier(request: Request) -> admin.AuditVerifier:
    """This process's verifier of the app's registry (made on first use)."""
    state = request.app.state
    with _verifier_lock:
        verifier: admin.AuditVerifier | None = getattr(state, "audit_verifier", None)
        if verifier is None:
            verifier = admin.AuditVerifier()
            state.audit_verifier = verifier
    return verifier


@router.get("/audit")
def audit_page(
    request: Request,
    registry: RegistryDep,
    actor: UiActorDep,
    model: str = Query(default="", max_length=200),
    by: str = Query(default="", alias="actor", max_length=128),
    before: int | None = Query(default=None, ge=1),
) -> HTMLResponse:
    """Events newest first (keyset on ``seq``), with the chain's verification banner."""
    found = admin.audit_page(
        registry, actor, model.strip() or None, before, AUDIT_PAGE, by.strip() or None
    )
    chain = None
    if actor.can(Permission.AUDIT_READ):
        # The whole chain's state is for those who may read the whole log.
        chain = _verifier(request).advance(registry, actor)
    context = {
        "model": model.strip(),
        "by": by.strip(),
        "events": [_readable(e) for e in found["items"]],
        "next_before": found["next_before"],
        "chain": chain,
    }
    return render.page(request, "audit.html", context)


def _readable(event: dict[str, Any]) -> dict[str, Any]:
    """An event whose before/after values read as JSON (as the CLI prints them), not repr."""

    def shown(values: dict[str, Any] | None) -> dict[str, str] | None:
        if values is None:
            return None
        return {
            k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)
            for k, v in values.items()
        }

    return {**event, "before": shown(event["before"]), "after": shown(event["after"])}


# -- admin -----------------------------------------------------------------------------------


@router.get("/admin")
def admin_page(request: Request, registry: RegistryDep, actor: UiActorDep) -> HTMLResponse:
    """Users with their roles, tokens, and the policy rules (admin)."""
    context = {
        "principals": admin.list_principals(registry, actor),
        "tokens": admin.list_tokens(registry, actor, None),
        "policies": governance.list_policies(registry, actor)["scopes"],
        "roles": ROLES,
        "kinds": tuple(k.value for k in PrincipalKind),
    }
    return render.page(request, "admin.html", context)


def _done(code: str) -> RedirectResponse:
    return render.redirect(f"/admin?done={code}")


def _role(text: str) -> Role:
    try:
        return Role(text.lower())
    except ValueError:
        raise InvalidInput(
            f"unknown role {text[:40]!r}; expected one of {', '.join(ROLES)}", detail={}
        ) from None


@router.post("/admin/users")
def create_user(request: Request, registry: RegistryDep, actor: UiActorDep) -> RedirectResponse:
    """Create a user or service account, with an optional first role."""
    kind_text = forms.field(request, "kind", PrincipalKind.USER.value)
    try:
        kind = PrincipalKind(kind_text)
    except ValueError:
        raise InvalidInput(f"unknown kind {kind_text[:40]!r}", detail={}) from None
    role_text = forms.field(request, "role")
    role = _role(role_text) if role_text else None
    model = forms.field(request, "model") or None
    admin.create_principal(registry, actor, forms.field(request, "name"), kind, role, model)
    return _done("saved")


@router.post("/admin/grants")
def grant(request: Request, registry: RegistryDep, actor: UiActorDep) -> RedirectResponse:
    """Give a principal a role, registry-wide or on one model."""
    role = _role(forms.field(request, "role"))
    model = forms.field(request, "model") or None
    admin.grant(registry, actor, forms.field(request, "principal"), role, model)
    return _done("granted")


@router.post("/admin/grants/revoke")
def revoke(request: Request, registry: RegistryDep, actor: UiActorDep) -> RedirectResponse:
    """Take a role away."""
    role = _role(forms.field(request, "role"))
    model = forms.field(request, "model") or None
    admin.revoke(registry, actor, forms.field(request, "principal"), role, model)
    return _done("revoked")


@router.post("/admin/users/disable")
def disable(request: Request, registry: RegistryDep, actor: UiActorDep) -> RedirectResponse:
    """Disable a principal (its sessions and tokens stop working at once), or enable it."""
    enable = forms.field(request, "enable") == "1"
    admin.set_disabled(registry, actor, forms.field(request, "principal"), not enable)
    return _done("saved")


@router.post("/admin/tokens")
def create_token(request: Request, registry: RegistryDep, actor: UiActorDep) -> HTMLResponse:
    """Issue a token and show its secret in this answer only (never stored, never redirected)."""
    days_text = forms.field(request, "expires_days")
    if days_text and not (days_text.isascii() and days_text.isdigit()):
        raise InvalidInput("expires_days is a whole number of days", detail={})
    token = admin.create_token(
        registry,
        actor,
        forms.field(request, "principal"),
        forms.field(request, "name"),
        int(days_text) if days_text else None,
    )
    response = render.page(request, "token_created.html", {"token": token})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/admin/tokens/revoke")
def revoke_token(request: Request, registry: RegistryDep, actor: UiActorDep) -> RedirectResponse:
    """Revoke a token."""
    admin.revoke_token(registry, actor, forms.field(request, "id"))
    return _done("revoked")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _rule_from(request: Request) -> dict[str, Any]:
    """A rule as the policy form writes it: one gate, stage or ``KEY[=VALUE]`` tag per line."""
    approvals = forms.field(request, "approvals", "0")
    if not (approvals.isascii() and approvals.isdigit()):
        raise InvalidInput("approvals is a whole number", detail={})
    return {
        "requires": _lines(forms.field(request, "requires")),
        "from_stages": _lines(forms.field(request, "from_stages")),
        "required_tags": _lines(forms.field(request, "required_tags")),
        "approvals": int(approvals),
        "approver_role": forms.field(request, "approver_role") or Role.APPROVER.value,
        "previous_to": forms.field(request, "previous_to") or None,
    }


@router.post("/admin/policies")
def set_rule(request: Request, registry: RegistryDep, actor: UiActorDep) -> RedirectResponse:
    """Write one rule of a scope (``*`` or a model) for one target."""
    scope = forms.field(request, "scope", "*")
    target = forms.field(request, "target")
    governance.set_rule(registry, actor, scope, target, _rule_from(request))
    return _done("saved")


@router.post("/admin/policies/delete")
def delete_rule(request: Request, registry: RegistryDep, actor: UiActorDep) -> RedirectResponse:
    """Remove one rule."""
    scope = forms.field(request, "scope", "*")
    governance.delete_rule(registry, actor, scope, forms.field(request, "target"))
    return _done("saved")

"""Governance pages and actions: the inbox, promote, approve, reject, rollback, aliases, edits.

Every POST calls the same use-case as the REST route (``services.usecases``), whose service
functions make the permission checks; a page only hides what the actor may not do. A success
answers 303 (``?done=CODE`` for the flash); a refusal the user can fix re-renders its form
(a refused promotion: 422 with each failed criterion and the value seen; a rejection without a
reason: 400); any other ``RegistryError`` becomes the error page.

Paths that end in a word a model name may not end in (``names._RESERVED_LAST``): ``aliases``,
``rollback``, ``tags``, ``describe``, and everything under ``versions/{n}``, so no form URL
can be read as another model's page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from modelreg.api.deps import RegistryDep
from modelreg.api.ui import forms, render
from modelreg.api.ui.auth import UiActorDep
from modelreg.errors import InvalidInput, PolicyViolation
from modelreg.names import MAX_VERSION, Ref, Stage
from modelreg.services.actor import Actor
from modelreg.services.usecases import catalog, governance

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
STATES = ("pending", "applied", "refused", "rejected", "all")
PromotionId = Path(ge=1, le=MAX_VERSION)
VersionNumber = Path(ge=1, le=MAX_VERSION)
# The targets the promote form offers (an alias is typed as ``@name``).
TARGETS = tuple(s.value for s in Stage)


def _model_url(name: str, done: str | None = None) -> str:
    url = render.model_url(name)
    return f"{url}?done={done}" if done else url


def _version_url(name: str, number: int, done: str | None = None) -> str:
    url = render.version_url(name, number)
    return f"{url}?done={done}" if done else url


def _promotion_url(request_id: int, done: str) -> str:
    return f"/promotions/{request_id}?done={done}"


# -- the inbox -------------------------------------------------------------------------------


@router.get("/promotions")
def promotions_page(
    request: Request,
    registry: RegistryDep,
    actor: UiActorDep,
    state: str = Query(default="pending", max_length=20),
    page_token: str | None = Query(default=None, max_length=4096),
) -> HTMLResponse:
    """Requests in one state (pending first: the inbox), each with its gates and decisions."""
    if state not in STATES:
        raise InvalidInput(
            f"unknown state {state!r}; expected one of {', '.join(STATES)}",
            detail={"state": state},
        )
    wanted = None if state == "all" else state
    found = governance.inbox(registry, actor, wanted, PAGE_SIZE, page_token)
    recent: list[dict[str, Any]] = []
    if state == "pending" and not page_token:
        latest = governance.inbox(registry, actor, None, PAGE_SIZE, None)["items"]
        recent = [v for v in latest if v["request"]["state"] != "pending"]
    context = {
        "state": state,
        "states": STATES,
        "items": found["items"],
        "next_page_token": found["next_page_token"],
        "recent": recent,
    }
    return render.page(request, "promotions.html", context)


def _promotion_page(
    request: Request,
    registry: RegistryDep,
    actor: Actor,
    request_id: int,
    *,
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    view = governance.promotion_view(registry, actor, request_id)
    reason = forms.field(request, "reason") if error else ""
    context = {"view": view, "error": error, "reason": reason}
    return render.page(request, "promotion.html", context, status=status)


@router.get("/promotions/{request_id}")
def promotion_page(
    request: Request, registry: RegistryDep, actor: UiActorDep, request_id: int = PromotionId
) -> HTMLResponse:
    """One request: its gates now, its approvals, and Approve / Reject for those who may."""
    return _promotion_page(request, registry, actor, request_id)


@router.post("/promotions/{request_id}/approve")
def approve(
    request: Request, registry: RegistryDep, actor: UiActorDep, request_id: int = PromotionId
) -> RedirectResponse:
    """Approve (the requester is refused by the service: 403)."""
    try:
        governance.approve(registry, actor, request_id, forms.field(request, "reason"))
    except PolicyViolation:
        # The last approval found the gates failing: the request is refused, and its page
        # lists each failed criterion.
        return render.redirect(_promotion_url(request_id, "refused"))
    return render.redirect(_promotion_url(request_id, "approved"))


@router.post("/promotions/{request_id}/reject", response_model=None)
def reject(
    request: Request, registry: RegistryDep, actor: UiActorDep, request_id: int = PromotionId
) -> HTMLResponse | RedirectResponse:
    """Reject (or withdraw one's own request); the reason is required."""
    reason = forms.field(request, "reason")
    if not reason:
        message = "A rejection needs a reason."
        return _promotion_page(request, registry, actor, request_id, error=message, status=400)
    governance.reject(registry, actor, request_id, reason)
    return render.redirect(_promotion_url(request_id, "rejected"))


# -- promote ---------------------------------------------------------------------------------


def _promote_page(
    request: Request,
    registry: RegistryDep,
    actor: Actor,
    name: str,
    number: int,
    target: str,
    *,
    refused: list[dict[str, Any]] | None = None,
    status: int = 200,
) -> HTMLResponse:
    gates = governance.evaluate_gates(registry, actor, name, number, target) if target else None
    context = {
        "name": name,
        "number": number,
        "target": target,
        "targets": TARGETS,
        "gates": gates,
        "refused": refused,
        "reason": forms.field(request, "reason") if refused is not None else "",
    }
    return render.page(request, "promote.html", context, status=status)


@router.get("/models/{name:model}/versions/{number}/promote")
def promote_page(
    request: Request,
    name: str,
    registry: RegistryDep,
    actor: UiActorDep,
    number: int = VersionNumber,
    to: str = Query(default="", max_length=80),
) -> HTMLResponse:
    """The gates' evaluation for moving a version into ``to``, and the form to request it."""
    return _promote_page(request, registry, actor, name, number, to.strip())


@router.post("/models/{name:model}/versions/{number}/promote", response_model=None)
def promote(
    request: Request,
    name: str,
    registry: RegistryDep,
    actor: UiActorDep,
    number: int = VersionNumber,
) -> HTMLResponse | RedirectResponse:
    """Request the move: applied → the version page; pending → the request; refused → 422."""
    target = forms.field(request, "to") or str(request.query_params.get("to", ""))
    reason = forms.field(request, "reason")
    try:
        answer = governance.promote(registry, actor, name, number, target, reason, False, None)
    except PolicyViolation as exc:
        return _promote_page(
            request, registry, actor, name, number, target, refused=exc.failed_criteria, status=422
        )
    if answer["state"] == "pending":
        return render.redirect(_promotion_url(answer["id"], "requested"))
    return render.redirect(_version_url(name, number, "promoted"))


# -- rollback and aliases --------------------------------------------------------------------


@router.post("/models/{name:model}/rollback")
def rollback(
    request: Request, name: str, registry: RegistryDep, actor: UiActorDep
) -> RedirectResponse:
    """Put back the previous holder of a stage or alias (approvers; a reason is required)."""
    target = forms.field(request, "stage", "production")
    to_text = forms.field(request, "to")
    to = _number(to_text, "to") if to_text else None
    governance.rollback(registry, actor, name, target, to, forms.field(request, "reason"), None)
    return render.redirect(_model_url(name, "rolled_back"))


@router.post("/models/{name:model}/aliases", response_model=None)
def set_alias(
    request: Request, name: str, registry: RegistryDep, actor: UiActorDep
) -> HTMLResponse | RedirectResponse:
    """Point an alias at a version; a protected alias goes through its policy like a promotion."""
    alias = forms.field(request, "alias").removeprefix("@")
    number = _number(forms.field(request, "version"), "version")
    reason = forms.field(request, "reason")
    try:
        status, answer = governance.set_alias(registry, actor, name, alias, number, reason, None)
    except PolicyViolation as exc:
        return _promote_page(
            request,
            registry,
            actor,
            name,
            number,
            f"@{alias}",
            refused=exc.failed_criteria,
            status=422,
        )
    if status == 202:
        return render.redirect(_promotion_url(answer["id"], "requested"))
    return render.redirect(_version_url(name, number, "alias_set"))


@router.post("/models/{name:model}/aliases/{alias}/delete")
def delete_alias(
    request: Request, name: str, alias: str, registry: RegistryDep, actor: UiActorDep
) -> RedirectResponse:
    """Remove an alias."""
    governance.delete_alias(registry, actor, name, alias, forms.field(request, "reason"), None)
    return render.redirect(_model_url(name, "alias_deleted"))


# -- descriptions and tags -------------------------------------------------------------------


def _tags_from(request: Request) -> tuple[dict[str, str], list[str]]:
    """The tag form: ``key`` and ``value`` set one tag; ``delete`` removes one."""
    key = forms.field(request, "key")
    delete = [k for k in forms.form(request).get("delete", []) if k]
    return ({key: forms.field(request, "value")} if key else {}), delete


@router.post("/models/{name:model}/describe")
def describe_model(
    request: Request, name: str, registry: RegistryDep, actor: UiActorDep
) -> RedirectResponse:
    """Replace a model's description (Markdown)."""
    catalog.set_description(registry, actor, Ref(name), _description(request))
    return render.redirect(_model_url(name, "saved"))


@router.post("/models/{name:model}/tags")
def tag_model(
    request: Request, name: str, registry: RegistryDep, actor: UiActorDep
) -> RedirectResponse:
    """Set or remove a model's tag."""
    tags, delete = _tags_from(request)
    catalog.set_tags(registry, actor, Ref(name), tags, delete)
    return render.redirect(_model_url(name, "saved"))


@router.post("/models/{name:model}/versions/{number}/describe")
def describe_version(
    request: Request,
    name: str,
    registry: RegistryDep,
    actor: UiActorDep,
    number: int = VersionNumber,
) -> RedirectResponse:
    """Replace a version's description (Markdown)."""
    catalog.set_description(registry, actor, Ref(name, version=number), _description(request))
    return render.redirect(_version_url(name, number, "saved"))


@router.post("/models/{name:model}/versions/{number}/tags")
def tag_version(
    request: Request,
    name: str,
    registry: RegistryDep,
    actor: UiActorDep,
    number: int = VersionNumber,
) -> RedirectResponse:
    """Set or remove a version's tag."""
    tags, delete = _tags_from(request)
    catalog.set_tags(registry, actor, Ref(name, version=number), tags, delete)
    return render.redirect(_version_url(name, number, "saved"))


def _description(request: Request) -> str:
    # Browsers send textarea line breaks as CRLF; store what the CLI would.
    return forms.field(request, "description").replace("\r\n", "\n")


def _number(text: str, what: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_VERSION:
        raise InvalidInput(f"{what} is a version number, not {text[:40]!r}", detail={what: text})
    return int(text)

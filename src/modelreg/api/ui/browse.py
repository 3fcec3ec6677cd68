"""The browsing pages: models, search, one model, one version, compare, history, downloads.

Each route reads through one page use-case (``services.usecases.browse``: one read
transaction, the API's services and permission checks) and renders one template. The longer
``/models/{name:model}/…`` paths are registered before ``/models/{name:model}``, whose
convertor accepts one ``/`` (``team/fraud``). A search expression that does not parse
re-renders its own page with the parser's message (400), so the box keeps what was typed.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from modelreg.api.blob_send import blob_response
from modelreg.api.deps import RegistryDep
from modelreg.api.ui import render
from modelreg.api.ui.auth import UiActorDep
from modelreg.api.ui.markdown import first_line, render_markdown
from modelreg.api.ui.svg import line_chart
from modelreg.errors import InvalidQuery
from modelreg.services.actor import Actor
from modelreg.services.usecases import browse

router = APIRouter(include_in_schema=False)

Number = Path(ge=1, le=2**31 - 1)
Q = Query(default="", max_length=10_000)
Token = Query(default="", max_length=4096)
Metric = Query(default="", max_length=250)
Versions = Query(default=[])
Only = Query(default="", max_length=10)


def _quoted(text: str) -> str:
    """``text`` as a string literal of the search language."""
    return "'" + text.replace("'", "''") + "'"


def _chips(actor: Actor) -> list[tuple[str, str]]:
    """Common questions as search expressions: following one teaches the language."""
    return [
        ("In production", "stage = 'production'"),
        ("In staging", "stage = 'staging'"),
        ("Mine", f"owner = {_quoted(actor.name)}"),
        ("Recently updated", "ORDER BY updated_at DESC"),
    ]


def _searched(
    request: Request,
    template: str,
    context: dict[str, Any],
    read: Any,
    fallback: Any = None,
) -> HTMLResponse:
    """Render a page whose rows come from a search; a bad expression is shown, with 400.

    The page keeps what was typed in its box, with the parser's message (and position);
    ``fallback`` reads what the page shows around the failed search.
    """
    try:
        context.update(read())
    except InvalidQuery as exc:
        context.update(error=str(exc), position=exc.detail.get("position"))
        if fallback is not None:
            context.update(fallback())
        return render.page(request, template, context, status=400)
    return render.page(request, template, context)


@router.get("/")
def models_list(
    request: Request, registry: RegistryDep, actor: UiActorDep, q: str = Q, page_token: str = Token
) -> HTMLResponse:
    """Models, filtered with the search language."""
    context: dict[str, Any] = {
        "q": q,
        "items": [],
        "next_page_token": None,
        "empty_registry": False,
        "may_create": False,
        "chips": _chips(actor),
        "error": None,
    }

    def read() -> dict[str, Any]:
        data = browse.models_page(registry, actor, q.strip() or None, page_token or None)
        for item in data["items"]:
            item["summary"] = first_line(item["description"])
        return data

    return _searched(request, "models.html", context, read)


@router.get("/search")
def search(
    request: Request, registry: RegistryDep, actor: UiActorDep, q: str = Q, page_token: str = Token
) -> HTMLResponse:
    """Versions across every model the actor may read."""
    context: dict[str, Any] = {"q": q, "items": [], "next_page_token": None, "error": None}
    return _searched(
        request,
        "search.html",
        context,
        lambda: browse.search_page(registry, actor, q.strip() or None, page_token or None),
    )


@router.get("/models/{name:model}/versions/{number}/files/{path:path}")
def download(
    name: str, path: str, registry: RegistryDep, actor: UiActorDep, number: int = Number
) -> Response:
    """One file of a version, as an attachment (the API's download, same checks)."""
    digest, size = browse.version_file(registry, actor, name, number, path)
    response: Response = blob_response(
        registry, digest, filename=path.rsplit("/", 1)[-1], size=size
    )
    return response


@router.get("/models/{name:model}/versions/{number}")
def version_page(
    request: Request, name: str, registry: RegistryDep, actor: UiActorDep, number: int = Number
) -> HTMLResponse:
    """One version: files, metrics against production, params, tags, lineage, environment."""
    data = browse.version_overview(registry, actor, name, number)
    # ``version`` is the page's global for modelreg's own version (the footer shows it).
    shown = data.pop("version")
    lineage = shown["lineage"]
    data.update(
        shown=shown,
        description_html=render_markdown(shown["description"]),
        forge=forge_links(lineage["git_repo"], lineage["git_commit"]),
    )
    return render.page(request, "version.html", data)


# A repository on a known forge, as git writes its remote: https://HOST/OWNER/REPO[.git] or
# git@HOST:OWNER/REPO[.git]. Only these become links, and only as https URLs built here.
_FORGE = re.compile(
    r"(?:https://|git@)(github\.com|gitlab\.com|codeberg\.org|bitbucket\.org)[/:]"
    r"([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?"
)
_COMMIT = re.compile(r"[0-9a-f]{7,64}")


def forge_links(repo: str | None, commit: str | None) -> dict[str, str | None]:
    """Links to a repository and commit on a known forge; ``None`` for anything else."""
    match = _FORGE.fullmatch(repo or "")
    if match is None:
        return {"repo": None, "commit": None}
    base = f"https://{match.group(1)}/{match.group(2)}"
    linked = commit is not None and _COMMIT.fullmatch(commit) is not None
    return {"repo": base, "commit": f"{base}/commit/{commit}" if linked else None}


@router.get("/models/{name:model}/compare")
def compare(
    request: Request,
    name: str,
    registry: RegistryDep,
    actor: UiActorDep,
    v: list[int] = Versions,
    only: str = Only,
) -> HTMLResponse:
    """Versions side by side; ``only=diff`` keeps the rows that differ."""
    data = browse.compare_view(registry, actor, name, v, only_diff=only == "diff")
    data["chart"] = _compare_chart(data)
    return render.page(request, "compare.html", data)


def _compare_chart(data: dict[str, Any]) -> Any:
    """The first gated metric (else the first metric) across the compared versions."""
    rows = data["metrics"]
    row = next((r for r in rows if r["gated"]), rows[0] if rows else None)
    if row is None:
        return None
    numbers = [c["version"] for c in data["columns"]]
    pairs = sorted(zip(numbers, row["values"], strict=True))
    return {"key": row["key"], "svg": line_chart(pairs, (), row["key"])}


@router.get("/models/{name:model}/history")
def history(request: Request, name: str, registry: RegistryDep, actor: UiActorDep) -> HTMLResponse:
    """Every stage change and alias move, newest first."""
    return render.page(request, "history.html", browse.history_view(registry, actor, name))


@router.get("/models/{name:model}")
def model_page(
    request: Request,
    name: str,
    registry: RegistryDep,
    actor: UiActorDep,
    q: str = Q,
    page_token: str = Token,
    metric: str = Metric,
) -> HTMLResponse:
    """One model: summary, versions with metric columns, chart, policy and activity."""
    context: dict[str, Any] = {"q": q, "metric": metric, "error": None}

    def read(filtered: bool = True) -> dict[str, Any]:
        data = browse.model_overview(
            registry,
            actor,
            name,
            q=(q.strip() or None) if filtered else None,
            page_token=(page_token or None) if filtered else None,
            metric=metric.strip() or None,
        )
        data["description_html"] = render_markdown(data["model"]["description"])
        series = data["series"]
        data["chart"] = (
            None
            if series is None
            else line_chart(
                [(p["version"], p["value"]) for p in series["points"]],
                [(m["version"], m["stage"]) for m in series["markers"]],
                series["key"],
            )
        )
        return data

    def unfiltered() -> dict[str, Any]:
        # The model around a filter that did not parse: its versions table stays empty.
        return {**read(filtered=False), "versions": [], "next_page_token": None}

    return _searched(request, "model.html", context, read, fallback=unfiltered)

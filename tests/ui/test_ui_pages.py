"""The browsing pages (issue 21, WP2): each answers HTML with its key content, pages by keyset,
shows a bad search on its own page, hides what the reader may not see exactly like what does
not exist, and downloads files as attachments.
"""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from ui_support import World, client_for, error_code, sign_in

import modelreg

pytestmark = pytest.mark.anyio

MAX_PAGE_BYTES = 300_000
NEXT = re.compile(r'<a rel="next" href="([^"]+)">')


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ["fraud", "v3", "Filter with the search language", "stage = &#39;production&#39;"]),
        ("/?q=name%20%3D%20%27fraud%27", ["fraud", "v3"]),
        ("/search", ["Search versions", "fraud", "v1", "v3"]),
        ("/search?q=metrics.acc%20%3E%200.85", ["v3", "v2"]),
        (
            "/models/fraud",
            ["<h1>fraud</h1>", "Versions", "acc", "loss", "No version in production"],
        ),
        ("/models/fraud?metric=loss", ["loss by version", '<svg class="chart"']),
        ("/models/fraud/versions/2", ["fraud v2", "model.pkl", "acc", "0.86", "Lineage"]),
        ("/models/fraud/compare?v=1&v=3", ["Compare fraud v1, v3", "best", "model.pkl"]),
        ("/models/fraud/history", ["History of fraud", "Nothing has moved yet"]),
    ],
)
async def test_every_page_answers_html_with_its_content(
    laptop: httpx.AsyncClient, path: str, expected: list[str]
) -> None:
    answer = await laptop.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert len(answer.content) < MAX_PAGE_BYTES
    for text in expected:
        assert text in answer.text, text
    assert answer.text.count("<h1") == 1


async def test_pages_show_production_and_the_delta_against_it(
    laptop_app: FastAPI, laptop: httpx.AsyncClient
) -> None:
    with modelreg.Registry(laptop_app.state.registry.settings.home) as local:
        local.promote("fraud", 2, "production", reason="ship it")
    model = (await laptop.get("/models/fraud")).text
    assert "<strong>Production:</strong>" in model
    assert 'href="/models/fraud/versions/2">v2</a>' in model
    version = (await laptop.get("/models/fraud/versions/3")).text
    assert "Production" in version
    assert 'class="num better">+0.04' in version
    history = (await laptop.get("/models/fraud/history")).text
    assert "ship it" in history


async def test_the_pager_follows_page_tokens_without_repeats(
    laptop_app: FastAPI, laptop: httpx.AsyncClient
) -> None:
    with modelreg.Registry(laptop_app.state.registry.settings.home) as local:
        for i in range(55):
            local.create_model(f"m{i:02d}")
    seen: list[str] = []
    url: str | None = "/?q=name%20LIKE%20%27m%25%27"
    pages = 0
    while url is not None:
        answer = await laptop.get(url)
        assert answer.status_code == 200
        seen += re.findall(r'<a href="/models/(m\d\d)">', answer.text)
        found = NEXT.search(answer.text)
        url = html.unescape(found[1]) if found else None
        pages += 1
    assert pages == 2
    assert seen == [f"m{i:02d}" for i in range(55)]


async def follow(http: httpx.AsyncClient, url: str | None, row: re.Pattern[str]) -> list[str]:
    """Every row ``row`` finds on ``url`` and the pages its "Next page" links lead to."""
    seen: list[str] = []
    while url is not None:
        answer = await http.get(url)
        assert answer.status_code == 200, answer.text
        seen += row.findall(answer.text)
        found = NEXT.search(answer.text)
        url = html.unescape(found[1]) if found else None
    return seen


async def test_versions_pages_follow_their_tokens_without_repeats(
    laptop_app: FastAPI, laptop: httpx.AsyncClient, files: Path
) -> None:
    with modelreg.Registry(laptop_app.state.registry.settings.home) as local:
        for i in range(52):
            local.register("fraud", files / "model.pkl", metrics={"acc": i / 100}, capture=False)
    link = re.compile(r'<td><a href="/models/fraud/versions/(\d+)">')
    newest_first = [str(n) for n in range(55, 0, -1)]
    assert await follow(laptop, "/models/fraud?metric=acc", link) == newest_first
    assert await follow(laptop, "/search?q=name%20%3D%20%27fraud%27", link) == newest_first
    # A filter keeps its pages to itself: a token of another query is refused.
    first = (await laptop.get("/models/fraud")).text
    token = html.unescape(NEXT.search(first)[1]).split("page_token=")[1]
    other = await laptop.get(f"/models/fraud?q=version%20%3E%201&page_token={token}")
    assert other.status_code == 400


@pytest.mark.parametrize(
    ("path", "box"),
    [
        ("/?q=name%20%3D", "models-q"),
        ("/search?q=metrics.acc%20%3E%3E%201", "search-q"),
        ("/models/fraud?q=nope%20%3D%201", "versions-q"),
    ],
)
async def test_a_bad_search_is_shown_on_its_page_with_400(
    laptop: httpx.AsyncClient, path: str, box: str
) -> None:
    answer = await laptop.get(path)
    assert answer.status_code == 400
    assert "not valid" in answer.text
    assert re.search(r"position \d+|unknown field", answer.text)
    # The box keeps what was typed, and says it is invalid.
    assert re.search(rf'id="{box}"[^>]*aria-invalid="true"', answer.text)


async def test_a_forged_page_token_is_refused(laptop: httpx.AsyncClient) -> None:
    answer = await laptop.get("/?page_token=not-a-token")
    assert answer.status_code == 400
    assert error_code(answer) == "invalid_input"


@pytest.mark.parametrize("numbers", [[], [1], [1, 1], list(range(1, 12))])
async def test_compare_takes_two_to_ten_versions(
    laptop: httpx.AsyncClient, numbers: list[int]
) -> None:
    query = "&".join(f"v={n}" for n in numbers)
    answer = await laptop.get(f"/models/fraud/compare?{query}")
    assert answer.status_code == 400
    assert "compare 2 to 10 different versions" in answer.text


async def test_only_diff_hides_the_rows_that_are_equal(laptop: httpx.AsyncClient) -> None:
    full = (await laptop.get("/models/fraud/compare?v=1&v=2")).text
    diff = (await laptop.get("/models/fraud/compare?v=1&v=2&only=diff")).text
    # Both versions hold the same model.pkl: a row in full, gone with only=diff.
    assert '<th scope="row">model.pkl</th>' in full
    assert "model.pkl" not in diff
    assert "Every file is the same." in diff
    assert '<th scope="row">lr <span class="status">changed</span></th>' in diff
    assert "Show everything" in diff


async def test_download_is_an_attachment_with_the_bytes(
    laptop: httpx.AsyncClient, files: Path
) -> None:
    data = (files / "model.pkl").read_bytes()
    answer = await laptop.get("/models/fraud/versions/1/files/model.pkl")
    assert answer.status_code == 200
    assert answer.content == data
    assert answer.headers["content-disposition"].startswith("attachment")
    assert answer.headers["x-content-sha256"] == hashlib.sha256(data).hexdigest()
    assert answer.headers["x-content-type-options"] == "nosniff"
    missing = await laptop.get("/models/fraud/versions/1/files/other.bin")
    assert missing.status_code == 404


async def test_a_namespaced_model_reaches_its_pages(
    laptop_app: FastAPI, laptop: httpx.AsyncClient, files: Path
) -> None:
    with modelreg.Registry(laptop_app.state.registry.settings.home) as local:
        local.register("team/churn", files / "model.pkl", metrics={"auc": 0.7}, capture=False)
        local.register("team/churn", files / "model.pkl", metrics={"auc": 0.8}, capture=False)
    for path in (
        "/models/team/churn",
        "/models/team/churn/versions/1",
        "/models/team/churn/compare?v=1&v=2",
        "/models/team/churn/history",
        "/models/team/churn/versions/2/files/model.pkl",
    ):
        assert (await laptop.get(path)).status_code == 200, path


@pytest.fixture
def outsider(world: World) -> str:
    """A user who may read ``fraud`` only; model ``secret`` exists beside it. Their token."""
    with world.registry() as local:
        local.register("secret", Path(__file__), capture=False)
        local.register("secret", Path(__file__), capture=False)
        local.create_user("pat", role="viewer", model="fraud")
        return local.create_token("pat")["token"]


PROBES = [
    "/models/{m}",
    "/models/{m}?q=version%20%3E%201",
    "/models/{m}/versions/1",
    "/models/{m}/versions/1/files/test_ui_pages.py",
    "/models/{m}/compare?v=1&v=2",
    "/models/{m}/history",
]


@pytest.mark.parametrize("probe", PROBES)
async def test_an_unreadable_model_answers_like_a_missing_one(
    world: World, outsider: str, probe: str
) -> None:
    async with client_for(world.app) as http:
        assert (await sign_in(http, outsider)).status_code == 303
        hidden = await http.get(probe.format(m="secret"))
        missing = await http.get(probe.format(m="absent"))
        readable = await http.get(probe.format(m="fraud").replace("test_ui_pages.py", "x"))
    assert hidden.status_code == missing.status_code == 404
    assert error_code(hidden) == error_code(missing) == "model_not_found"
    assert hidden.text.replace("secret", "absent") == missing.text
    assert readable.status_code != 404 or error_code(readable) != "model_not_found"


async def test_lists_leave_out_unreadable_models(world: World, outsider: str) -> None:
    async with client_for(world.app) as http:
        await sign_in(http, outsider)
        models = (await http.get("/")).text
        versions = (await http.get("/search")).text
    assert "fraud" in models
    assert "secret" not in models
    assert "secret" not in versions


async def test_a_viewer_sees_no_write_links(world: World, outsider: str) -> None:
    async with client_for(world.app) as http:
        await sign_in(http, outsider)
        for path in ("/models/fraud", "/models/fraud/versions/1"):
            page = (await http.get(path)).text
            forms = [f for f in re.findall(r"<form[^>]*>", page) if 'method="post"' in f]
            assert [re.search(r'action="([^"]+)"', f)[1] for f in forms] == ["/logout"], path

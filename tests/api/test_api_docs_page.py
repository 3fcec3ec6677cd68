"""The API docs page renders in a real browser, from the server's own files, under its CSP.

Issue 19 finding 6: FastAPI's page loaded Swagger UI from a CDN, which the server's
``default-src 'none'`` policy blocked, so ``/api/docs`` was blank. The browser test drives
Debian's Chromium (``apt-get install chromium``; ``.ci/run`` installs it) with Playwright;
without Chromium it skips, except under CI, where it fails.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from browser import RECORD_CSP, chromium_path
from modelreg.api import docs_page
from server_process import ServerProcess

pytestmark = pytest.mark.slow

STATIC = Path(docs_page.__file__).parent / "static"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("docs-page") / "registry"
    home.mkdir()
    with ServerProcess(home, ready_path="/healthz") as srv:
        yield srv


def test_the_docs_page_renders_in_chromium(server: ServerProcess, tmp_path: Path) -> None:
    """The operations list appears, every file comes from the server, nothing is refused."""
    executable = chromium_path("the browser test of the API docs page")
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    requested: list[str] = []
    with sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.add_init_script(RECORD_CSP)

            def on_console(message: Any) -> None:
                if message.type in ("error", "warning"):
                    problems.append(f"console {message.type}: {message.text}")

            def on_response(response: Any) -> None:
                if response.status >= 400:
                    problems.append(f"{response.status} {response.url}")

            page.on("console", on_console)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
            page.on("request", lambda r: requested.append(r.url))
            page.on("response", on_response)
            # No short deadline: the test machine may be busy (Playwright's default is 30 s).
            page.set_default_timeout(180_000)
            page.goto(server.url + "/api/docs")
            # The operations list, or a refusal that means it will never come.
            # (A selector, not wait_for_function: that evaluates a string, which the CSP refuses.)
            page.wait_for_selector(".opblock, [data-csp-violation]", state="attached")
            page.wait_for_load_state("networkidle")
            operations = page.locator(".opblock").count()
            title = page.evaluate(
                "document.querySelector('.information-container .title')?.textContent ?? ''"
            )
            violations = page.evaluate("window.__csp")
            page.screenshot(path=str(tmp_path / "api-docs.png"), full_page=False)
        finally:
            browser.close()
    assert violations == []
    assert problems == []
    assert operations > 20, "the operations list did not render"
    assert title.startswith("modelreg")
    foreign = [url for url in requested if not url.startswith(server.url + "/")]
    assert foreign == [], "the docs page must load nothing from another origin"
    assert server.url + "/openapi.json" in requested


def test_the_docs_page_allows_exactly_its_own_files(server: ServerProcess) -> None:
    """The page's policy names 'self' only, and the page loads no inline script."""
    page = httpx.get(server.url + "/api/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    directives = dict(d.strip().partition(" ")[::2] for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["img-src"] == "'self' data:"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert "://" not in page.text  # no absolute URL: no CDN
    assert re.findall(r"<script>", page.text) == []  # no inline script
    for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        asset = httpx.get(server.url + src)
        assert asset.status_code == 200, src
        assert asset.headers["cache-control"].startswith(("public, max-age=", "no-cache"))
        assert asset.headers["x-content-type-options"] == "nosniff"


def test_versioned_assets_are_cached_for_long_and_unknown_ones_are_404(
    server: ServerProcess,
) -> None:
    base = f"{server.url}{docs_page.SWAGGER_ASSETS}"
    bundle = httpx.get(f"{base}/swagger-ui-bundle.js")
    assert bundle.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert bundle.headers["content-type"].startswith("text/javascript")
    # The table is the whole list: no other file of the package, no path games.
    for path in (
        "swagger-ui-5.0.0/swagger-ui-bundle.js",
        f"swagger-ui-{docs_page.SWAGGER_UI_VERSION}/README.md",
        f"swagger-ui-{docs_page.SWAGGER_UI_VERSION}/../docs_page.py",
        "..%2f..%2fdocs_page.py",
        "",
    ):
        answer = httpx.get(f"{server.url}{docs_page.ASSETS}/{path}")
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == "not_found"


def test_the_vendored_swagger_ui_is_what_its_readme_records() -> None:
    """Version and digests in static/swagger-ui/README.md match the files and the code."""
    readme = (STATIC / "swagger-ui" / "README.md").read_text()
    assert f"`swagger-ui-dist` **{docs_page.SWAGGER_UI_VERSION}**" in readme
    assert "Apache-2.0" in readme
    recorded = dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", readme, re.M))
    assert "swagger-ui-bundle.js" in recorded
    assert "LICENSE" in recorded
    for name, digest in recorded.items():
        assert hashlib.sha256((STATIC / "swagger-ui" / name).read_bytes()).hexdigest() == digest
    served = {name for name, _, _ in docs_page._FILES.values()}
    assert {f"swagger-ui/{name}" for name in recorded} >= served - {"docs.js"}

"""The web UI in a real browser: Debian's Chromium, driven by Playwright, against a real
``modelreg server`` on loopback (issue 21 §7).

The flows a team lives in: sign in, find a model, open a version, compare; a contributor
requests a promotion, an approver approves it and rolls it back, and history and audit show
every step; a viewer sees no action and a forged form is refused; hostile values everywhere
run no script. Each test seeds its own model, so they run in any order and on any worker.
Every page is watched for CSP violations, console errors and failed requests; screenshots
go to the test's temporary folder.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import modelreg
from browser import chromium_path, launch, watch
from server_process import ServerProcess

pytestmark = pytest.mark.slow

ROLES = {"root": "admin", "ann": "contributor", "appr": "approver", "vic": "viewer"}


class Site:
    """A real server on a registry with users, and a browser with one context per user."""

    def __init__(self, server: ServerProcess, tokens: dict[str, str], browser: Any) -> None:
        self.server = server
        self.tokens = tokens
        self.browser = browser
        self.problems: list[str] = []

    def registry(self) -> modelreg.Registry:
        """The embedded registry on the server's folder (the owner), for seeding."""
        return modelreg.Registry(self.server.home)

    def seed(self, files: Path) -> str:
        """A fresh model ``m-…`` with v1 in production and v2, v3 registered after a gate."""
        name = f"m-{uuid.uuid4().hex[:8]}"
        local = self.registry()
        for acc in (0.82, 0.86, 0.91):
            local.register(
                name,
                files / "model.pkl",
                metrics={"acc": acc, "loss": 1 - acc},
                params={"depth": int(acc * 10)},
                capture=False,
            )
        local.promote(name, 1, to="production", reason="first")
        local.set_policy_rule(name, "production", requires=["metrics.acc >= 0.8"], approvals=1)
        local.close()
        return name

    def user(self, name: str) -> Any:
        """A page signed in as ``name`` through the sign-in form."""
        context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        watch(page, self.problems)
        # Dangerous forms ask first (``data-confirm``); Playwright would dismiss the question.
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(self.server.url + "/login")
        page.get_by_label("API token").fill(self.tokens[name])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(self.server.url + "/")
        return page

    def csp_violations(self, page: Any) -> list[str]:
        """What the page's policy blocked so far."""
        return list(page.evaluate("window.__csp || []"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    executable = chromium_path("the web UI's browser tests")
    from playwright.sync_api import sync_playwright

    home = tmp_path_factory.mktemp("ui-browser") / "registry"
    home.mkdir()
    local = modelreg.Registry(home)
    for name, role in ROLES.items():
        local.create_user(name, role=role)
    tokens = {name: local.create_token(name)["token"] for name in ROLES}
    local.close()
    with ServerProcess(home) as server, sync_playwright() as pw:
        browser = launch(pw, executable)
        try:
            yield Site(server, tokens, browser)
        finally:
            browser.close()


def test_sign_in_search_open_compare(site: Site, files: Path, tmp_path: Path) -> None:
    name = site.seed(files)
    page = site.user("vic")
    # Find it with the search language, from the header's box.
    page.get_by_label("Search versions").fill(f"name = '{name}' AND metrics.acc > 0.85")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?"))
    rows = page.locator("main table tbody tr")
    assert rows.count() == 2
    page.screenshot(path=str(tmp_path / "search.png"))
    # The model page, then one version.
    page.goto(f"{site.server.url}/models/{name}")
    assert page.get_by_role("heading", level=1).inner_text().strip().startswith(name)
    page.screenshot(path=str(tmp_path / "model.png"), full_page=True)
    page.goto(f"{site.server.url}/models/{name}/versions/2")
    assert "0.86" in page.locator("main").inner_text()
    page.screenshot(path=str(tmp_path / "version.png"), full_page=True)
    # Compare two versions: the metrics differ, the best is marked.
    page.goto(f"{site.server.url}/models/{name}/compare?v=1&v=3")
    text = page.locator("main").inner_text()
    assert "acc" in text
    assert "0.91" in text
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    assert site.csp_violations(page) == []
    assert site.problems == []


def test_promote_then_approve_by_another_then_rollback(
    site: Site, files: Path, tmp_path: Path
) -> None:
    name = site.seed(files)
    ann = site.user("ann")
    ann.goto(f"{site.server.url}/models/{name}/versions/3")
    ann.get_by_label("Promote to").select_option("production")
    ann.get_by_role("button", name="Promote", exact=True).click()
    # The gates' evaluation is shown before anything is sent.
    ann.wait_for_url(re.compile(r"/promote\?to=production"))
    assert "metrics.acc >= 0.8" in ann.locator("main").inner_text()
    ann.get_by_label("Reason").fill("v3 beats v1 on acc")
    ann.get_by_role("button", name="Request promotion").click()
    ann.wait_for_url(re.compile(r"/promotions/\d+"))
    request_url = ann.url
    # The requester never sees Approve on their own request.
    assert ann.get_by_role("button", name="Approve").count() == 0
    ann.screenshot(path=str(tmp_path / "request.png"), full_page=True)

    appr = site.user("appr")
    appr.goto(f"{site.server.url}/promotions")
    assert name in appr.locator("main").inner_text()
    appr.screenshot(path=str(tmp_path / "inbox.png"), full_page=True)
    appr.goto(request_url)
    appr.get_by_role("button", name="Approve").click()
    appr.wait_for_load_state()
    local = site.registry()
    assert local.get_model(name).stages["production"] == 3
    # Roll back: production goes back to v1.
    appr.goto(f"{site.server.url}/models/{name}")
    appr.get_by_label("Reason (required)").fill("v3 misbehaves in shadow traffic")
    appr.get_by_role("button", name="Roll back").click()
    appr.wait_for_load_state()
    assert local.get_model(name).stages["production"] == 1
    local.close()
    # History and audit show every step.
    appr.goto(f"{site.server.url}/models/{name}/history")
    history = appr.locator("main").inner_text().lower()
    assert "rollback" in history or "rolled back" in history
    appr.screenshot(path=str(tmp_path / "history.png"), full_page=True)
    appr.goto(f"{site.server.url}/audit?model={name}")
    audit = appr.locator("main").inner_text()
    for action in ("promotion", "approve", "rollback"):
        assert action in audit.lower(), action
    appr.screenshot(path=str(tmp_path / "audit.png"), full_page=True)
    for page in (ann, appr):
        assert site.csp_violations(page) == []
    assert site.problems == []


def test_viewer_sees_no_actions_and_forged_post_is_refused(site: Site, files: Path) -> None:
    name = site.seed(files)
    vic = site.user("vic")
    for path in (f"/models/{name}", f"/models/{name}/versions/3", "/promotions"):
        vic.goto(site.server.url + path)
        forms = vic.locator("form[method=post]")
        actions = {forms.nth(i).get_attribute("action") for i in range(forms.count())}
        assert actions <= {"/logout"}, (path, actions)
    # A forged form with the viewer's own valid CSRF token: refused by the permission check.
    token = vic.locator("input[name=csrf]").first.get_attribute("value")
    answer = vic.context.request.post(
        f"{site.server.url}/models/{name}/rollback",
        form={"csrf": token, "stage": "production", "reason": "forged"},
        max_redirects=0,
    )
    assert answer.status == 403
    local = site.registry()
    assert local.get_model(name).stages["production"] == 1
    local.close()


HOSTILE = '"><script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'
HOSTILE_MD = (
    "[click me](javascript:window.__pwned=1) <script>window.__pwned=1</script>\n\n"
    "![x](https://evil.example/x.png) <b onmouseover=window.__pwned=1>bold</b> " + "ü∑ß" * 3000
)


def _hostile_model(site: Site, tmp_path: Path) -> str:
    """A model whose every free-text field holds markup, script and long unicode."""
    name = f"h-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "hostile"
    # File names allow no markup (paths.validate_manifest_path): the oddest allowed ones.
    (folder / "{x} [y] (z)").mkdir(parents=True)
    (folder / "{x} [y] (z)" / "a,b=c@d~e+f.txt").write_text("x")
    local = site.registry()
    for acc in (0.9, 0.95):
        local.register(
            name,
            folder,
            metrics={"acc": acc},
            params={"p": HOSTILE, "long": "ü" * 5000},
            tags={"t": HOSTILE},
            description=HOSTILE_MD,
            datasets=["d@" + uuid.uuid4().hex],
            capture=False,
        )
    local.set_description(name, HOSTILE_MD)
    local.set_tags(name, {"team": HOSTILE})
    local.set_alias(name, "champion", 1)
    local.promote(name, 1, to="production", reason=HOSTILE)
    local.set_policy_rule(name, "production", requires=["metrics.acc >= 0.5"], approvals=1)
    local.promote(name, 2, to="production", reason=HOSTILE)  # waits for an approval
    local.create_token("root", label=HOSTILE)
    local.close()
    return name


def _get_routes() -> list[str]:
    """Every GET route of the web UI, as a path template."""
    from modelreg.api.app import create_app, iter_routes
    from modelreg.api.ui import is_ui_path
    from modelreg.config import Settings

    app = create_app(Settings(home=Path("/nonexistent"), db="sqlite://"))
    paths = sorted({r.path for r in iter_routes(app) if "GET" in r.methods and is_ui_path(r.path)})
    app.state.registry.engine.dispose()
    return paths


def test_hostile_values_run_no_script(site: Site, tmp_path: Path) -> None:
    name = _hostile_model(site, tmp_path)
    local = site.registry()
    request_id = local.promotions(name, state="pending").items[0].id
    local.close()
    values = {
        "name": name,
        "number": "2",
        "request_id": str(request_id),
        "path": "x.txt",
    }
    skip = {"/static/{release}/{name}", "/models/{name:model}/versions/{number}/files/{path:path}"}
    urls = []
    for template in _get_routes():
        if template in skip:
            continue
        url = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m[1]], template)
        urls.append(url + ("?v=1&v=2" if url.endswith("/compare") else ""))
    assert len(urls) >= 12, urls
    page = site.user("root")
    for url in urls:
        answer = page.goto(site.server.url + url)
        assert answer is not None
        assert answer.status < 500, (url, answer.status)
        assert page.evaluate("typeof window.__pwned") == "undefined", url
        assert site.csp_violations(page) == [], url
    # The values show as text.
    page.goto(f"{site.server.url}/models/{name}/versions/2")
    assert "<script>window.__pwned=1</script>" in page.locator("main").inner_text()
    page.goto(f"{site.server.url}/models/{name}")
    assert page.locator("main a[href^='javascript:']").count() == 0
    assert page.locator("main img[src^='https://evil']").count() == 0
    assert site.problems == []

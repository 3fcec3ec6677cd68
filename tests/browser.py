"""Debian's Chromium driven by Playwright, for the browser tests (API docs page, web UI).

Playwright's own browser download cannot be reached here, so tests launch the ``chromium``
binary Debian's package puts on ``PATH``; ``.ci/run`` installs it. Without it a test skips,
except under CI, where it fails: CI must run the browser tests.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser")

# Records Content-Security-Policy violations where the test can read them (a page's own
# script could not report them: the policy forbids inline script).
RECORD_CSP = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation', e => {"
    " window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);"
    " document.documentElement.setAttribute('data-csp-violation', '');"
    "});"
)


def chromium_path(what: str = "the browser tests") -> str:
    """Debian's Chromium, or a skip (a failure under CI, which must run ``what``)."""
    found = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    reason = ""
    if found is None:
        reason = "Chromium is not installed (Debian: apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (pip install -e '.[dev]')"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run {what}")
        pytest.skip(reason)
    assert found is not None
    return found


def launch(pw: Any, executable: str) -> Any:
    """A headless Chromium (``--no-sandbox``: CI runs as root, where its sandbox cannot start)."""
    return pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])


def watch(page: Any, problems: list[str]) -> None:
    """Record CSP violations, console errors, page errors and failed requests of ``page``."""
    page.add_init_script(RECORD_CSP)

    def on_console(message: Any) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"console {message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_failed(request: Any) -> None:
        # Chromium fetches the favicon after the page and aborts that fetch when the test has
        # already navigated on: a race of the browser's, not a failure of the page.
        if request.url.endswith("/favicon.svg") and "ERR_ABORTED" in str(request.failure):
            return
        problems.append(f"failed: {request.url} {request.failure}")

    page.on("requestfailed", on_failed)
    # No short deadline: the test machine may be busy (Playwright's default is 30 s).
    page.set_default_timeout(180_000)

"""``GET /`` (issue 19, item 13): MLflow's run links (``/#/experiments/0/runs/…``) reach the
server as ``GET /``, which answers a short, static page instead of a 404.

The page is safe by construction: one constant, whatever the request carries, served as
``text/html; charset=utf-8`` under the same headers (CSP ``default-src 'none'``) as every
answer.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from modelreg.api.routes.home import PAGE
from server_process import ThreadedServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    home: Path = tmp_path_factory.mktemp("home-page") / "registry"
    home.mkdir()
    with ThreadedServer(create_app(Settings.for_home(home))) as srv:
        yield srv


def test_the_root_says_what_the_server_is_and_where_things_are(server) -> None:
    response = httpx.get(server.url + "/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["x-content-type-options"] == "nosniff"
    page = response.text
    for where in ("/api/v1", "/api/docs", "/api/2.0/mlflow", "runs/get?run_id=", "web UI"):
        assert where in page, where
    assert "<script" not in page.lower()


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/?q=<script>alert(1)</script>", {}),
        ("/?run_id=%22%3E%3Cimg%20src=x%3E", {"referer": "http://evil.example/<b>x</b>"}),
        ("/", {"user-agent": "<script>1</script>", "x-forwarded-host": "evil.example"}),
    ],
)
def test_security_the_root_page_reflects_nothing_of_the_request(
    server, path: str, headers: dict[str, str]
) -> None:
    response = httpx.get(server.url + path, headers=headers)
    assert response.status_code == 200
    assert response.text == PAGE

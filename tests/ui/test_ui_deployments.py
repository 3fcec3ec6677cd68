"""Deployments in the web UI (issue 23 §5): the model page lists its serve processes with their
status (a stale heartbeat shown as stale), and ``/deployments`` lists those of every model the
reader may read; what a process reported is shown escaped, never as markup.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from ui_support import World

from modelreg.db.tables import Deployment
from modelreg.services import deployments
from modelreg.services.actor import Actor
from modelreg.services.usecases import deployments as usecase

pytestmark = pytest.mark.anyio

OWNER = Actor("owner")
_BADGE = re.compile(r'<span class="badge state-(\w+)"[^>]*>(live|stale|stopped)</span>')


def report(app: Any, *, ref: str = "models:/fraud/production", **changes: Any) -> str:
    """A deployment reported straight through the use-case the API calls."""
    dep = str(uuid.uuid4())
    fields: dict[str, Any] = {
        "ref": ref,
        "live_version": 3,
        "address": "http://10.0.3.7:9000",
        "hostname": "web-7",
        "pid": 4242,
        "started_at": datetime.now(UTC),
        **changes,
    }
    usecase.report(app.state.registry, OWNER, dep, deployments.Report(**fields))
    return dep


def age(app: Any, dep: str, by: timedelta) -> None:
    with app.state.registry.write() as session:
        session.execute(
            update(Deployment)
            .where(Deployment.id == uuid.UUID(dep))
            .values(heartbeat_at=datetime.now(UTC) - by)
        )


async def test_the_model_page_lists_its_deployments(
    laptop_app: Any, laptop: httpx.AsyncClient
) -> None:
    empty = await laptop.get("/models/fraud")
    assert "None reported" in empty.text
    report(laptop_app, address="http://10.0.3.7:9000")
    stale = report(laptop_app, address="http://10.0.3.8:9000", last_error="boom\nValueError: v4")
    age(laptop_app, stale, timedelta(seconds=40))

    page = await laptop.get("/models/fraud")
    assert page.status_code == 200
    assert "http://10.0.3.7:9000" in page.text
    assert "http://10.0.3.8:9000" in page.text
    assert sorted(_BADGE.findall(page.text)) == [("applied", "live"), ("pending", "stale")]
    assert "ValueError: v4" in page.text
    assert 'href="/models/fraud/versions/3"' in page.text
    assert 'href="/deployments?model=fraud"' in page.text


async def test_the_deployments_page(laptop_app: Any, laptop: httpx.AsyncClient) -> None:
    page = await laptop.get("/deployments")
    assert page.status_code == 200
    assert "No deployments" in page.text
    gone = report(laptop_app, ref="fraud@champion", live_version=None)
    age(laptop_app, gone, timedelta(minutes=10))
    report(laptop_app)

    page = await laptop.get("/deployments")
    assert sorted(_BADGE.findall(page.text)) == [("applied", "live"), ("refused", "stopped")]
    assert "fraud@champion" in page.text
    assert "none loaded" in page.text
    assert 'href="/models/fraud"' in page.text  # the model column

    one = await laptop.get("/deployments?model=fraud")
    assert "Deployments of" in one.text
    assert len(_BADGE.findall(one.text)) == 2

    missing = await laptop.get("/deployments?model=nosuch")
    assert missing.status_code == 404


async def test_pages_of_deployments(laptop_app: Any, laptop: httpx.AsyncClient) -> None:
    for _ in range(3):
        report(laptop_app)
    with pytest.MonkeyPatch.context() as patch:
        from modelreg.api.ui import deployments as page_module

        patch.setattr(page_module, "PAGE_SIZE", 2)
        first = await laptop.get("/deployments")
        assert len(_BADGE.findall(first.text)) == 2
        following = re.search(r'<a rel="next" href="([^"]+)">', first.text)
        assert following is not None
        second = await laptop.get(following[1].replace("&amp;", "&"))
        assert len(_BADGE.findall(second.text)) == 1


async def test_what_a_process_reports_is_escaped(
    laptop_app: Any, laptop: httpx.AsyncClient
) -> None:
    report(
        laptop_app,
        address='"><script>alert(1)</script>',
        hostname="<b>host</b>",
        last_error="<img src=x onerror=alert(1)>",
    )
    for path in ("/deployments", "/models/fraud"):
        page = await laptop.get(path)
        assert "<script>alert(1)" not in page.text, path
        assert "<img src=x" not in page.text, path
        assert "<b>host</b>" not in page.text, path
        assert "&lt;script&gt;" in page.text, path


async def test_a_viewer_sees_deployments(world: World, as_user: Callable[[str], Any]) -> None:
    report(world.app)
    async with as_user("vic") as http:
        page = await http.get("/deployments")
        assert page.status_code == 200
        assert _BADGE.findall(page.text) == [("applied", "live")]
        model = await http.get("/models/fraud")
        assert _BADGE.findall(model.text) == [("applied", "live")]

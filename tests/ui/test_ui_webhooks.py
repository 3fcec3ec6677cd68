"""The ``/webhooks`` page (issue 22 §7): subscriptions, their recent deliveries with status, an
add form whose answer shows the secret once, test, rotate, remove and redeliver buttons; the
same checks as the API (a viewer manages nothing, a model admin only their model's), every
refusal shown with the CLI's message and nothing changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from ui_support import World, client_for, error_code, post_form, sign_in, snapshot

from modelreg.services.actor import Actor
from modelreg.services.usecases import notify

pytestmark = pytest.mark.anyio

OWNER = Actor("owner")
_SECRET = re.compile(r'<code class="ref" data-copy="(whsec_[^"]+)">')
_POST_FORM = re.compile(r'<form[^>]*method="post"[^>]*>', re.IGNORECASE)


def path_of(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text[:2000]
    return answer.headers["location"]


async def test_add_test_redeliver_rotate_remove(laptop_app: Any, laptop: httpx.AsyncClient) -> None:
    reg = laptop_app.state.registry
    page = await laptop.get("/webhooks")
    assert page.status_code == 200
    assert "No subscriptions yet" in page.text
    created = await post_form(
        laptop,
        "/webhooks",
        "/webhooks",
        {
            "kind": "webhook",
            "url": "https://ci.example.com/h?key=k3y",
            "events": "registry:version:*",
            "model": "fraud",
        },
    )
    assert created.status_code == 200  # the POST's own answer: no redirect to reload
    assert created.headers["cache-control"] == "no-store"
    secret = _SECRET.search(created.text)
    assert secret is not None
    (hook,) = notify.list_webhooks(reg, OWNER)
    assert hook["model_only"] is True

    page = await laptop.get("/webhooks")
    assert secret[1] not in page.text
    assert "k3y" not in page.text
    assert "https://ci.example.com/h?…" in page.text

    assert path_of(await post_form(laptop, "/webhooks", "/webhooks/test", {"id": hook["id"]})) == (
        "/webhooks?done=queued"
    )
    page = await laptop.get("/webhooks")
    assert "modelreg:test" in page.text
    assert "pending" in page.text
    (delivery,) = notify.deliveries(reg, OWNER, None, False, 10, None)["items"]
    answer = await post_form(laptop, "/webhooks", "/webhooks/redeliver", {"id": delivery["id"]})
    assert path_of(answer) == "/webhooks?done=queued"
    only = await laptop.get(f"/webhooks?webhook={hook['id']}&failed=true")
    assert "No deliveries that failed" in only.text

    rotated = await post_form(
        laptop, "/webhooks", "/webhooks/rotate", {"id": hook["id"], "overlap_hours": "24"}
    )
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    new = _SECRET.search(rotated.text)
    assert new is not None
    assert new[1] != secret[1]
    assert path_of(
        await post_form(laptop, "/webhooks", "/webhooks/remove", {"id": hook["id"]})
    ) == ("/webhooks?done=removed")
    assert notify.list_webhooks(reg, OWNER) == []

    slack = await post_form(
        laptop,
        "/webhooks",
        "/webhooks",
        {"kind": "slack", "url": "https://hooks.slack.com/services/T/B/XSECRET", "model": "*"},
    )
    assert path_of(slack) == "/webhooks?done=saved"  # no signing secret to show
    assert "XSECRET" not in (await laptop.get("/webhooks")).text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "webhook", "url": "ftp://example.com/"}, "http:// or https://"),
        ({"kind": "webhook", "url": "https://u:p@example.com/"}, "user name or password"),
        ({"kind": "webhook", "url": "https://e.com/", "events": "registry:nothing"}, "no event"),
        ({"kind": "email", "to": "nobody"}, "not an e-mail address"),
        ({"kind": "pigeon", "url": "https://e.com/"}, "unknown kind"),
    ],
)
async def test_bad_input_is_shown_and_changes_nothing(
    laptop_app: Any, laptop: httpx.AsyncClient, data: dict[str, str], message: str
) -> None:
    before = snapshot(laptop_app)
    answer = await post_form(laptop, "/webhooks", "/webhooks", {"model": "*", **data})
    assert answer.status_code == 400
    assert error_code(answer) == "invalid_input"
    assert message in answer.text
    assert snapshot(laptop_app) == before


async def test_a_viewer_manages_nothing(world: World, as_user: Callable[[str], Any]) -> None:
    hook = notify.create(
        world.app.state.registry,
        OWNER,
        notify.sealer_for(world.app.state.registry.settings),
        notify.webhooks.NewWebhook(url="https://e.com/"),
    )
    async with as_user("vic") as http:
        page = await http.get("/webhooks")
        assert page.status_code == 200
        assert "You manage no subscriptions" in page.text
        assert hook["id"] not in page.text
        assert _POST_FORM.findall(page.text) == [
            '<form action="/logout" method="post" class="inline">'
        ]
        before = snapshot(world.app)
        # A forged form with a valid CSRF token (from another page) is refused all the same.
        shown = await http.get("/promotions")
        token = re.search(r'name="csrf" value="([^"]*)"', shown.text)
        assert token is not None
        for action, data in [
            ("/webhooks", {"url": "https://e.com/x"}),
            ("/webhooks/remove", {"id": hook["id"]}),
            ("/webhooks/test", {"id": hook["id"]}),
            ("/webhooks/rotate", {"id": hook["id"]}),
        ]:
            answer = await http.post(action, data={**data, "csrf": token[1]})
            assert answer.status_code == 403, action
            assert error_code(answer) == "permission_denied", action
        assert snapshot(world.app) == before


async def test_a_model_admin_sees_and_manages_only_their_model(world: World) -> None:
    reg = world.app.state.registry
    with world.registry() as folder:
        folder.create_user("mia", role="admin", model="fraud")
        token = str(folder.create_token("mia").token)
    wide = notify.create(
        reg,
        OWNER,
        notify.sealer_for(reg.settings),
        notify.webhooks.NewWebhook(url="https://e.com/all"),
    )
    async with client_for(world.app) as http:
        assert (await sign_in(http, token)).status_code == 303
        page = await http.get("/webhooks")
        assert "Model (one you administer)" in page.text
        assert wide["id"] not in page.text
        refused = await post_form(
            http, "/webhooks", "/webhooks", {"url": "https://e.com/", "model": "*"}
        )
        assert refused.status_code == 403
        before = snapshot(world.app)
        missing = await post_form(http, "/webhooks", "/webhooks/remove", {"id": wide["id"]})
        assert missing.status_code == 404
        assert snapshot(world.app) == before
        created = await post_form(
            http, "/webhooks", "/webhooks", {"url": "https://e.com/", "model": "fraud"}
        )
        assert created.status_code == 200
        page = await http.get("/webhooks")
    assert [h["model"] for h in notify.list_webhooks(reg, OWNER) if h["model_only"]] == ["fraud"]
    assert "https://e.com/" in page.text

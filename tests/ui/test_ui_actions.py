"""The web UI's actions (issue 21 §1 "Actions"): each form POST, with its CSRF token, answers 303
and does what the API's use-case does; the effect is read back through the use-case layer and
the audit log. Refusals re-render their form (a refused promotion: 422 with every failed
criterion and the value seen; a rejection without a reason: 400); the requester never sees
"Approve" and a forged approval is refused (403).

``world`` (tests/ui/conftest.py): users root (admin), ann (contributor), appr (approver) and
vic (viewer); ``fraud`` v1–v3 with acc 0.7, 0.85, 0.9; production needs ``metrics.acc >= 0.8``
and one approval.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from ui_support import World, csrf_of, error_code, post_form

from modelreg.api.ui import render
from modelreg.services.actor import Actor
from modelreg.services.usecases import admin, catalog, governance

pytestmark = pytest.mark.anyio

OWNER = Actor("owner")  # reads back effects as the registry's owner
_SECRET = re.compile(r'<code class="ref" data-copy="([^"]+)">')
_POST_FORM = re.compile(r'<form[^>]*method="post"[^>]*>', re.IGNORECASE)


def stage_of(world: World, number: int) -> str:
    return str(catalog.get_version(world.app.state.registry, OWNER, f"fraud:{number}")["stage"])


def last_event(world: World) -> dict[str, Any]:
    events = admin.audit_page(world.app.state.registry, OWNER, None, None, 1)["items"]
    return dict(events[0])


def request_of(world: World, request_id: int) -> dict[str, Any]:
    return governance.get_promotion(world.app.state.registry, OWNER, request_id)


def pending_request(world: World, number: int = 3, by: str = "ann") -> int:
    """A pending production request for ``fraud:number`` made by ``by`` through the use-case."""
    answer = governance.promote(
        world.app.state.registry, Actor(by), "fraud", number, "production", "ship", False, None
    )
    assert answer["state"] == "pending"
    return int(answer["id"])


def in_production(world: World, number: int) -> None:
    """Move ``fraud:number`` to production through a request and an approval."""
    rid = pending_request(world, number, by="someone")
    governance.approve(world.app.state.registry, Actor("another"), rid, "")


def path_of(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text[:2000]
    return answer.headers["location"]


# -- promote -----------------------------------------------------------------------------------


async def test_the_promote_page_shows_the_gates_before_submitting(
    world: World, as_user: Callable[[str], Any]
) -> None:
    async with as_user("ann") as http:
        page = await http.get("/models/fraud/versions/1/promote?to=production")
    assert page.status_code == 200
    assert "metrics.acc &gt;= 0.8" in page.text
    assert "metrics.acc = 0.7" in page.text
    assert "would be refused" in page.text


async def test_promote_applied_goes_to_the_version_page(
    world: World, as_user: Callable[[str], Any]
) -> None:
    async with as_user("ann") as http:
        answer = await post_form(
            http,
            "/models/fraud/versions/2/promote?to=staging",
            "/models/fraud/versions/2/promote",
            {"to": "staging", "reason": "try it"},
        )
    assert path_of(answer) == "/models/fraud/versions/2?done=promoted"
    assert stage_of(world, 2) == "staging"
    event = last_event(world)
    assert event["actor"] == "ann"
    assert event["action"] == "registry:version:stage"
    assert event["reason"] == "try it"


async def test_promote_pending_goes_to_the_request(
    world: World, as_user: Callable[[str], Any]
) -> None:
    async with as_user("ann") as http:
        answer = await post_form(
            http,
            "/models/fraud/versions/3/promote?to=production",
            "/models/fraud/versions/3/promote",
            {"to": "production", "reason": "better"},
        )
        location = path_of(answer)
        shown = await http.get(location)
    rid = int(re.fullmatch(r"/promotions/(\d+)\?done=requested", location)[1])  # type: ignore[index]
    assert request_of(world, rid)["state"] == "pending"
    assert stage_of(world, 3) == "none"
    assert last_event(world)["action"] == "registry:promotion:promote"
    assert "Promotion requested" in shown.text


async def test_promote_refused_lists_each_criterion_with_the_value_seen(
    world: World, as_user: Callable[[str], Any]
) -> None:
    async with as_user("ann") as http:
        answer = await post_form(
            http,
            "/models/fraud/versions/1/promote?to=production",
            "/models/fraud/versions/1/promote",
            {"to": "production", "reason": "please"},
        )
    assert answer.status_code == 422
    assert "Refused" in answer.text
    assert "metrics.acc &gt;= 0.8" in answer.text
    assert "metrics.acc = 0.7" in answer.text
    assert ">please</textarea>" in answer.text  # the form keeps what was typed
    assert stage_of(world, 1) == "none"
    event = last_event(world)
    assert event["action"] == "registry:promotion:promote"
    assert event["after"]["state"] == "refused"


# -- approve and reject ------------------------------------------------------------------------


async def test_the_requester_sees_no_approve_and_a_forged_one_is_refused(
    world: World, as_user: Callable[[str], Any]
) -> None:
    rid = pending_request(world, by="ann")
    async with as_user("ann") as http:
        page = await http.get(f"/promotions/{rid}")
        assert page.status_code == 200
        assert ">Approve</button>" not in page.text
        assert ">Withdraw</button>" in page.text
        inbox = await http.get("/promotions")
        assert ">Approve</button>" not in inbox.text
        forged = await http.post(
            f"/promotions/{rid}/approve", data={"csrf": csrf_of(page.text), "reason": ""}
        )
    assert forged.status_code == 403
    assert error_code(forged) == "permission_denied"
    assert request_of(world, rid)["state"] == "pending"
    assert request_of(world, rid)["approvals"] == []


async def test_an_approver_approves_and_the_version_moves(
    world: World, as_user: Callable[[str], Any]
) -> None:
    rid = pending_request(world, by="ann")
    async with as_user("appr") as http:
        inbox = await http.get("/promotions")
        assert ">Approve</button>" in inbox.text
        assert 'class="count"' in inbox.text  # the header's inbox count
        answer = await post_form(
            http, f"/promotions/{rid}", f"/promotions/{rid}/approve", {"reason": "lgtm"}
        )
    assert path_of(answer) == f"/promotions/{rid}?done=approved"
    assert request_of(world, rid)["state"] == "applied"
    assert stage_of(world, 3) == "production"
    actions = [
        e["action"]
        for e in admin.audit_page(world.app.state.registry, OWNER, None, None, 3)["items"]
    ]
    assert "registry:promotion:approve" in actions


async def test_an_approval_that_finds_the_gates_failing_refuses(
    world: World, as_user: Callable[[str], Any]
) -> None:
    rid = pending_request(world, by="ann")
    governance.set_rule(
        world.app.state.registry,
        OWNER,
        "fraud",
        "production",
        {"requires": ["metrics.acc >= 0.95"], "approvals": 1},
    )
    async with as_user("appr") as http:
        answer = await post_form(
            http, f"/promotions/{rid}", f"/promotions/{rid}/approve", {"reason": ""}
        )
        page = await http.get(path_of(answer))
    assert path_of(answer) == f"/promotions/{rid}?done=refused"
    assert request_of(world, rid)["state"] == "refused"
    assert "metrics.acc &gt;= 0.95" in page.text
    assert "metrics.acc = 0.9" in page.text
    assert stage_of(world, 3) == "none"


async def test_reject_needs_a_reason_and_the_form_comes_back(
    world: World, as_user: Callable[[str], Any]
) -> None:
    rid = pending_request(world, by="ann")
    async with as_user("appr") as http:
        empty = await post_form(
            http, f"/promotions/{rid}", f"/promotions/{rid}/reject", {"reason": "  "}
        )
        assert empty.status_code == 400
        assert "needs a reason" in empty.text
        assert f'action="/promotions/{rid}/reject"' in empty.text
        assert request_of(world, rid)["state"] == "pending"
        answer = await post_form(
            http, f"/promotions/{rid}", f"/promotions/{rid}/reject", {"reason": "not yet"}
        )
    assert path_of(answer) == f"/promotions/{rid}?done=rejected"
    assert request_of(world, rid)["state"] == "rejected"
    event = last_event(world)
    assert (event["action"], event["actor"], event["reason"]) == (
        "registry:promotion:reject",
        "appr",
        "not yet",
    )


async def test_the_inbox_filters_by_state(world: World, as_user: Callable[[str], Any]) -> None:
    rid = pending_request(world, by="ann")
    governance.reject(world.app.state.registry, Actor("appr"), rid, "no")
    async with as_user("appr") as http:
        rejected = await http.get("/promotions?state=rejected")
        pending = await http.get("/promotions?state=pending")
        bad = await http.get("/promotions?state=nonsense")
    assert f"#{rid}" in rejected.text
    assert "Nothing is waiting" in pending.text
    assert f"#{rid}" in pending.text  # under "Recently decided"
    assert bad.status_code == 400


# -- rollback, aliases, descriptions, tags -------------------------------------------------------


async def test_rollback_puts_back_the_previous_production_version(
    world: World, as_user: Callable[[str], Any]
) -> None:
    in_production(world, 2)
    in_production(world, 3)
    async with as_user("appr") as http:
        answer = await post_form(
            http,
            "/promotions",
            "/models/fraud/rollback",
            {"stage": "production", "reason": "incident 7"},
        )
    assert path_of(answer) == "/models/fraud?done=rolled_back"
    assert stage_of(world, 2) == "production"
    assert stage_of(world, 3) != "production"
    assert any(
        e["action"] == "registry:model:rollback" and e["reason"] == "incident 7"
        for e in admin.audit_page(world.app.state.registry, OWNER, None, None, 5)["items"]
    )


async def test_set_and_delete_an_alias(world: World, as_user: Callable[[str], Any]) -> None:
    async with as_user("ann") as http:
        answer = await post_form(
            http,
            "/promotions",
            "/models/fraud/aliases",
            {"alias": "@champion", "version": "2", "reason": "best so far"},
        )
        assert path_of(answer) == "/models/fraud/versions/2?done=alias_set"
        version = catalog.get_version(world.app.state.registry, OWNER, "fraud@champion")
        assert version["version"] == 2
        assert last_event(world)["action"] == "registry:alias:set"
        gone = await post_form(
            http, "/promotions", "/models/fraud/aliases/champion/delete", {"reason": ""}
        )
    assert path_of(gone) == "/models/fraud?done=alias_deleted"
    assert catalog.get_model(world.app.state.registry, OWNER, "fraud")["aliases"] == {}
    assert last_event(world)["action"] == "registry:alias:delete"


@pytest.mark.parametrize(
    ("action", "data", "where", "back"),
    [
        ("/models/fraud/describe", {"description": "# Fraud\r\nscores"}, "fraud", "/models/fraud"),
        (
            "/models/fraud/versions/2/describe",
            {"description": "v2 notes"},
            "fraud:2",
            "/models/fraud/versions/2",
        ),
    ],
)
async def test_descriptions(
    world: World,
    as_user: Callable[[str], Any],
    action: str,
    data: dict[str, str],
    where: str,
    back: str,
) -> None:
    async with as_user("ann") as http:
        answer = await post_form(http, "/promotions", action, data)
    assert path_of(answer) == f"{back}?done=saved"
    reg = world.app.state.registry
    read = catalog.get_version if ":" in where else catalog.get_model
    assert read(reg, OWNER, where)["description"] == data["description"].replace("\r\n", "\n")
    assert last_event(world)["action"].endswith(":describe")


@pytest.mark.parametrize(
    ("base", "where", "back"),
    [
        ("/models/fraud", "fraud", "/models/fraud"),
        ("/models/fraud/versions/2", "fraud:2", "/models/fraud/versions/2"),
    ],
)
async def test_tags_set_and_remove(
    world: World, as_user: Callable[[str], Any], base: str, where: str, back: str
) -> None:
    reg = world.app.state.registry
    read = catalog.get_version if ":" in where else catalog.get_model
    async with as_user("ann") as http:
        answer = await post_form(
            http, "/promotions", f"{base}/tags", {"key": "team", "value": "risk"}
        )
        assert path_of(answer) == f"{back}?done=saved"
        assert read(reg, OWNER, where)["tags"] == {"team": "risk"}
        assert last_event(world)["action"].endswith(":tag")
        removed = await post_form(http, "/promotions", f"{base}/tags", {"delete": "team"})
    assert path_of(removed) == f"{back}?done=saved"
    assert read(reg, OWNER, where)["tags"] == {}


async def test_a_viewer_is_refused_every_write(world: World, as_user: Callable[[str], Any]) -> None:
    rid = pending_request(world, by="ann")
    async with as_user("vic") as http:
        for action, data in [
            (f"/promotions/{rid}/approve", {}),
            (f"/promotions/{rid}/reject", {"reason": "no"}),
            ("/models/fraud/versions/3/promote", {"to": "staging"}),
            ("/models/fraud/rollback", {"stage": "production", "reason": "x"}),
            ("/models/fraud/aliases", {"alias": "x", "version": "1"}),
            ("/models/fraud/tags", {"key": "a", "value": "b"}),
            ("/models/fraud/describe", {"description": "x"}),
            ("/admin/tokens", {"principal": "vic"}),
        ]:
            answer = await post_form(http, "/promotions", action, data)
            assert answer.status_code == 403, action
            assert error_code(answer) == "permission_denied", action
    assert request_of(world, rid)["state"] == "pending"


async def test_a_viewers_pages_have_no_post_form_but_sign_out(
    world: World, as_user: Callable[[str], Any]
) -> None:
    rid = pending_request(world, by="ann")
    async with as_user("vic") as http:
        for path in (
            "/promotions",
            f"/promotions/{rid}",
            "/promotions?state=all",
            "/models/fraud/versions/3/promote?to=production",
            "/audit",
            "/audit?model=fraud",
            "/webhooks",
            "/deployments",
        ):
            page = await http.get(path)
            assert page.status_code == 200, path
            forms = _POST_FORM.findall(page.text)
            assert forms == ['<form action="/logout" method="post" class="inline">'], path


def test_the_action_includes_show_nothing_without_rights() -> None:
    none = {"promote": False, "alias": False, "edit": False, "rollback": False}
    model = {"name": "fraud", "description": "", "tags": {}, "aliases": {"a": 1}, "stages": {}}
    version = {"version": 1, "stage": "none", "description": "", "tags": {}}
    for name in ("_version_actions.html", "_model_actions.html"):
        html = render.ENV.get_template(name).render(model=model, version=version, may=none)
        assert "<form" not in html, name


# -- admin -------------------------------------------------------------------------------------


async def test_a_new_token_is_shown_once(world: World, as_user: Callable[[str], Any]) -> None:
    async with as_user("root") as http:
        shown = await post_form(
            http, "/admin", "/admin/tokens", {"principal": "ann", "name": "ci", "expires_days": "7"}
        )
        assert shown.status_code == 200  # the POST's own answer: no redirect to reload
        assert shown.headers["cache-control"] == "no-store"
        secret = _SECRET.search(shown.text)
        assert secret is not None
        token = secret[1]
        again = await http.get("/admin")
    assert token not in again.text
    assert ">ci<" in again.text
    tokens = admin.list_tokens(world.app.state.registry, OWNER, "ann")
    assert any(t["name"] == "ci" for t in tokens)
    assert last_event(world)["action"] == "auth:token:create"
    assert token not in str(last_event(world))


async def test_admin_writes(world: World, as_user: Callable[[str], Any]) -> None:
    reg = world.app.state.registry

    def roles(name: str) -> list[dict[str, Any]]:
        return next(p for p in admin.list_principals(reg, OWNER) if p["name"] == name)["roles"]

    async with as_user("root") as http:
        steps: list[tuple[str, dict[str, str]]] = [
            ("/admin/users", {"name": "dora", "kind": "user", "role": "viewer"}),
            ("/admin/grants", {"principal": "dora", "role": "approver", "model": "fraud"}),
            ("/admin/grants/revoke", {"principal": "dora", "role": "viewer", "model": ""}),
            ("/admin/users/disable", {"principal": "dora"}),
            (
                "/admin/policies",
                {"scope": "fraud", "target": "staging", "requires": "metrics.acc > 0.5\n"},
            ),
        ]
        for action, data in steps:
            answer = await post_form(http, "/admin", action, data)
            assert path_of(answer).startswith("/admin?done="), action
        assert roles("dora") == [{"role": "approver", "model": "fraud"}]
        dora = next(p for p in admin.list_principals(reg, OWNER) if p["name"] == "dora")
        assert dora["disabled"] is True
        rules = governance.get_policy(reg, OWNER, "fraud")["rules"]
        assert rules["staging"]["requires"] == ["metrics.acc > 0.5"]
        page = await http.get("/admin")
        assert "metrics.acc &gt; 0.5" in page.text
        deleted = await post_form(
            http, "/admin", "/admin/policies/delete", {"scope": "fraud", "target": "staging"}
        )
        assert path_of(deleted) == "/admin?done=saved"
        token_id = admin.list_tokens(reg, OWNER, "vic")[0]["id"]
        revoked = await post_form(http, "/admin", "/admin/tokens/revoke", {"id": token_id})
        assert path_of(revoked) == "/admin?done=revoked"
    assert "staging" not in governance.get_policy(reg, OWNER, "fraud")["rules"]
    assert admin.list_tokens(reg, OWNER, "vic")[0]["revoked"] is True
    assert last_event(world)["action"] == "auth:token:revoke"


# -- audit ---------------------------------------------------------------------------------------


async def test_the_audit_banner_names_the_bad_event(
    world: World, as_user: Callable[[str], Any]
) -> None:
    with world.app.state.registry.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET reason = 'edited' WHERE seq = 3"))
    async with as_user("root") as http:
        page = await http.get("/audit")
    assert page.status_code == 200
    assert "breaks at event 3" in page.text
    assert "altered after it was written" in page.text


async def test_the_audit_log_pages_and_filters(world: World, as_user: Callable[[str], Any]) -> None:
    async with as_user("vic") as http:
        first = await http.get("/audit")
        assert "Hash chain verified up to event" in first.text
        by_ann = await http.get("/audit?actor=ann")
        only_fraud = await http.get("/audit?model=fraud")
    assert first.status_code == by_ann.status_code == only_fraud.status_code == 200
    assert "registry:version:register" in only_fraud.text
    assert "No events match" in by_ann.text

"""Lifecycle over REST: promotions, approvals, rollback, protected aliases, policies, ``at``.

The HTTP contract (statuses, ``If-Match``, the error envelope) with real users and tokens on a
real server, and the remote client (``HttpBackend``) against the embedded one. SQLite only:
these tests are about HTTP behaviour; the service suites cover both dialects.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg
from modelreg import errors
from modelreg.services.audit import EventTag

API = "/api/v1"
PROMOTE = f"{API}/models/fraud/promotions"
ROLLBACK = f"{API}/models/fraud/rollback"
FRAUD_POLICY = f"{API}/models/fraud/policy"
GATE = "metrics.auc >= 0.9"
# fraud v1, v2 and v3 are registered with these AUCs: v3 fails GATE.
AUCS = {1: 0.9, 2: 0.95, 3: 0.5}
# name -> (role, model the role is limited to)
PEOPLE = {
    "alice": ("admin", None),
    "ann": ("approver", None),
    "dan": ("approver", None),
    "carol": ("contributor", "fraud"),
    "vic": ("viewer", None),
}


@pytest.fixture
def db_url(sqlite_db_url: str) -> str:
    """SQLite only (see the module docstring)."""
    return sqlite_db_url


@dataclass
class Team:
    """A live server whose registry has ``fraud`` v1-v3 and the people of ``PEOPLE``."""

    url: str
    tokens: dict[str, str]
    clients: dict[str | None, httpx.Client]

    def __getitem__(self, who: str | None) -> httpx.Client:
        """An HTTP client acting as ``who`` (``None``: no token)."""
        if who not in self.clients:
            headers = {"authorization": f"Bearer {self.tokens[who]}"} if who else {}
            self.clients[who] = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        return self.clients[who]


@pytest.fixture
def team(live_server: Any, home: Path, files: Path) -> Iterator[Team]:
    with modelreg.Registry(home) as local:
        for number in sorted(AUCS):
            local.register(
                "fraud", files / "model.pkl", metrics={"auc": AUCS[number]}, capture=False
            )
        for name, (role, model) in PEOPLE.items():
            local.create_user(name, role=role, model=model)
        tokens = {name: local.create_token(name)["token"] for name in PEOPLE}
    crew = Team(live_server.url, tokens, {})
    yield crew
    for client in crew.clients.values():
        client.close()


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The envelope's ``error`` object, after checking the status and shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "detail"}
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["detail"], dict)
    error: dict[str, Any] = body["error"]
    return error


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _rule(team: Team, target: str, *, scope: str = "fraud", **rule: Any) -> dict[str, Any]:
    """Write a rule as the admin."""
    url = f"{API}/policy/{target}" if scope == "*" else f"{API}/models/{scope}/policy/{target}"
    result: dict[str, Any] = _ok(team["alice"].put(url, json=rule))
    return result


def _holder(team: Team, ref: str) -> int | None:
    response = team["vic"].get(f"{API}/resolve", params={"uri": ref})
    if response.status_code == 404:
        return None
    number: int = _ok(response)["version"]
    return number


def _promotions(team: Team, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = _ok(team["vic"].get(f"{API}/promotions", params=params))["items"]
    return items


# -- promote --------------------------------------------------------------------------------


class TestPromote:
    def test_applied_is_200_and_moves_the_version(self, team: Team) -> None:
        body = _ok(team["carol"].post(PROMOTE, json={"version": 1, "to": "staging"}))
        assert body["state"] == "applied"
        assert isinstance(body["id"], int)
        assert (body["target"], body["to_stage"], body["requested_by"]) == (
            "staging",
            "staging",
            "carol",
        )
        assert _holder(team, "fraud/staging") == 1
        assert _promotions(team) == [body]

    def test_a_version_already_in_place_is_200_with_no_request(self, team: Team) -> None:
        _ok(team["carol"].post(PROMOTE, json={"version": 1, "to": "staging"}))
        again = _ok(team["carol"].post(PROMOTE, json={"version": 1, "to": "staging"}))
        assert (again["state"], again["id"]) == ("applied", None)
        assert len(_promotions(team)) == 1

    def test_refused_is_422_and_the_refusal_is_stored(self, team: Team) -> None:
        _rule(team, "production", requires=[GATE])
        response = team["carol"].post(
            PROMOTE, json={"version": 3, "to": "production", "reason": "ship it"}
        )
        error = _error(response, 422, "policy_violation")
        (failed,) = error["detail"]["failed_criteria"]
        assert failed["criterion"] == GATE
        assert failed["passed"] is False
        assert failed["actual"] == {"metrics.auc": 0.5}
        promotion = error["detail"]["promotion"]
        assert promotion["state"] == "refused"
        assert promotion["failed_criteria"] == [failed]
        assert f"request #{promotion['id']}" in error["message"]
        # The transaction committed before the 422: the attempt is on record.
        stored = _ok(team["vic"].get(f"{API}/promotions/{promotion['id']}"))
        assert stored == promotion
        assert _promotions(team, state="refused", model="fraud") == [promotion]
        assert _holder(team, "fraud/production") is None
        events = _ok(team["alice"].get(f"{API}/audit"))["items"]
        (event,) = [e for e in events if e["action"] == EventTag.PROMOTION_PROMOTE.value]
        assert (event["actor"], event["after"]["state"]) == ("carol", "refused")

    def test_dry_run_answers_the_would_be_outcome_and_stores_nothing(self, team: Team) -> None:
        _rule(team, "production", requires=[GATE])
        refused = _ok(
            team["carol"].post(PROMOTE, json={"version": 3, "to": "production", "dry_run": True})
        )
        assert (refused["state"], refused["dry_run"], refused["id"]) == ("refused", True, None)
        assert refused["failed_criteria"][0]["criterion"] == GATE
        _rule(team, "staging", approvals=1)
        pending = _ok(
            team["carol"].post(PROMOTE, json={"version": 1, "to": "staging", "dry_run": True})
        )
        assert (pending["state"], pending["id"]) == ("pending", None)
        applied = _ok(
            team["carol"].post(PROMOTE, json={"version": 2, "to": "production", "dry_run": True})
        )
        assert applied["state"] == "applied"
        assert _promotions(team) == []
        assert _holder(team, "fraud/production") is None

    def test_approvals_needed_is_202_with_the_pending_request(self, team: Team) -> None:
        _rule(team, "production", requires=[GATE], approvals=1)
        response = team["carol"].post(PROMOTE, json={"version": 2, "to": "production"})
        body = _ok(response, 202)
        assert (body["state"], body["approvals_required"], body["approvals"]) == (
            "pending",
            1,
            [],
        )
        assert _promotions(team, state="pending") == [body]
        assert _holder(team, "fraud/production") is None
        # Asking again is the same request, not a second one.
        assert (
            _ok(team["carol"].post(PROMOTE, json={"version": 2, "to": "production"}), 202)["id"]
            == (body["id"])
        )

    @pytest.mark.parametrize(
        ("who", "body", "status", "code"),
        [
            ("vic", {"version": 1, "to": "staging"}, 403, "permission_denied"),
            (None, {"version": 1, "to": "staging"}, 401, "unauthenticated"),
            ("carol", {"version": 99, "to": "staging"}, 404, "version_not_found"),
            ("carol", {"version": 1, "to": "nowhere"}, 400, "invalid_reference"),
            ("carol", {"version": 1, "to": "@latest"}, 400, "invalid_name"),
            ("carol", {"version": 0, "to": "staging"}, 400, "invalid_input"),
            ("carol", {"version": "1", "to": "staging"}, 400, "invalid_input"),
            ("carol", {"version": True, "to": "staging"}, 400, "invalid_input"),
            ("carol", {"to": "staging"}, 400, "invalid_input"),
            ("carol", {"version": 1, "to": "staging", "force": True}, 400, "invalid_input"),
        ],
    )
    def test_bad_requests(
        self, team: Team, who: str | None, body: dict[str, Any], status: int, code: str
    ) -> None:
        _error(team[who].post(PROMOTE, json=body), status, code)
        assert _promotions(team) == []

    def test_unknown_model_is_404(self, team: Team) -> None:
        response = team["alice"].post(
            f"{API}/models/ghost/promotions", json={"version": 1, "to": "staging"}
        )
        _error(response, 404, "model_not_found")


class TestIfMatch:
    """Compare-and-set: the expected holder comes as ``If-Match`` or ``expect_current``."""

    @pytest.mark.parametrize(
        ("if_match", "expect", "status", "code"),
        [
            ('"none"', None, 200, None),
            ('"0"', None, 200, None),
            ("none", None, 200, None),
            ('"NONE"', None, 200, None),
            (None, 0, 200, None),
            ('"0"', 0, 200, None),
            ('"1"', None, 409, "concurrent_change"),
            (None, 1, 409, "concurrent_change"),
            ('"0"', 1, 400, "invalid_input"),
            ('W/"0"', None, 400, "invalid_input"),
            ('"one"', None, 400, "invalid_input"),
            ('"0', None, 400, "invalid_input"),
            ('0"', None, 400, "invalid_input"),
            ('"9999999999"', None, 400, "invalid_input"),
            (None, -1, 400, "invalid_input"),
        ],
    )
    def test_promote_while_nothing_holds_production(
        self, team: Team, if_match: str | None, expect: int | None, status: int, code: str | None
    ) -> None:
        body: dict[str, Any] = {"version": 1, "to": "production"}
        if expect is not None:
            body["expect_current"] = expect
        headers = {"if-match": if_match} if if_match is not None else {}
        response = team["carol"].post(PROMOTE, json=body, headers=headers)
        if code is None:
            assert _ok(response)["expect_current"] == 0
            assert _holder(team, "fraud/production") == 1
        else:
            _error(response, status, code)
            # A compare-and-set failure rolls back: nothing is stored, nothing moves.
            assert _promotions(team) == []
            assert _holder(team, "fraud/production") is None

    def test_promote_replacing_the_holder(self, team: Team) -> None:
        _ok(team["carol"].post(PROMOTE, json={"version": 1, "to": "production"}))
        stale = team["carol"].post(
            PROMOTE, json={"version": 2, "to": "production"}, headers={"if-match": '"none"'}
        )
        error = _error(stale, 409, "concurrent_change")
        assert error["detail"] == {"expected": 0, "current": 1}
        fresh = team["carol"].post(
            PROMOTE, json={"version": 2, "to": "production"}, headers={"if-match": '"1"'}
        )
        assert _ok(fresh)["from_version"] == 1
        assert _holder(team, "fraud/production") == 2

    def test_alias_set_and_delete(self, team: Team) -> None:
        url = f"{API}/models/fraud/aliases/champion"
        carol = team["carol"]
        _ok(carol.put(url, json={"version": 1}, headers={"if-match": '"none"'}))
        _error(carol.put(url, json={"version": 2, "expect_current": 0}), 409, "concurrent_change")
        _ok(carol.put(url, json={"version": 2}, headers={"if-match": '"1"'}))
        _error(carol.delete(url, params={"expect_current": 1}), 409, "concurrent_change")
        _error(
            carol.delete(url, params={"expect_current": 2}, headers={"if-match": '"1"'}),
            400,
            "invalid_input",
        )
        gone = _ok(carol.delete(url, headers={"if-match": '"2"'}))
        assert gone == {"name": "fraud", "alias": "champion", "version": 2}
        assert _holder(team, "fraud@champion") is None


# -- approvals ------------------------------------------------------------------------------


class TestApprovals:
    def _request(self, team: Team, who: str = "ann", version: int = 2) -> int:
        response = team[who].post(PROMOTE, json={"version": version, "to": "production"})
        number: int = _ok(response, 202)["id"]
        return number

    def test_separation_of_duties(self, team: Team) -> None:
        _rule(team, "production", approvals=1)
        request = self._request(team, "ann")
        response = team["ann"].post(f"{API}/promotions/{request}/approve", json={})
        error = _error(response, 403, "permission_denied")
        assert error["detail"]["requested_by"] == "ann"
        assert "separation of duties" in error["message"]
        assert _ok(team["vic"].get(f"{API}/promotions/{request}"))["state"] == "pending"
        approved = _ok(
            team["dan"].post(f"{API}/promotions/{request}/approve", json={"reason": "looks good"})
        )
        assert approved["state"] == "applied"
        assert approved["decided_by"] == "dan"
        assert [(a["actor"], a["reason"]) for a in approved["approvals"]] == [("dan", "looks good")]
        assert _holder(team, "fraud/production") == 2

    def test_contributors_cannot_approve(self, team: Team) -> None:
        _rule(team, "production", approvals=1)
        request = self._request(team, "ann")
        error = _error(
            team["carol"].post(f"{API}/promotions/{request}/approve", json={}),
            403,
            "permission_denied",
        )
        assert error["detail"]["role_needed"] == "approver"

    def test_two_approvals_202_then_200(self, team: Team) -> None:
        _rule(team, "production", approvals=2)
        request = self._request(team, "carol")
        first = team["ann"].post(f"{API}/promotions/{request}/approve", json={})
        assert _ok(first, 202)["state"] == "pending"
        _error(team["ann"].post(f"{API}/promotions/{request}/approve", json={}), 409, "conflict")
        second = _ok(team["dan"].post(f"{API}/promotions/{request}/approve", json={}))
        assert second["state"] == "applied"
        assert {a["actor"] for a in second["approvals"]} == {"ann", "dan"}
        _error(team["alice"].post(f"{API}/promotions/{request}/approve", json={}), 409, "conflict")

    def test_refused_at_apply_time_is_422_after_commit(self, team: Team) -> None:
        _rule(team, "production", requires=[GATE], approvals=1)
        request = self._request(team, "carol", version=1)
        _rule(team, "production", requires=["metrics.auc >= 0.99"], approvals=1)
        response = team["dan"].post(f"{API}/promotions/{request}/approve", json={})
        error = _error(response, 422, "policy_violation")
        assert error["detail"]["failed_criteria"][0]["criterion"] == "metrics.auc >= 0.99"
        assert error["detail"]["promotion"]["id"] == request
        stored = _ok(team["vic"].get(f"{API}/promotions/{request}"))
        assert stored["state"] == "refused"
        assert [a["actor"] for a in stored["approvals"]] == ["dan"]
        assert _holder(team, "fraud/production") is None

    def test_reject(self, team: Team) -> None:
        _rule(team, "production", approvals=1)
        request = self._request(team, "carol")
        url = f"{API}/promotions/{request}/reject"
        _error(team["carol"].post(url, json={}), 400, "invalid_input")
        _error(team["carol"].post(url, json={"reason": "  "}), 400, "invalid_input")
        _error(team["vic"].post(url, json={"reason": "no"}), 403, "permission_denied")
        rejected = _ok(team["carol"].post(url, json={"reason": "withdrawn"}))
        assert (rejected["state"], rejected["decision_reason"]) == ("rejected", "withdrawn")
        _error(team["dan"].post(f"{API}/promotions/{request}/approve", json={}), 409, "conflict")
        assert _promotions(team, state="rejected") == [rejected]

    @pytest.mark.parametrize(
        ("path", "status", "code"),
        [
            ("/promotions/999", 404, "promotion_not_found"),
            ("/promotions/0", 400, "invalid_input"),
            ("/promotions/x", 400, "invalid_input"),
            ("/promotions/99999999999", 400, "invalid_input"),
        ],
    )
    def test_unknown_requests(self, team: Team, path: str, status: int, code: str) -> None:
        _error(team["vic"].get(API + path), status, code)
        _error(team["dan"].post(f"{API}{path}/approve", json={}), status, code)
        _error(team["dan"].post(f"{API}{path}/reject", json={"reason": "x"}), status, code)

    @pytest.mark.parametrize(
        ("params", "status", "code"),
        [
            ({"state": "sleeping"}, 400, "invalid_input"),
            ({"page_size": 0}, 400, "invalid_input"),
            ({"page_token": "garbage"}, 400, "invalid_input"),
            ({"model": "ghost"}, 404, "model_not_found"),
            ({"model": "../x"}, 400, "invalid_name"),
        ],
    )
    def test_list_refuses_bad_filters(
        self, team: Team, params: dict[str, Any], status: int, code: str
    ) -> None:
        _error(team["vic"].get(f"{API}/promotions", params=params), status, code)

    def test_list_is_newest_first_and_filtered(self, team: Team) -> None:
        _rule(team, "production", requires=[GATE], approvals=1)
        _ok(team["carol"].post(PROMOTE, json={"version": 1, "to": "staging"}))
        refused = team["carol"].post(PROMOTE, json={"version": 3, "to": "production"})
        _error(refused, 422, "policy_violation")
        _ok(team["carol"].post(PROMOTE, json={"version": 2, "to": "production"}), 202)
        states = [p["state"] for p in _promotions(team)]
        assert states == ["pending", "refused", "applied"]
        assert [p["state"] for p in _promotions(team, page_size=1)] == ["pending"]
        assert [p["version"] for p in _promotions(team, state="refused")] == [3]
        _error(team[None].get(f"{API}/promotions"), 401, "unauthenticated")


# -- protected aliases ----------------------------------------------------------------------


class TestProtectedAlias:
    URL = f"{API}/models/fraud/aliases/champion"

    def test_waiting_for_approval_is_202(self, team: Team) -> None:
        _rule(team, "@champion", approvals=1)
        body = _ok(team["carol"].put(self.URL, json={"version": 2}), 202)
        assert (body["state"], body["target"], body["to_alias"]) == (
            "pending",
            "@champion",
            "champion",
        )
        assert _holder(team, "fraud@champion") is None
        assert _ok(team["dan"].post(f"{API}/promotions/{body['id']}/approve", json={}))[
            "state"
        ] == ("applied")
        assert _holder(team, "fraud@champion") == 2

    def test_refused_is_422_and_stored(self, team: Team) -> None:
        _rule(team, "@champion", requires=[GATE])
        error = _error(team["carol"].put(self.URL, json={"version": 3}), 422, "policy_violation")
        assert error["detail"]["failed_criteria"][0]["criterion"] == GATE
        (stored,) = _promotions(team, state="refused")
        assert stored["id"] == error["detail"]["promotion"]["id"]
        assert stored["target"] == "@champion"
        assert _holder(team, "fraud@champion") is None

    def test_passing_the_gates_answers_the_version(self, team: Team) -> None:
        _rule(team, "@champion", requires=[GATE])
        body = _ok(team["carol"].put(self.URL, json={"version": 2, "reason": "best auc"}))
        assert (body["name"], body["version"], body["aliases"]) == ("fraud", 2, ["champion"])
        (request,) = _promotions(team)
        assert (request["state"], request["reason"]) == ("applied", "best auc")

    def test_removing_it_needs_the_approver_role(self, team: Team) -> None:
        _ok(team["carol"].put(self.URL, json={"version": 1}))
        _rule(team, "@champion", approvals=1)
        _error(team["carol"].delete(self.URL), 403, "permission_denied")
        assert _ok(team["dan"].delete(self.URL))["version"] == 1


# -- rollback -------------------------------------------------------------------------------


class TestRollback:
    @pytest.fixture
    def shipped(self, team: Team) -> Team:
        """v1 went to production, then v2 replaced it."""
        for number in (1, 2):
            _ok(team["carol"].post(PROMOTE, json={"version": number, "to": "production"}))
        return team

    def test_puts_back_the_previous_holder(self, shipped: Team) -> None:
        body = _ok(shipped["ann"].post(ROLLBACK, json={"reason": "v2 misbehaves"}))
        assert body == {"name": "fraud", "target": "production", "from_version": 2, "to_version": 1}
        assert _holder(shipped, "fraud/production") == 1
        assert _ok(shipped["vic"].get(f"{API}/models/fraud/versions/2"))["stage"] == "archived"
        history = _ok(shipped["vic"].get(f"{API}/models/fraud/history"))["items"]
        assert "rollback" in {h["action"] for h in history}

    @pytest.mark.parametrize(
        ("who", "body", "headers", "status", "code"),
        [
            ("carol", {"reason": "x"}, {}, 403, "permission_denied"),
            ("vic", {"reason": "x"}, {}, 403, "permission_denied"),
            (None, {"reason": "x"}, {}, 401, "unauthenticated"),
            ("ann", {}, {}, 400, "invalid_input"),
            ("ann", {"reason": "  "}, {}, 400, "invalid_input"),
            ("ann", {"reason": "x"}, {"if-match": '"1"'}, 409, "concurrent_change"),
            ("ann", {"reason": "x", "expect_current": 1}, {}, 409, "concurrent_change"),
            (
                "ann",
                {"reason": "x", "expect_current": 2},
                {"if-match": '"1"'},
                400,
                "invalid_input",
            ),
            ("ann", {"reason": "x", "to": 3}, {}, 400, "invalid_input"),
            ("ann", {"reason": "x", "stage": "nowhere"}, {}, 400, "invalid_reference"),
            ("ann", {"reason": "x", "stage": "staging"}, {}, 409, "conflict"),
        ],
    )
    def test_refusals_change_nothing(
        self,
        shipped: Team,
        who: str | None,
        body: dict[str, Any],
        headers: dict[str, str],
        status: int,
        code: str,
    ) -> None:
        _error(shipped[who].post(ROLLBACK, json=body, headers=headers), status, code)
        assert _holder(shipped, "fraud/production") == 2

    def test_with_if_match_and_to(self, shipped: Team) -> None:
        body = _ok(
            shipped["ann"].post(
                ROLLBACK, json={"reason": "back to 1", "to": 1}, headers={"if-match": '"2"'}
            )
        )
        assert (body["from_version"], body["to_version"]) == (2, 1)

    def test_an_alias(self, team: Team) -> None:
        url = f"{API}/models/fraud/aliases/champion"
        for number in (1, 3):
            _ok(team["carol"].put(url, json={"version": number}))
        body = _ok(team["ann"].post(ROLLBACK, json={"stage": "@champion", "reason": "bad"}))
        assert (body["target"], body["from_version"], body["to_version"]) == ("@champion", 3, 1)
        assert _holder(team, "fraud@champion") == 1


# -- resolve at a moment --------------------------------------------------------------------


class TestResolveAt:
    def _resolve(self, team: Team, uri: str, at: str | None = None) -> httpx.Response:
        params = {"uri": uri} if at is None else {"uri": uri, "at": at}
        return team["vic"].get(f"{API}/resolve", params=params)

    def test_the_holder_then_and_now(self, team: Team) -> None:
        for number in (1, 2):
            _ok(team["carol"].post(PROMOTE, json={"version": number, "to": "production"}))
        history = _ok(team["vic"].get(f"{API}/models/fraud/history"))["items"]
        first = next(h for h in history if h["to_stage"] == "production" and h["version"] == 1)
        assert _ok(self._resolve(team, "models:/fraud/production", first["at"]))["version"] == 1
        assert _ok(self._resolve(team, "fraud/production"))["version"] == 2
        now = _ok(self._resolve(team, "fraud/production", "2999-01-01T00:00Z"))
        assert now["version"] == 2

    @pytest.mark.parametrize(
        ("uri", "at", "status", "code"),
        [
            ("fraud/production", "2000-01-01T00:00Z", 404, "not_found"),
            ("fraud@champion", "2000-01-01T00:00Z", 404, "not_found"),
            ("fraud/production", "yesterday", 400, "invalid_reference"),
            ("fraud/production", "", 400, "invalid_reference"),
            ("fraud:1", "2000-01-01T00:00Z", 400, "invalid_input"),
            ("ghost/production", "2000-01-01T00:00Z", 404, "model_not_found"),
        ],
    )
    def test_refusals(self, team: Team, uri: str, at: str, status: int, code: str) -> None:
        _error(self._resolve(team, uri, at), status, code)


# -- policies -------------------------------------------------------------------------------


class TestPolicies:
    def test_default_and_model_rules(self, team: Team) -> None:
        written = _rule(team, "production", scope="*", requires=GATE, approvals=1)
        assert written == {
            "scope": "*",
            "target": "production",
            "requires": [GATE],
            "from_stages": [],
            "required_tags": {},
            "approvals": 1,
            "approver_role": "approver",
            "previous_to": None,
        }
        default = _ok(team["vic"].get(f"{API}/policy"))
        assert default["scope"] == "*"
        assert default["rules"]["production"]["source"] == "*"
        fraud = _ok(team["vic"].get(FRAUD_POLICY))
        assert fraud["rules"]["production"]["source"] == "*"
        # "@" travels unescaped in the path.
        own = _rule(team, "@champion", required_tags={"reviewed": None})
        assert (own["scope"], own["target"]) == ("fraud", "@champion")
        fraud = _ok(team["vic"].get(FRAUD_POLICY))
        assert {t: r["source"] for t, r in fraud["rules"].items()} == {
            "@champion": "model",
            "production": "*",
        }
        scopes = _ok(team["vic"].get(f"{API}/policies"))["scopes"]
        assert set(scopes) == {"*", "fraud"}
        assert scopes["fraud"]["@champion"]["required_tags"] == {"reviewed": None}

    def test_effective_policy_of_a_model_not_yet_registered(self, team: Team) -> None:
        _rule(team, "staging", scope="*", approvals=2)
        ghost = _ok(team["vic"].get(f"{API}/models/team/ghost/policy"))
        assert ghost["scope"] == "team/ghost"
        assert ghost["rules"]["staging"]["approvals"] == 2

    def test_delete(self, team: Team) -> None:
        _rule(team, "@champion")
        _rule(team, "production", scope="*")
        gone = _ok(team["alice"].delete(f"{FRAUD_POLICY}/@champion"))
        assert gone == {"scope": "fraud", "target": "@champion"}
        _error(team["alice"].delete(f"{FRAUD_POLICY}/@champion"), 404, "not_found")
        assert _ok(team["alice"].delete(f"{API}/policy/Production"))["target"] == "production"
        assert _ok(team["vic"].get(f"{API}/policies"))["scopes"] == {}

    @pytest.mark.parametrize(
        ("who", "method", "path", "body", "status", "code"),
        [
            ("carol", "PUT", "/models/fraud/policy/production", {}, 403, "permission_denied"),
            ("ann", "PUT", "/policy/production", {}, 403, "permission_denied"),
            ("ann", "DELETE", "/policy/production", None, 403, "permission_denied"),
            (None, "GET", "/policies", None, 401, "unauthenticated"),
            (None, "GET", "/policy", None, 401, "unauthenticated"),
            ("alice", "PUT", "/policy/production", {"gates": []}, 400, "invalid_input"),
            ("alice", "PUT", "/policy/production", {"approvals": 11}, 400, "invalid_input"),
            ("alice", "PUT", "/policy/production", {"approvals": True}, 400, "invalid_input"),
            ("alice", "PUT", "/policy/production", {"requires": [5]}, 400, "invalid_input"),
            (
                "alice",
                "PUT",
                "/policy/production",
                {"requires": ["metrics.auc >>= 1"]},
                400,
                "invalid_query",
            ),
            ("alice", "PUT", "/policy/staging", {"previous_to": "none"}, 400, "invalid_input"),
            (
                "alice",
                "PUT",
                "/policy/production",
                {"approver_role": "viewer"},
                400,
                "invalid_input",
            ),
            ("alice", "PUT", "/policy/nowhere", {}, 400, "invalid_reference"),
            ("alice", "PUT", "/policy/@latest", {}, 400, "invalid_name"),
            ("alice", "DELETE", "/policy/production", None, 404, "not_found"),
            ("alice", "GET", f"/models/{'x' * 129}/policy", None, 400, "invalid_name"),
        ],
    )
    def test_refusals(
        self,
        team: Team,
        who: str | None,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        status: int,
        code: str,
    ) -> None:
        response = team[who].request(method, API + path, json=body)
        _error(response, status, code)
        assert _ok(team["alice"].get(f"{API}/policies"))["scopes"] == {}

    def test_apply_a_document_in_one_transaction(self, team: Team) -> None:
        document = {
            "scopes": {
                "*": {"staging": None, "production": {"requires": GATE, "approvals": 1}},
                "fraud": {"@champion": {"required_tags": ["reviewed=yes"]}},
            }
        }
        changes = _ok(team["alice"].put(f"{API}/policies", json=document))["changes"]
        assert changes["*"]["created"] == ["production", "staging"]
        assert changes["fraud"]["created"] == ["@champion"]
        again = _ok(team["alice"].put(f"{API}/policies", json=document))["changes"]
        assert again["*"]["unchanged"] == ["production", "staging"]
        before = _ok(team["vic"].get(f"{API}/policies"))
        assert before["scopes"]["fraud"]["@champion"]["required_tags"] == {"reviewed": "yes"}
        # The first scope would empty "*"; the second is invalid: neither is applied.
        broken = {"scopes": {"*": {}, "fraud": {"production": {"requires": ["auc >>> 1"]}}}}
        _error(team["alice"].put(f"{API}/policies", json=broken), 400, "invalid_query")
        assert _ok(team["vic"].get(f"{API}/policies")) == before
        _error(team["carol"].put(f"{API}/policies", json=document), 403, "permission_denied")
        _error(team["alice"].put(f"{API}/policies", json={"*": {}}), 400, "invalid_input")


# -- the remote client matches the embedded one ---------------------------------------------


@pytest.fixture
def fraud(reg: modelreg.Registry, files: Path) -> modelreg.Registry:
    """``reg`` (embedded and remote) with fraud v1-v3 of ``AUCS``."""
    for number in sorted(AUCS):
        reg.register("fraud", files / "model.pkl", metrics={"auc": AUCS[number]}, capture=False)
    return reg


class TestClient:
    def test_promote_outcomes(self, fraud: modelreg.Registry) -> None:
        fraud.set_policy_rule("fraud", "production", requires=[GATE])
        with pytest.raises(errors.PolicyViolation) as info:
            fraud.promote("fraud", 3, "production", reason="try")
        assert [c["criterion"] for c in info.value.failed_criteria] == [GATE]
        stored = info.value.detail["promotion"]
        assert fraud.get_promotion(stored["id"]).state == "refused"
        dry = fraud.promote("fraud", 3, "production", dry_run=True)
        assert (dry.state, dry.id, dry.dry_run) == ("refused", None, True)
        applied = fraud.promote("fraud", 2, "production", expect_current=0)
        assert applied.state == "applied"
        assert fraud.get_version("fraud/production").version == 2
        assert [p.state for p in fraud.promotions("fraud")] == ["applied", "refused"]
        assert [p.version for p in fraud.promotions(state="refused", page_size=5)] == [3]
        with pytest.raises(errors.ConcurrentChange):
            fraud.promote("fraud", 1, "production", expect_current=0)

    def test_requests_wait_and_the_requester_cannot_approve(self, fraud: modelreg.Registry) -> None:
        fraud.set_policy_rule("fraud", "staging", approvals=1)
        pending = fraud.promote("fraud", 1, "staging")
        assert pending.state == "pending"
        assert pending.id is not None
        with pytest.raises(errors.PermissionDenied):
            fraud.approve(pending.id)
        rejected = fraud.reject(pending.id, reason="not yet")
        assert rejected.state == "rejected"
        with pytest.raises(errors.PromotionNotFound):
            fraud.get_promotion(999)

    def test_protected_aliases(self, fraud: modelreg.Registry) -> None:
        fraud.set_policy_rule("fraud", "@champion", requires=[GATE])
        assert fraud.set_alias("fraud", "champion", 1).version == 1
        with pytest.raises(errors.PolicyViolation):
            fraud.set_alias("fraud", "champion", 3)
        fraud.set_policy_rule("fraud", "@champion", approvals=1)
        with pytest.raises(errors.ApprovalRequired) as info:
            fraud.set_alias("fraud", "champion", 2, expect_current=1)
        assert fraud.get_promotion(info.value.detail["request_id"]).state == "pending"
        fraud.delete_policy_rule("fraud", "@champion")
        with pytest.raises(errors.ConcurrentChange):
            fraud.delete_alias("fraud", "champion", expect_current=2)
        assert fraud.delete_alias("fraud", "champion", expect_current=1) == 1

    def test_rollback_and_the_past(self, fraud: modelreg.Registry) -> None:
        fraud.promote("fraud", 1, "production")
        moment = next(h["at"] for h in fraud.history("fraud") if h["to_stage"] == "production")
        fraud.promote("fraud", 2, "production")
        assert fraud.get_version("fraud/production", at=moment).version == 1
        result = fraud.rollback("fraud", reason="v2 misbehaves", expect_current=2)
        assert result == {
            "name": "fraud",
            "target": "production",
            "from_version": 2,
            "to_version": 1,
        }
        with pytest.raises(errors.NotFound):
            fraud.get_version("fraud/production", at="2000-01-01T00:00Z")

    def test_policies(self, fraud: modelreg.Registry) -> None:
        rule = fraud.set_policy_rule("*", "@champion", approvals=1)
        assert (rule["scope"], rule["target"], rule["approvals"]) == ("*", "@champion", 1)
        assert fraud.get_policy()["rules"]["@champion"]["approvals"] == 1
        assert fraud.get_policy("ghost")["rules"]["@champion"]["source"] == "*"
        changes = fraud.apply_policies({"fraud": {"production": {"requires": GATE}}})
        assert changes == {
            "changes": {
                "fraud": {
                    "created": ["production"],
                    "updated": [],
                    "deleted": [],
                    "unchanged": [],
                }
            }
        }
        assert set(fraud.list_policies()["scopes"]) == {"*", "fraud"}
        fraud.delete_policy_rule("*", "@champion")
        with pytest.raises(errors.NotFound):
            fraud.delete_policy_rule("*", "@champion")

    @pytest.mark.parametrize(
        ("scope", "target"),
        [("*", "../x"), ("*", "@../x"), ("*", "production?x"), ("../x", "production"), ("*", "")],
    )
    def test_hostile_names_never_reach_a_url(
        self, fraud: modelreg.Registry, scope: str, target: str
    ) -> None:
        sent: list[httpx.Request] = []
        backend = fraud.backend
        http = getattr(backend, "_http", None)
        if http is not None:
            http.event_hooks["request"].append(sent.append)
        with pytest.raises(errors.InvalidInput):
            fraud.set_policy_rule(scope, target)
        with pytest.raises(errors.InvalidInput):
            fraud.delete_policy_rule(scope, target)
        assert sent == []

"""Issue 18 "also missing": removing a grant and disabling a user take effect on the next request.

The server caches who a token stands for under the registry's change stamp; revoking and
disabling are audited, so they move the stamp and no cached actor (nor a cached answer served
on the fast path) outlives them. On a real server, SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

import modelreg
from modelreg import errors
from modelreg.cli.main import main


@pytest.fixture
def team(home: Path, files: Path) -> dict[str, str]:
    """``fraud`` and ``churn``; alice admin, bob viewer on fraud, carol contributor, ci service."""
    local = modelreg.Registry(home)
    local.register("fraud", files / "model.pkl", capture=False)
    local.register("churn", files / "model_dir", capture=False)
    local.create_user("alice", role="admin")
    local.create_user("bob", role="viewer", model="fraud")
    local.create_user("carol", role="contributor")
    local.create_user("ci", service=True, role="contributor", model="churn")
    tokens = {n: local.create_token(n)["token"] for n in ("alice", "bob", "carol", "ci")}
    local.close()
    return tokens


@pytest.fixture
def http(live_server):
    with httpx.Client(base_url=live_server.url) as client:
        yield client


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _get_model(http: httpx.Client, token: str, name: str = "fraud") -> int:
    return http.get(f"/api/v1/models/{name}", headers=_as(token)).status_code


class TestRevoke:
    def test_revoked_grant_stops_working_on_the_next_request(self, http, team):
        assert _get_model(http, team["bob"]) == 200
        assert _get_model(http, team["bob"]) == 200  # now answered from the caches
        answer = http.delete(
            "/api/v1/principals/bob/grants/viewer",
            params={"model": "fraud"},
            headers=_as(team["alice"]),
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["roles"] == []
        assert _get_model(http, team["bob"]) in (403, 404)

    def test_registry_wide_revoke_keeps_model_grants(self, live_server, team):
        alice = modelreg.Registry(live_server.url, token=team["alice"])
        alice.grant("carol", "approver", model="churn")
        user = alice.revoke("carol", "contributor")
        assert user["roles"] == [{"role": "approver", "model": "churn"}]
        carol = modelreg.Registry(live_server.url, token=team["carol"])
        with pytest.raises((errors.PermissionDenied, errors.NotFound)):
            carol.get_model("fraud")
        assert carol.get_model("churn").name == "churn"
        for r in (alice, carol):
            r.close()

    @pytest.mark.parametrize(
        ("name", "role", "model", "error"),
        [
            ("bob", "viewer", None, errors.NotFound),  # bob's viewer grant is on fraud only
            ("bob", "contributor", "fraud", errors.NotFound),  # another role there
            ("bob", "viewer", "churn", errors.NotFound),  # nothing on churn
            ("nobody", "viewer", None, errors.NotFound),
            ("bob", "viewer", "no-such-model", errors.NotFound),
            ("bob", "wizard", None, errors.InvalidInput),
            ("alice", "admin", None, errors.Conflict),  # the last enabled admin
        ],
    )
    def test_refusals_change_nothing(self, live_server, team, name, role, model, error):
        alice = modelreg.Registry(live_server.url, token=team["alice"])
        before = alice.list_users(), len(alice.audit(limit=10_000))
        with pytest.raises(error) as refused:
            alice.revoke(name, role, model=model)
        if error is errors.NotFound and name == "bob" and model == "fraud":
            assert refused.value.detail["held"] == ["viewer"]
        assert (alice.list_users(), len(alice.audit(limit=10_000))) == before
        alice.close()

    def test_missing_grant_is_a_clear_404(self, http, team):
        answer = http.delete("/api/v1/principals/bob/grants/approver", headers=_as(team["alice"]))
        assert answer.status_code == 404
        assert answer.json()["error"]["message"] == "bob holds no approver role registry-wide"

    def test_only_admins_revoke(self, http, team):
        answer = http.delete(
            "/api/v1/principals/bob/grants/viewer",
            params={"model": "fraud"},
            headers=_as(team["carol"]),
        )
        assert answer.status_code == 403
        assert _get_model(http, team["bob"]) == 200

    def test_revoke_is_audited_on_the_model(self, live_server, team):
        alice = modelreg.Registry(live_server.url, token=team["alice"])
        alice.revoke("bob", "viewer", model="fraud")
        event = alice.audit("fraud")[-1]
        assert (event.action, event.actor, event.target) == (
            "auth:role:revoke",
            "alice",
            "principal:bob",
        )
        assert event.before == {"role": "viewer", "model": "fraud"}
        alice.close()

    def test_a_second_admin_makes_the_first_revocable(self, live_server, team):
        alice = modelreg.Registry(live_server.url, token=team["alice"])
        alice.grant("carol", "admin")
        assert alice.revoke("alice", "admin")["roles"] == []
        with pytest.raises(errors.PermissionDenied):
            alice.list_users()
        alice.close()


class TestDisable:
    def test_disabled_users_token_is_refused_at_once(self, http, team):
        assert _get_model(http, team["bob"]) == 200
        assert _get_model(http, team["bob"]) == 200  # now answered from the caches
        answer = http.patch(
            "/api/v1/principals/bob", json={"disabled": True}, headers=_as(team["alice"])
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["disabled"] is True
        assert _get_model(http, team["bob"]) == 401
        assert http.get("/api/v1/models", headers=_as(team["bob"])).status_code == 401

    def test_every_token_of_a_disabled_service_account_stops(self, live_server, team):
        alice = modelreg.Registry(live_server.url, token=team["alice"])
        second = alice.create_token("ci")["token"]
        alice.disable_user("ci")
        for token in (team["ci"], second):
            with (
                modelreg.Registry(live_server.url, token=token) as ci,
                pytest.raises(errors.Unauthenticated),
            ):
                ci.list_models()
        alice.close()

    def test_enable_again_restores_its_tokens_and_history_stays(self, live_server, http, team):
        carol = modelreg.Registry(live_server.url, token=team["carol"])
        carol.set_tags("fraud", {"owner": "carol"})
        alice = modelreg.Registry(live_server.url, token=team["alice"])
        assert alice.disable_user("carol")["disabled"] is True
        with pytest.raises(errors.Unauthenticated):
            carol.list_models()
        assert "carol" in [e.actor for e in alice.audit("fraud")]
        assert alice.enable_user("carol")["disabled"] is False
        assert [m.name for m in carol.list_models()] == ["churn", "fraud"]
        actions = [e.action for e in alice.audit(limit=10_000)]
        assert actions[-2:] == ["auth:user:disable", "auth:user:enable"]
        for r in (alice, carol):
            r.close()

    def test_disabling_twice_records_once(self, live_server, team):
        alice = modelreg.Registry(live_server.url, token=team["alice"])
        alice.disable_user("bob")
        count = len(alice.audit(limit=10_000))
        assert alice.disable_user("bob")["disabled"] is True
        assert len(alice.audit(limit=10_000)) == count
        alice.close()

    def test_admin_cannot_disable_itself(self, live_server, team):
        alice = modelreg.Registry(live_server.url, token=team["alice"])
        alice.grant("carol", "admin")
        with pytest.raises(errors.Conflict, match="yourself"):
            alice.disable_user("alice")
        assert alice.list_users()[0]["disabled"] is False
        alice.close()

    def test_last_enabled_admin_cannot_be_disabled(self, home, team):
        local = modelreg.Registry(home)  # folder authority: no principal of its own
        with pytest.raises(errors.Conflict, match="no enabled admin"):
            local.disable_user("alice")
        local.grant("carol", "admin")
        local.disable_user("carol")
        with pytest.raises(errors.Conflict, match="no enabled admin"):
            local.disable_user("alice")  # carol is an admin, but disabled
        local.enable_user("carol")
        assert local.disable_user("alice")["disabled"] is True
        local.close()

    def test_only_admins_disable(self, http, team):
        answer = http.patch(
            "/api/v1/principals/bob", json={"disabled": True}, headers=_as(team["carol"])
        )
        assert answer.status_code == 403
        assert _get_model(http, team["bob"]) == 200

    @pytest.mark.parametrize(
        ("path", "body", "status"),
        [
            ("/api/v1/principals/nobody", {"disabled": True}, 404),
            ("/api/v1/principals/bob", {"disabled": "maybe"}, 400),
            ("/api/v1/principals/bob", {"disabled": True, "role": "admin"}, 400),
            ("/api/v1/principals/bob", {}, 400),
        ],
    )
    def test_bad_requests(self, http, team, path, body, status):
        answer = http.patch(path, json=body, headers=_as(team["alice"]))
        assert answer.status_code == status, answer.text
        assert _get_model(http, team["bob"]) == 200


class TestCli:
    def test_commands_and_exit_codes(self, live_server, team, monkeypatch, capsys):
        monkeypatch.setenv("MODELREG_TOKEN", team["alice"])
        args = ["--registry", live_server.url]
        assert main([*args, "revoke", "bob", "viewer", "--model", "fraud", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["roles"] == []
        assert main([*args, "revoke", "bob", "viewer", "--model", "fraud"]) == 2
        assert "holds no viewer role on fraud" in capsys.readouterr().err
        assert main([*args, "revoke", "alice", "admin"]) == 6
        assert main([*args, "users", "disable", "carol", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["disabled"] is True
        assert main([*args, "users", "list"]) == 0
        assert "(disabled)" in capsys.readouterr().out
        assert main([*args, "users", "disable", "alice"]) == 6
        assert main([*args, "users", "disable", "nobody"]) == 2
        assert main([*args, "users", "enable", "carol"]) == 0
        assert "enabled user carol" in capsys.readouterr().out
        monkeypatch.setenv("MODELREG_TOKEN", team["carol"])
        assert main([*args, "users", "disable", "bob"]) == 5

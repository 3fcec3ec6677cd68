"""Issue 18 finding 4: audit events belong to a model by id, never by a name it once had.

After ``fraud`` is renamed (through MLflow's ``registered-models/rename``) and a new model takes
the name, the new model's contributors must not read the old model's events (with its digests)
through ``GET /api/v1/audit?model=fraud`` or ``modelreg audit --model fraud``; the renamed model
keeps its whole history, from before the rename too. On a real server, SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

import modelreg
from modelreg import errors
from modelreg.cli.main import main
from modelreg.config import Settings
from modelreg.db import schema
from modelreg.db.session import make_engine


@pytest.fixture
def renamed(home: Path, files: Path, live_server) -> dict[str, str]:
    """``fraud`` v1 renamed to ``fraud-old`` over HTTP, then a new ``fraud`` for carol."""
    local = modelreg.Registry(home)
    old = local.register("fraud", files / "model.pkl", capture=False)
    local.create_user("alice", role="admin")
    local.create_user("carol")
    tokens = {n: local.create_token(n)["token"] for n in ("alice", "carol")}
    local.close()
    with httpx.Client(base_url=live_server.url) as http:
        answer = http.post(
            "/api/2.0/mlflow/registered-models/rename",
            json={"name": "fraud", "new_name": "fraud-old"},
            headers={"Authorization": f"Bearer {tokens['alice']}"},
        )
        assert answer.status_code == 200, answer.text
    alice = modelreg.Registry(live_server.url, token=tokens["alice"])
    alice.create_model("fraud")
    alice.grant("carol", "contributor", model="fraud")
    alice.close()
    return {**tokens, "old_digest": old.files[0].sha256}


def _audit(url: str, token: str, model: str) -> httpx.Response:
    with httpx.Client(base_url=url) as http:
        return http.get(
            "/api/v1/audit",
            params={"model": model, "limit": 1000},
            headers={"Authorization": f"Bearer {token}"},
        )


def test_new_model_with_a_reused_name_sees_only_its_own_events(live_server, renamed):
    answer = _audit(live_server.url, renamed["carol"], "fraud")
    assert answer.status_code == 200, answer.text
    events = answer.json()["items"]
    assert [e["action"] for e in events] == ["registry:model:create", "auth:role:grant"]
    assert renamed["old_digest"] not in answer.text


def test_reused_name_cannot_reach_the_old_model_by_its_new_name(live_server, renamed):
    answer = _audit(live_server.url, renamed["carol"], "fraud-old")
    assert answer.status_code in (403, 404)
    assert renamed["old_digest"] not in answer.text


def test_renamed_model_keeps_its_history_from_before_the_rename(live_server, renamed):
    answer = _audit(live_server.url, renamed["alice"], "fraud-old")
    actions = [e["action"] for e in answer.json()["items"]]
    assert actions == [
        "registry:model:create",
        "registry:version:register",
        "registry:model:rename",
    ]
    assert renamed["old_digest"] in answer.text


def test_cli_filters_by_id_too(live_server, renamed, monkeypatch, capsys):
    monkeypatch.setenv("MODELREG_TOKEN", renamed["carol"])
    assert main(["--registry", live_server.url, "audit", "--model", "fraud", "--json"]) == 0
    out = capsys.readouterr().out
    assert renamed["old_digest"] not in out
    assert {e["target"] for e in json.loads(out)["items"]} == {"fraud", "principal:carol"}


def test_sdk_refuses_the_old_model_to_the_new_models_contributor(live_server, renamed):
    carol = modelreg.Registry(live_server.url, token=renamed["carol"])
    with pytest.raises((errors.NotFound, errors.PermissionDenied)):
        carol.audit("fraud-old")
    assert all(renamed["old_digest"] not in json.dumps(e.to_dict()) for e in carol.audit("fraud"))
    carol.close()


def test_policy_written_before_its_model_is_that_models_history(home, files):
    reg = modelreg.Registry(home)
    reg.set_policy_rule("scoring", "production", approvals=1)
    reg.register("scoring", files / "model.pkl", capture=False)
    assert [e.action for e in reg.audit("scoring")] == [
        "registry:policy:set",
        "registry:model:create",
        "registry:version:register",
    ]
    reg.set_policy_rule("scoring", "production", approvals=2)
    reg.delete("scoring", reason="retired")
    reg.create_model("scoring")  # the rule outlived the model; its old events do not
    assert [e.action for e in reg.audit("scoring")] == ["registry:model:create"]
    reg.close()


def test_deleted_then_recreated_name_is_a_new_model(home, files):
    reg = modelreg.Registry(home)
    reg.register("churn", files / "model.pkl", capture=False)
    reg.delete("churn", reason="retired")
    reg.create_model("churn")
    assert [e.action for e in reg.audit("churn")] == ["registry:model:create"]
    reg.close()


def test_migration_backfills_model_ids_by_replaying_renames(home, files):
    """0008 fills ``model_id`` of old events by replaying creates, renames and deletes."""
    reg = modelreg.Registry(home)
    reg.register("a", files / "model.pkl", capture=False)  # model 1 as "a"
    reg.set_policy_rule("b", "production", approvals=1)  # a rule before any "b"
    reg.register("gone", files / "model.pkl", capture=False)
    reg.delete("gone", reason="x")
    reg.close()
    engine = make_engine(Settings.for_home(home).db_url)
    from modelreg.db.session import transaction
    from modelreg.services import models
    from modelreg.services.actor import Actor

    with transaction(engine, write=True) as session:
        session.execute(text("DELETE FROM policy_rules"))
        models.rename_model(session, "a", "b", actor=Actor("root"))  # model 1 is now "b"
    reg = modelreg.Registry(home)
    reg.register("a", files / "model_dir", capture=False)  # model 2 takes "a"
    reg.register("gone", files / "model.pkl", capture=False)  # model 3 takes "gone"
    reg.close()

    def owners() -> dict[int, object]:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT seq, model_id FROM audit_events ORDER BY seq"))
            return {r.seq: r.model_id for r in rows}

    written = owners()
    schema.downgrade(engine, "0006")
    schema.upgrade(engine)
    replayed = owners()
    with engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT normalized_name, id FROM models")).all())
    # The replay gives each event of a living model the id the code wrote.
    living = set(ids.values())
    assert {s: m for s, m in replayed.items() if m in living} == {
        s: m for s, m in written.items() if m in living
    }
    with engine.connect() as conn:
        keys = {
            r.seq: (r.action, r.model_key)
            for r in conn.execute(text("SELECT seq, action, model_key FROM audit_events"))
        }
    by_model: dict[object, list[str]] = {}
    for seq, model_id in owners().items():
        by_model.setdefault(model_id, []).append(f"{keys[seq][0]} {keys[seq][1]}")
    assert len(ids) == 3
    assert by_model[ids["b"]] == [
        "registry:model:create a",
        "registry:version:register a",
        "registry:model:rename b",
    ]
    assert by_model[ids["a"]] == ["registry:model:create a", "registry:version:register a"]
    assert by_model[ids["gone"]] == [
        "registry:model:create gone",
        "registry:version:register gone",
    ]
    # The rule written for "b" while no model had that name waits for the next model created
    # as "b"; model 1 was renamed to "b", so nothing adopts it. The deleted "gone" keeps an id
    # no model has.
    assert by_model[None] == ["registry:policy:set b"]
    gone = [m for m, events in by_model.items() if "registry:model:delete gone" in events]
    assert len(gone) == 1
    assert gone[0] not in ids.values()
    assert by_model[gone[0]] == [
        "registry:model:create gone",
        "registry:version:register gone",
        "registry:model:delete gone",
    ]
    engine.dispose()
    reopened = modelreg.Registry(home)
    assert reopened.verify_audit()["ok"]
    reopened.close()

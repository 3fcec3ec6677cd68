"""The governance scenario of the seeds, end to end: once through Python, once through the CLI.

Policy: staging needs accuracy ≥ 0.80; production needs ≥ 0.85, comes only from staging and
needs one approval. fraud_detector v1 (0.82) reaches staging but is refused production; v2
goes to production after another approver approves; v3 replaces it (v2 archived); a rollback
puts v2 back and archives v3; history, ``show --at`` and the audit log tell all of it.

Python runs embedded and against a live server, on SQLite and PostgreSQL. Embedded, each
person is a registry opened with their name (local authority); remotely each has a token and
the role the scenario gives them, so separation of duties is enforced by the server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import modelreg
from modelreg.cli.main import main
from modelreg.errors import PermissionDenied, PolicyViolation

PEOPLE = {"alice": "contributor", "bob": "approver", "carol": "approver", "root": "admin"}


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights" * 100)
    return path


@pytest.fixture(params=["embedded", "remote"])
def people(
    request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, modelreg.Registry]]:
    """One ``Registry`` per person, each acting under their own name."""
    opened: list[modelreg.Registry] = []
    if request.param == "embedded":
        regs = {}
        for name in PEOPLE:
            monkeypatch.setenv("MODELREG_ACTOR", name)
            registry = modelreg.Registry(home)
            registry.backend  # noqa: B018 (opens now, so the actor is read now)
            regs[name] = registry
        monkeypatch.delenv("MODELREG_ACTOR")
        opened = list(regs.values())
    else:
        local = modelreg.Registry(home)
        tokens = {}
        for name, role in PEOPLE.items():
            local.create_user(name, role=role)
            tokens[name] = local.create_token(name)["token"]
        local.close()
        server = request.getfixturevalue("live_server")
        regs = {n: modelreg.Registry(server.url, token=t) for n, t in tokens.items()}
        opened = list(regs.values())
    yield regs
    for registry in opened:
        registry.close()


def test_the_seeds_scenario_in_python(people: dict[str, modelreg.Registry], model_file: Path):
    root, alice, bob, carol = people["root"], people["alice"], people["bob"], people["carol"]
    root.set_policy_rule("*", "staging", requires=["metrics.accuracy >= 0.80"])
    root.set_policy_rule(
        "fraud_detector",
        "production",
        requires=["metrics.accuracy >= 0.85"],
        from_stages=["staging"],
        approvals=1,
    )
    alice.register("fraud_detector", model_file, metrics={"accuracy": 0.82})
    alice.register("fraud_detector", model_file, metrics={"accuracy": 0.88})

    assert alice.promote("fraud_detector", 1, "staging").state == "applied"
    with pytest.raises(PolicyViolation) as refusal:
        alice.promote("fraud_detector", 1, "production", reason="try")
    (failed,) = refusal.value.failed_criteria
    assert failed["criterion"] == "metrics.accuracy >= 0.85"
    assert failed["actual"] == {"metrics.accuracy": 0.82}

    assert alice.promote("fraud_detector", 2, "staging").state == "applied"
    pending = alice.promote("fraud_detector", 2, "production", reason="AUC up")
    assert pending.state == "pending"
    assert pending.id is not None
    assert [p.id for p in bob.promotions(state="pending")] == [pending.id]
    with pytest.raises(PermissionDenied, match="separation of duties"):
        alice.approve(pending.id)
    applied = bob.approve(pending.id, reason="eval report reviewed")
    assert applied.state == "applied"
    assert [a["actor"] for a in applied.approvals] == ["bob"]
    assert bob.get_version("fraud_detector/production").version == 2
    between = bob.history("fraud_detector")[-1]["at"]

    alice.register("fraud_detector", model_file, metrics={"accuracy": 0.91})
    assert alice.promote("fraud_detector", 3, "staging").state == "applied"
    request_3 = alice.promote("fraud_detector", 3, "production", expect_current=2)
    assert carol.approve(request_3.id).state == "applied"
    stages = {v.version: v.stage for v in bob.list_versions("fraud_detector")}
    assert stages == {1: "staging", 2: "archived", 3: "production"}

    result = bob.rollback("fraud_detector", reason="p99 latency doubled")
    assert result == {
        "name": "fraud_detector",
        "target": "production",
        "from_version": 3,
        "to_version": 2,
    }
    stages = {v.version: v.stage for v in bob.list_versions("fraud_detector")}
    assert stages == {1: "staging", 2: "production", 3: "archived"}

    # Which model made the decision at a past moment?
    assert bob.get_version("fraud_detector/production", at=between).version == 2
    history = bob.history("fraud_detector")
    moves = [(h["action"], h["version"], h["from_stage"], h["to_stage"]) for h in history]
    assert moves == [
        ("promote", 1, "none", "staging"),
        ("promote", 2, "none", "staging"),
        ("promote", 2, "staging", "production"),
        ("promote", 3, "none", "staging"),
        ("replaced", 2, "production", "archived"),
        ("promote", 3, "staging", "production"),
        ("rollback", 3, "production", "archived"),
        ("rollback", 2, "archived", "production"),
    ]
    assert history[2]["request_id"] == pending.id
    assert history[2]["actor"] == "bob"
    assert history[-1]["reason"] == "p99 latency doubled"

    actions = [e.action for e in root.audit("fraud_detector", limit=1000)]
    for expected in (
        "registry:promotion:promote",
        "registry:promotion:approve",
        "registry:version:stage",
        "registry:model:rollback",
        "registry:policy:set",
    ):
        assert expected in actions
    refusals = [
        e
        for e in root.audit("fraud_detector", limit=1000)
        if e.action == "registry:promotion:promote" and e.after["state"] == "refused"
    ]
    assert len(refusals) == 1
    assert refusals[0].actor == "alice"
    assert root.verify_audit()["ok"] is True


# --------------------------------------------------------------------------------------------
# The same through the CLI, with exit codes and --json, as a CI pipeline runs it


@pytest.fixture
def cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    home = tmp_path / "cli-registry"
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str, actor: str = "alice") -> tuple[int, str, str]:
        monkeypatch.setenv("MODELREG_ACTOR", actor)
        code = main(["--registry", str(home), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_the_seeds_scenario_through_the_cli(cli, model_file: Path, tmp_path: Path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        """
scopes:
  "*":
    staging:
      requires: ["metrics.accuracy >= 0.80"]
  fraud_detector:
    production:
      requires: ["metrics.accuracy >= 0.85"]
      from_stages: [staging]
      approvals: 1
"""
    )
    code, out, _ = cli("policy", "apply", str(policy), "--json", actor="root")
    assert code == 0, out
    assert json.loads(out)["changes"]["fraud-detector"]["created"] == ["production"]
    for accuracy in ("0.82", "0.88"):
        assert (
            cli("register", "fraud_detector", "model.bin", "--metric", f"accuracy={accuracy}")[0]
            == 0
        )

    assert cli("promote", "fraud_detector", "1", "--to", "staging")[0] == 0
    code, out, err = cli("promote", "fraud_detector", "1", "--to", "production")
    assert code == 3
    assert "metrics.accuracy >= 0.85" in err
    assert "0.82" in err
    code, out, _ = cli("promote", "fraud_detector", "1", "--to", "production", "--json")
    assert code == 3
    envelope = json.loads(out)["error"]
    assert envelope["code"] == "policy_violation"
    assert envelope["detail"]["failed_criteria"][0]["actual"] == {"metrics.accuracy": 0.82}

    assert cli("promote", "fraud_detector", "2", "--to", "staging")[0] == 0
    code, out, _ = cli("promote", "fraud_detector", "2", "--to", "production", "--json")
    assert code == 4
    request_id = str(json.loads(out)["id"])
    code, _, err = cli("approve", request_id)
    assert code == 5
    assert "separation of duties" in err
    code, out, _ = cli("promotions", "--pending", "--json", actor="bob")
    assert [str(p["id"]) for p in json.loads(out)["items"]] == [request_id]
    assert cli("approve", request_id, "--reason", "ok", actor="bob")[0] == 0

    assert cli("register", "fraud_detector", "model.bin", "--metric", "accuracy=0.91")[0] == 0
    assert cli("promote", "fraud_detector", "3", "--to", "staging")[0] == 0
    code, out, _ = cli(
        "promote", "fraud_detector", "3", "--to", "production", "--expect-current", "2", "--json"
    )
    assert code == 4
    assert cli("approve", str(json.loads(out)["id"]), actor="carol")[0] == 0
    code, out, _ = cli("show", "fraud_detector:2", "--json")
    assert json.loads(out)["stage"] == "archived"

    # Someone else moved production first: compare-and-set refuses (exit 6).
    code, _, err = cli(
        "rollback", "fraud_detector", "--reason", "x", "--expect-current", "2", actor="bob"
    )
    assert code == 6
    code, out, _ = cli(
        "rollback", "fraud_detector", "--reason", "p99 latency doubled", "--json", actor="bob"
    )
    assert code == 0
    assert json.loads(out) == {
        "name": "fraud_detector",
        "target": "production",
        "from_version": 3,
        "to_version": 2,
    }
    code, out, _ = cli("show", "fraud_detector/production", "--json")
    assert json.loads(out)["version"] == 2

    code, out, _ = cli("history", "fraud_detector")
    assert code == 0
    assert "rollback: version 2: archived → production  by bob" in out
    assert "replaced: version 2: production → archived" in out
    code, out, _ = cli("audit", "--model", "fraud_detector", "--json", "--limit", "1000")
    actions = [e["action"] for e in json.loads(out)["items"]]
    assert "registry:model:rollback" in actions
    assert actions.count("registry:promotion:approve") == 2
    assert cli("audit", "verify")[0] == 0

"""The lifecycle commands' edges: strict policy files, user text in output, bounds, JSON shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelreg.cli.main import main


@pytest.fixture
def run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.bin").write_bytes(b"weights")
    home = tmp_path / "registry"

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(["--registry", str(home), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'scopes:\n  m:\n    production:\n      requires: ["metrics.a > 1"]\n'
            "      requires: []\n",
            "'requires' appears twice",
        ),
        ("scopes:\n  m:\n    staging: {}\n  m:\n    staging: {}\n", "'m' appears twice"),
        ("scopes:\n  on:\n    staging: {}\n", "must be a string"),
        ("a: &x [1]\nscopes:\n  m:\n    staging: {requires: *x}\n", "anchors and aliases"),
        ("scopes: [1, 2]\n", "'scopes' mapping"),
        ("scopes:\n  m: {staging: {approvals: 1}}\nextra: 1\n", "unknown top-level"),
        ("scopes:\n  m:\n    staging: {aprovals: 1}\n", "unknown key(s) aprovals"),
        ("scopes: {m: {staging: {requires: [\n", "not valid YAML"),
    ],
)
def test_a_policy_file_that_could_mean_something_unseen_is_refused(run, tmp_path, text, message):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    code, _, err = run("policy", "apply", str(path))
    assert code == 1
    assert message in err
    code, out, _ = run("policy", "list", "--json")
    assert json.loads(out) == {"scopes": {}}


def test_user_text_is_printed_as_text_not_markup(run):
    assert run("register", "mk", "m.bin", "--tag", "validated=[/red]")[0] == 0
    code, _, _ = run(
        "policy",
        "set",
        "mk",
        "--stage",
        "staging",
        "--require-tag",
        "validated=true",
        "--require",
        "tags.x = '[/]'",
    )
    assert code == 0
    code, out, _ = run("promote", "mk", "1", "--to", "staging", "--dry-run")
    assert code == 3
    assert "[/red]" in out
    code, out, _ = run("policy", "show", "mk")
    assert code == 0
    assert "tags.x = '[/]'" in out


@pytest.mark.parametrize(
    "args", [["approve", "99999999999999999999"], ["reject", "0", "--reason", "x"]]
)
def test_request_ids_out_of_range_are_usage_errors(run, args):
    assert run(*args)[0] == 1


def test_expect_current_out_of_range_is_a_usage_error(run):
    assert run("register", "m", "m.bin")[0] == 0
    code, _, err = run("promote", "m", "1", "--to", "staging", "--expect-current", "9" * 20)
    assert code == 1
    assert "not a version number" in err


def test_a_pending_protected_alias_exits_4_with_the_request_in_the_envelope(run):
    assert run("register", "m", "m.bin")[0] == 0
    assert run("policy", "set", "m", "--alias", "champion", "--approvals", "1")[0] == 0
    code, out, _ = run("alias", "set", "m", "champion", "1", "--json")
    assert code == 4
    envelope = json.loads(out)["error"]
    assert envelope["code"] == "approval_required"
    assert envelope["detail"]["promotion"]["state"] == "pending"
    assert envelope["detail"]["request_id"] == envelope["detail"]["promotion"]["id"]


def test_dry_run_exit_codes_say_what_would_happen(run):
    assert run("register", "m", "m.bin", "--metric", "acc=0.5")[0] == 0
    assert (
        run("policy", "set", "m", "--stage", "staging", "--require", "metrics.acc >= 0.9")[0] == 0
    )
    assert run("policy", "set", "m", "--stage", "production", "--approvals", "1")[0] == 0
    code, out, _ = run("promote", "m", "1", "--to", "staging", "--dry-run", "--json")
    assert (code, json.loads(out)["state"]) == (3, "refused")
    code, out, _ = run("promote", "m", "1", "--to", "production", "--dry-run", "--json")
    assert (code, json.loads(out)["state"], json.loads(out)["id"]) == (4, "pending", None)
    code, out, _ = run("promotions", "--json")
    assert json.loads(out) == {"items": [], "next_page_token": None}


def test_the_policy_file_round_trips_through_policy_list(run, tmp_path: Path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        'scopes:\n  "*":\n    staging: {requires: ["metrics.acc >= 0.8"]}\n'
        "  m:\n    production: {approvals: 2, from_stages: [staging]}\n"
        '    "@champion": {approvals: 1, required_tags: {validated: "true"}}\n'
    )
    assert run("policy", "apply", str(policy))[0] == 0
    code, out, _ = run("policy", "list", "--json")
    exported = tmp_path / "exported.json"
    exported.write_text(out)
    code, out, _ = run("policy", "apply", str(exported), "--json")
    assert code == 0
    changes = json.loads(out)["changes"]
    assert all(not c["created"] and not c["updated"] and not c["deleted"] for c in changes.values())

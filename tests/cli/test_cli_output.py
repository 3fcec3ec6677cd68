"""What a person sees: every command's human output, and lineage captured from git."""

from __future__ import annotations

import json
import subprocess

import pytest

from modelreg.cli.main import main
from modelreg.db.schema import SCHEMA_REVISION


@pytest.fixture
def run(tmp_path, capsys, monkeypatch, files):
    monkeypatch.chdir(files)
    home = tmp_path / "cli-home"

    def invoke(*args: str, code: int = 0) -> str:
        got = main(["--registry", str(home), *args])
        out, err = capsys.readouterr()
        assert got == code, (args, out, err)
        return out + err

    return invoke


@pytest.fixture
def populated(run):
    run("register", "base", "model.pkl", "--no-capture")
    run(
        "register",
        "fraud",
        "model.pkl",
        "--metric",
        "accuracy=0.82",
        "--param",
        "depth=4",
        "--tag",
        "team=risk",
        "--semver",
        "1.0.0",
        "--dataset",
        "tx@2026-10",
        "--parent",
        "base:1",
        "--run-id",
        "run-7",
        "--description",
        "first cut",
        "--no-capture",
    )
    run(
        "register",
        "fraud",
        "model_dir",
        "--metric",
        "accuracy=0.88",
        "--bump",
        "minor",
        "--no-capture",
    )
    run("alias", "set", "fraud", "champion", "2", "--reason", "better")
    return run


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["versions", "fraud"], ["fraud", "1.1.0", "champion", "accuracy=0.88"]),
        (["models"], ["fraud", "champion→2", "base"]),
        (["show", "fraud"], ["latest version: 2", "aliases: champion=2"]),
        (
            ["show", "fraud:1"],
            [
                "fraud:1 (semver 1.0.0)",
                "metrics: accuracy=0.82",
                "params: depth=4",
                "datasets: tx@2026-10",
                "parents: base:1",
                "run: run-7",
                "first cut",
                "model.pkl",
            ],
        ),
        (["search", "tags.team = 'risk'"], ["fraud", "1.0.0"]),
        (["search", "name = 'nothing'"], ["no versions match"]),
        (["compare", "fraud", "1", "2"], ["metrics.accuracy", "+0.06", "params.depth", "added"]),
        (["lineage", "fraud:1"], ["fraud:1", "run_id=run-7", "base:1"]),
        (["lineage", "base:1"], ["derived: fraud:1"]),
        (["history", "fraud"], ["@champion: - → 2", "“better”"]),
        (["audit", "--model", "fraud"], ["registry:version:register", "fraud@champion"]),
        (["audit", "verify"], ["audit log intact: 6 events"]),
        (["tag", "fraud:1", "reviewed=yes"], ["fraud:1: tags", "reviewed=yes"]),
        (["describe", "fraud", "card fraud"], ["description updated"]),
        (["gc", "--dry-run"], ["would remove 0 blob(s)"]),
        (["db", "current"], [f"modelreg expects {SCHEMA_REVISION}"]),
        (["db", "upgrade"], [f"schema already at {SCHEMA_REVISION}"]),
    ],
)
def test_human_output(populated, args, expected):
    out = populated(*args)
    for text in expected:
        assert text in out, (text, out)


def test_delete_and_alias_delete(populated):
    assert "removed (pointed at 2)" in populated("alias", "delete", "fraud", "champion")
    assert "deleted fraud:2" in populated("delete", "fraud:2", "--reason", "bad", "--yes")
    assert "deleted base" in populated("delete", "base", "--reason", "gone", "--yes")
    assert "no models yet" not in populated("models")
    out = populated("gc", "--grace", "0")
    assert "removed 2 blob(s)" in out


def test_empty_registry_messages(run):
    assert "no models yet" in run("models")
    assert "no events" in run("audit")


def test_tag_needs_something_to_do(run):
    run("register", "m", "model.pkl", "--no-capture")
    assert "give K=V pairs" in run("tag", "m", code=1)


def test_broken_audit_log_exits_1(populated, tmp_path):
    from sqlalchemy import text

    from modelreg.db.session import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'cli-home' / 'registry.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET target = 'x' WHERE seq = 2"))
    engine.dispose()
    assert "BROKEN at event 2" in populated("audit", "verify", code=1)
    out = populated("audit", "verify", "--json", code=1)
    assert json.loads(out.split("\n}")[0] + "\n}")["first_bad_seq"] == 2


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_git_lineage_is_captured_without_credentials(run, files):
    git(files, "init", "-q")
    git(files, "-c", "user.email=a@b", "-c", "user.name=a", "add", "model.pkl")
    git(files, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "init")
    git(files, "remote", "add", "origin", "https://alice:s3cret@git.example.com/ml/fraud.git")
    out = run("register", "fraud", "model.pkl", "--json")
    version = json.loads(out.split("\n}\n")[0] + "\n}")
    lineage = version["lineage"]
    assert lineage["git_repo"] == "https://git.example.com/ml/fraud.git"
    assert len(lineage["git_commit"]) == 40
    assert lineage["git_dirty"] is False
    (files / "model.pkl").write_bytes(b"changed")
    out = run("register", "fraud", "model.pkl", "--json")
    assert json.loads(out.split("\n}\n")[0] + "\n}")["lineage"]["git_dirty"] is True
    assert "s3cret" not in run("audit", "--json")

"""The CLI contract: the issue's walkthrough, --json documents, exit codes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelreg.cli.main import main


@pytest.fixture
def run(tmp_path, capsys, monkeypatch, files):
    monkeypatch.chdir(files)
    home = tmp_path / "cli-home"

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(["--registry", str(home), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_the_walkthrough_of_the_issue(run, tmp_path):
    assert (
        run(
            "register",
            "fraud_detector",
            "model.pkl",
            "--metric",
            "accuracy=0.82",
            "--param",
            "n_estimators=100",
            "--tag",
            "team=risk",
        )[0]
        == 0
    )
    assert (
        run(
            "register",
            "fraud_detector",
            "./model_dir",
            "--metric",
            "accuracy=0.88",
            "--bump",
            "minor",
            "--tag",
            "team=risk",
        )[0]
        == 0
    )
    code, out, _ = run("versions", "fraud_detector")
    assert code == 0
    assert "fraud_detector" in out
    assert run("alias", "set", "fraud_detector", "champion", "2")[0] == 0
    code, out, _ = run("show", "fraud_detector@champion", "--json")
    shown = json.loads(out)
    assert (shown["version"], shown["semver"], shown["aliases"]) == (2, "0.1.0", ["champion"])
    code, out, _ = run("search", "metrics.accuracy > 0.85 AND tags.team = 'risk'", "--json")
    assert [(v["name"], v["version"]) for v in json.loads(out)["items"]] == [("fraud_detector", 2)]
    code, out, _ = run("compare", "fraud_detector", "1", "2", "--json")
    assert json.loads(out)["metrics"][0]["key"] == "accuracy"
    out_dir = tmp_path / "out"
    assert run("download", "fraud_detector:1", "-o", str(out_dir))[0] == 0
    assert (out_dir / "model.pkl").read_bytes() == b"pickle-bytes" * 100
    code, out, _ = run("audit", "verify", "--json")
    assert code == 0
    assert json.loads(out)["ok"] is True


@pytest.mark.parametrize(
    "command",
    [
        ["models"],
        ["versions", "m"],
        ["search", "version >= 1"],
        ["show", "m"],
        ["show", "m:1"],
        ["compare", "m", "1", "1"],
        ["lineage", "m:1"],
        ["history", "m"],
        ["audit"],
        ["audit", "verify"],
        ["tag", "m:1", "k=v"],
        ["describe", "m", "text"],
        ["alias", "set", "m", "champion", "1"],
        ["gc", "--dry-run"],
        ["db", "current"],
    ],
)
def test_json_is_one_document_on_stdout(run, command):
    assert run("register", "m", "model.pkl", "--no-capture")[0] == 0
    code, out, _ = run(*command, "--json")
    assert code == 0
    json.loads(out)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["show", "ghost:1"], 2),
        (["show", "ghost"], 2),
        (["register", "../evil", "model.pkl"], 1),
        (["register", "a/b/c", "model.pkl"], 1),
        (["register", "-rf", "model.pkl"], 1),
        (["register", "x" * 300, "model.pkl"], 1),
        (["register", "ok", "does-not-exist.bin"], 1),
        (["register", "ok", "model.pkl", "--metric", "acc=high"], 1),
        (["register", "ok", "model.pkl", "--tag", "novalue"], 1),
        (["search", "metrics.acc >"], 1),
        (["alias", "set", "ghost", "champion", "1"], 2),
        (["no-such-command"], 1),
        (["register"], 1),
    ],
)
def test_exit_codes_and_nothing_created(run, args, code):
    assert run(*args)[0] == code
    _, out, _ = run("models", "--json")
    assert json.loads(out)["items"] == []


def test_errors_with_json_print_the_envelope(run):
    code, out, err = run("show", "ghost:1", "--json")
    assert code == 2
    assert json.loads(out)["error"]["code"] == "model_not_found"
    assert "no model named" in err


def test_conflict_exits_6(run):
    run("register", "m", "model.pkl", "--semver", "1.0.0", "--no-capture")
    assert run("register", "m", "model.pkl", "--semver", "1.0.0", "--no-capture")[0] == 6


def test_every_command_has_help_with_an_example(run):
    from modelreg.cli.main import cli

    def walk(group, prefix):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from walk(command, [*prefix, name])
            yield [*prefix, name]

    for path in walk(cli, []):
        code, out, _ = run(*path, "--help")
        assert code == 0, path
        groups = (["alias"], ["db"], ["users"], ["tokens"], ["policy"])
        assert "Example" in out or path in groups, path


def test_import_is_light():
    code = (
        "import sys, modelreg; modelreg.Registry; "
        "heavy = ('sqlalchemy', 'alembic', 'rich', 'click', 'pydantic'); "
        "heavy = [m for m in heavy if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_old_schema_is_not_upgraded_silently(tmp_path, run):
    from sqlalchemy import text

    from modelreg.db.schema import SCHEMA_REVISION
    from modelreg.db.session import make_engine

    assert run("register", "m", "model.pkl", "--no-capture")[0] == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'cli-home' / 'registry.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()
    code, _, err = run("models")
    assert code == 1
    assert "modelreg db upgrade" in err
    _, out, _ = run("db", "current", "--json")
    assert json.loads(out) == {"current": "0000", "expected": SCHEMA_REVISION, "up_to_date": False}


def test_home_env_sets_the_default_registry(tmp_path, monkeypatch, capsys, files):
    monkeypatch.chdir(files)
    monkeypatch.setenv("MODELREG_HOME", str(tmp_path / "via-env"))
    assert main(["register", "m", "model.pkl", "--no-capture"]) == 0
    assert (tmp_path / "via-env" / "registry.db").is_file()
    assert Path(tmp_path / "via-env" / "blobs").is_dir()

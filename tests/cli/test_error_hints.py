"""Errors that say how to fix the command (issue 19 #8).

A stage typed wrong (``fraud_detector/prod``), a model name with a typo, an alias the model
lacks and a server that does not answer each get the hint a person needs, in the message and,
for ``--json``, in ``detail``; an unreachable registry has its own exit code (7). Hints come from
what the caller may read: a model it cannot see is never suggested.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import modelreg
from modelreg.api.app import create_app
from modelreg.cli.main import main
from modelreg.config import Settings
from server_process import ThreadedServer, free_port

Run = Callable[..., tuple[int, dict, str]]


def seed(home: Path, files: Path) -> None:
    with modelreg.Registry(home) as reg:
        for name in ("fraud_detector", "team/fraud", "churn"):
            reg.register(name, files / "model.pkl", capture=False)
        reg.set_alias("fraud_detector", "champion", 1)
        reg.set_alias("fraud_detector", "challenger", 1)


@pytest.fixture(params=["embedded", "remote"])
def run(request, tmp_path: Path, files: Path, capsys, monkeypatch) -> Iterator[Run]:
    home = tmp_path / "hints"
    seed(home, files)
    server = None
    location = str(home)
    if request.param == "remote":
        server = ThreadedServer(create_app(Settings.for_home(home))).__enter__()
        location = server.url

    def invoke(*args: str) -> tuple[int, dict, str]:
        code = main(["--registry", location, *args, "--json"])
        out, err = capsys.readouterr()
        return code, json.loads(out), err

    yield invoke
    if server is not None:
        server.__exit__(None, None, None)


def test_a_wrong_stage_names_the_stages(run: Run) -> None:
    code, out, err = run("show", "fraud_detector/prod")
    assert code == 2
    assert "no stage 'prod'; stages are none, staging, production, archived" in err
    assert "did you mean fraud_detector/production?" in err
    assert out["error"]["detail"]["stages"] == ["none", "staging", "production", "archived"]
    assert out["error"]["detail"]["did_you_mean"] == ["fraud_detector/production"]
    assert "no model named" not in out["error"]["message"]


def test_a_wrong_stage_of_a_namespaced_model_names_the_stages(run: Run) -> None:
    """``team/fraud/prod`` is no valid name at all (one ``team/`` prefix): still a stage typo."""
    code, out, err = run("show", "team/fraud/prod")
    assert code == 1
    assert "model 'team/fraud' has no stage 'prod'; stages are none, staging" in err
    assert out["error"]["detail"]["did_you_mean"] == ["team/fraud/production"]


def test_a_hint_never_creates_a_registry(tmp_path: Path, capsys, monkeypatch) -> None:
    """``show a/b/c`` fails before it opens the registry; its hint must not create one."""
    monkeypatch.chdir(tmp_path)
    assert main(["--registry", "./nothere", "show", "a/b/c"]) == 1
    assert "invalid reference" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_namespaced_model_is_still_a_model(run: Run) -> None:
    """``team/x``: the part before the slash is no model, so it reads as a model name."""
    code, out, err = run("show", "team/frad")
    assert code == 2
    assert "did you mean team/fraud?" in err
    assert out["error"]["detail"]["did_you_mean"] == ["team/fraud"]
    assert "stages" not in out["error"]["detail"]


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("fraud_detectr", "fraud_detector"),
        ("Fraud_Detector2", "fraud_detector"),
        ("chrun", "churn"),
    ],
)
def test_a_typo_gets_did_you_mean(run: Run, typed: str, meant: str) -> None:
    for command in (("show", typed), ("versions", typed), ("show", f"{typed}:1")):
        code, out, err = run(*command)
        assert code == 2, command
        assert f"did you mean {meant}?" in err
        assert out["error"]["detail"]["did_you_mean"] == [meant]


def test_nothing_close_adds_nothing(run: Run) -> None:
    code, out, err = run("show", "zzzzzz")
    assert code == 2
    assert "did you mean" not in err
    assert "did_you_mean" not in out["error"]["detail"]


def test_a_missing_alias_lists_the_aliases(run: Run) -> None:
    code, out, err = run("show", "fraud_detector@champ")
    assert code == 2
    assert "its aliases are @challenger, @champion" in err
    assert "did you mean @champion?" in err
    assert out["error"]["detail"]["aliases"] == ["challenger", "champion"]
    code, out, err = run("show", "churn@champion")
    assert "churn has no aliases yet" in err


def test_an_unreachable_registry_says_how_to_start_one(capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["--registry", url, "models", "--json"])
    out, err = capsys.readouterr()
    assert code == 7
    error = json.loads(out)["error"]
    assert error["code"] == "unavailable"
    assert "modelreg server" in err
    assert "MODELREG_URI" in err
    assert "modelreg server" in error["detail"]["hint"]
    assert error["detail"]["url"] == url


def test_hints_never_name_a_model_the_caller_cannot_read(
    tmp_path: Path, files: Path, capsys, monkeypatch
) -> None:
    home = tmp_path / "team"
    seed(home, files)
    with modelreg.Registry(home) as reg:
        reg.register("fraud_secret", files / "model.pkl", capture=False)
        reg.set_alias("fraud_secret", "hidden", 1)
        reg.create_user("admin", role="admin")
        reg.create_user("bob", role="viewer", model="churn")
        monkeypatch.setenv("MODELREG_TOKEN", str(reg.create_token("bob", label="t")["token"]))
    with ThreadedServer(create_app(Settings.for_home(home))) as server:
        # bob reads churn only: what he may not read is absent, hints included.
        for ref in ("fraud_secre", "fraud_detectr", "fraud_secret/prod", "fraud_secret@hid"):
            code = main(["--registry", server.url, "show", ref, "--json"])
            out, err = capsys.readouterr()
            assert code == 2, ref
            error = json.loads(out)["error"]
            assert error["code"] == "model_not_found", ref
            assert set(error["detail"]) == {"name"}, ref
            assert err.strip() == f"error: no model named {error['detail']['name']!r}", ref
        # and what he may read still gets its hint
        assert main(["--registry", server.url, "show", "chrun", "--json"]) == 2
        assert "did you mean churn?" in capsys.readouterr().err


def test_an_unreachable_import_source_exits_7_without_the_registry_hint(
    tmp_path: Path, capsys
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["--registry", str(tmp_path / "r"), "import", "mlflow", "--from", url, "--json"])
    out, err = capsys.readouterr()
    assert code == 7
    error = json.loads(out)["error"]
    assert error["code"] == "unavailable"
    assert "MLflow server" in error["message"]
    # `modelreg server` starts a registry, not the MLflow server that is missing here.
    assert "modelreg server" not in err

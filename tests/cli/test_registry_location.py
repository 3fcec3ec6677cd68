"""Where a registry may be created (issue 19 #7).

``MODELREG_URI=127.0.0.1:18102`` once created ``./127.0.0.1:18102/registry.db``. A value that
looks like a server address without its scheme is refused with the URL to use instead, and a
folder is created only at the default location or where the value is written as a path; a bare
word must name a folder that exists. The CLI (``--registry``, ``MODELREG_URI``), the server and
``modelreg.Registry`` follow the one rule.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import modelreg
from modelreg.cli.main import main
from modelreg.errors import InvalidInput

HOST_LIKE = [
    "127.0.0.1:18102",
    "127.0.0.1",
    "localhost:8080",
    "registry.example.com:8080",
    "myserver:8080",
    "[::1]:8080",
    "[::1]",
    "::1",
    "fe80::1",
    "10.0.0.7:5000/api",
    "localhost:8080/reg",
]


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    return here


@pytest.mark.parametrize("value", HOST_LIKE)
@pytest.mark.parametrize("how", ["env", "option"])
def test_a_server_address_without_scheme_is_refused(
    value: str, how: str, cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    if how == "env":
        monkeypatch.setenv("MODELREG_URI", value)
        argv = ["models", "--json"]
    else:
        argv = ["--registry", value, "models", "--json"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    error = json.loads(out)["error"]
    assert error["code"] == "invalid_input"
    assert f"http://{value}" in err
    assert error["detail"]["did_you_mean"] == f"http://{value}"
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("value", HOST_LIKE)
def test_the_python_api_refuses_them_too(value: str, cwd: Path) -> None:
    with pytest.raises(InvalidInput, match="http://"):
        modelreg.Registry(value)
    assert list(cwd.iterdir()) == []


def test_an_other_scheme_is_refused(cwd: Path, capsys) -> None:
    assert main(["--registry", "ftp://example.com/reg", "models"]) == 1
    assert "http://" in capsys.readouterr().err
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("how", ["env", "option", "python", "server", "db"])
def test_a_bare_word_that_is_not_a_folder_is_not_created(
    how: str, cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    if how == "python":
        reg = modelreg.Registry("myreg")
        with pytest.raises(InvalidInput, match=r"\./myreg"):
            reg.list_models()
        reg.close()
    else:
        argv = {
            "env": ["models"],
            "option": ["--registry", "myreg", "models"],
            "server": ["--registry", "myreg", "server", "--port", "0"],
            "db": ["--registry", "myreg", "db", "current"],
        }[how]
        if how == "env":
            monkeypatch.setenv("MODELREG_URI", "myreg")
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "no registry folder 'myreg'" in err
        assert "--registry ./myreg" in err
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("value", ["./reg", "sub/reg", "./127.0.0.1:18102", "./localhost:8080/reg"])
def test_a_path_is_created(value: str, cwd: Path, capsys) -> None:
    assert main(["--registry", value, "models"]) == 0
    assert (cwd / value / "registry.db").is_file()


def test_an_existing_folder_named_by_a_bare_word_is_used(cwd: Path, capsys) -> None:
    (cwd / "myreg").mkdir()
    assert main(["--registry", "myreg", "models"]) == 0
    assert (cwd / "myreg" / "registry.db").is_file()


def test_a_path_object_is_a_folder(cwd: Path) -> None:
    with modelreg.Registry(Path("myreg")) as reg:
        assert list(reg.list_models()) == []
    assert (cwd / "myreg" / "registry.db").is_file()


def test_the_default_location_is_created(cwd: Path, tmp_path: Path) -> None:
    home = Path(os.environ["MODELREG_HOME"])
    assert not home.exists()
    assert main(["models"]) == 0
    assert (home / "registry.db").is_file()


def test_a_relative_modelreg_home_is_the_default_and_is_created(
    cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELREG_HOME", "homereg")
    assert main(["models"]) == 0
    assert (cwd / "homereg" / "registry.db").is_file()

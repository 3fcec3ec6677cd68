"""The training environment recorded with a version: where it was read, and read from there.

``modelreg register`` runs in the CLI's environment, not the training one: the recorded
``environment.source`` says which it was, and ``--env-from`` / ``env_from=`` points at the
training environment (a requirements file, a conda file, ``pip freeze`` output, a venv's
python). A file that cannot be read is an error that registers nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelreg.cli.main import main
from modelreg.errors import InvalidInput


@pytest.fixture
def run(tmp_path, capsys, monkeypatch, files):
    monkeypatch.chdir(files)
    home = tmp_path / "cli-home"

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(["--registry", str(home), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def _environment(run, *args: str) -> dict[str, object]:
    code, out, err = run("register", "fraud", "model.pkl", "--json", *args)
    assert code == 0, err
    return json.loads(out)["environment"]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A real venv (no pip) holding one distribution of its own, ``tinydist 1.2``."""
    root = tmp_path_factory.mktemp("training") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = next((root / "lib").glob("python*/site-packages"))
    info = site / "tinydist-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinydist\nVersion: 1.2\n")
    return root


def test_the_cli_says_it_recorded_its_own_environment(run):
    env = _environment(run)
    assert env["source"] == "cli-process"
    assert any(p.lower().startswith("click==") for p in env["packages"])


def test_the_python_api_records_the_training_process(sqlite_reg, files):
    version = sqlite_reg.register("fraud", files / "model.pkl")
    assert version.environment["source"] == "python-process"
    assert version.environment["python"] == ".".join(map(str, sys.version_info[:3]))
    assert any(p.lower().startswith("pytest==") for p in version.environment["packages"])


def test_requirements_txt(run, files):
    (files / "requirements.txt").write_text(
        "# training\nnumpy>=1.26,<3\nscikit-learn==1.5.0  # pinned\n"
        "torch[cuda] ; sys_platform == 'linux'\n--index-url https://example.org/simple\n\n"
    )
    env = _environment(run, "--env-from", "requirements.txt")
    assert env == {
        "python": None,
        "packages": [
            "numpy>=1.26,<3",
            "scikit-learn==1.5.0",
            "torch[cuda] ; sys_platform == 'linux'",
        ],
        "source": "requirements.txt",
    }


def test_pip_freeze_output(run, files):
    (files / "frozen.txt").write_text(
        "numpy==2.0.1\nmylib @ file:///src/mylib\n-e git+https://example.org/x.git#egg=x\n"
    )
    env = _environment(run, "--env-from", "frozen.txt")
    assert env["source"] == "pip freeze"
    assert env["packages"] == [
        "-e git+https://example.org/x.git#egg=x",
        "mylib @ file:///src/mylib",
        "numpy==2.0.1",
    ]


def test_conda_yaml(run, files):
    (files / "conda.yaml").write_text(
        "name: train\nchannels: [conda-forge]\ndependencies:\n  - python=3.11.9\n"
        "  - numpy=1.26\n  - pip\n  - pip:\n      - mlflow==2.14.1\n"
    )
    env = _environment(run, "--env-from", "conda.yaml")
    assert env == {
        "python": "3.11.9",
        "packages": ["mlflow==2.14.1", "numpy=1.26", "pip", "python=3.11.9"],
        "source": "conda.yaml",
    }


@pytest.mark.parametrize("how", ["python", "folder"])
def test_a_venvs_python_is_run_to_list_its_packages(run, venv, how):
    target = venv / "bin" / "python" if how == "python" else venv
    env = _environment(run, "--env-from", str(target))
    # Its own distribution, none of ours (the CLI's click, the tests' pytest).
    assert env["packages"] == ["tinydist==1.2"]
    assert env["source"] == f"venv:{venv / 'bin' / 'python'}"
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))


def test_env_from_goes_over_http_too(reg, files, venv):
    version = reg.register("fraud", files / "model.pkl", env_from=venv / "bin" / "python")
    assert version.environment["packages"] == ["tinydist==1.2"]
    assert version.environment["source"].startswith("venv:")
    assert reg.get_version("fraud:1").environment == version.environment


def test_env_from_is_recorded_even_without_other_capture(sqlite_reg, files):
    (files / "requirements.txt").write_text("numpy==2.0.1\n")
    version = sqlite_reg.register(
        "fraud", files / "model.pkl", capture=False, env_from=files / "requirements.txt"
    )
    assert version.environment["packages"] == ["numpy==2.0.1"]
    assert version.lineage.get("git_commit") is None


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.txt", None, "no such file"),
        (
            "requirements.txt",
            "numpy==2.0\nthis is not a requirement!\n",
            "line 2: not a requirement",
        ),
        ("requirements.txt", "# nothing pinned\n\n", "no packages"),
        ("weights.bin", b"\x80\x81\xfe\xff" * 10, "cannot be read as text"),
        ("conda.yaml", "dependencies: numpy\n", "needs a `dependencies:` list"),
        ("conda.yaml", "dependencies: [\n", "not valid YAML"),
        ("python", "#!/bin/sh\necho nope >&2\nexit 3\n", "not a python that can list"),
    ],
)
def test_a_bad_env_from_is_a_clear_error_that_registers_nothing(run, files, name, content, message):
    path = files / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
        path.chmod(0o755 if name == "python" else 0o644)
    code, _out, err = run("register", "fraud", "model.pkl", "--env-from", name)
    assert code == 1
    assert message in err
    assert name in err
    code, _out, err = run("show", "fraud")
    assert code == 2, err  # no model was created


def test_the_python_api_raises_invalid_input(sqlite_reg, files):
    with pytest.raises(InvalidInput, match="no such file"):
        sqlite_reg.register("fraud", files / "model.pkl", env_from=files / "nope.txt")
    assert list(sqlite_reg.list_models()) == []


def test_a_forged_source_is_bounded(sqlite_reg):
    from modelreg.client._files import collect_files

    meta = {"environment": {"python": "3.11", "packages": [], "source": "x" * 2000}}
    with pytest.raises(InvalidInput, match=r"environment\.source"):
        sqlite_reg.backend.register("fraud", collect_files([__file__]), meta, None)

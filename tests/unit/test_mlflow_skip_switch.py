"""The switch that skips the MLflow compatibility tests offline, and never in CI.

The README's test command builds an MLflow venv on first use; it tells offline users how to
skip that, and this holds the switch to what the README says.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_env import MAKE_VENV, SKIP_VARIABLE, skip_reason

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def test_the_variable_skips_off_ci():
    reason = skip_reason({SKIP_VARIABLE: "1"})
    assert reason is not None
    assert MAKE_VENV in reason


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_ci_never_skips(ci):
    assert skip_reason({SKIP_VARIABLE: "1", "CI": ci}) is None


@pytest.mark.parametrize("value", ["", None])
def test_unset_builds_the_venv(value):
    environ = {} if value is None else {SKIP_VARIABLE: value}
    assert skip_reason(environ) is None


def test_the_readme_names_the_switch_the_tests_read():
    assert f"{SKIP_VARIABLE}=1 pytest" in README
    assert "bench/.mlflow-venv" in README
    assert "850 MB" in README

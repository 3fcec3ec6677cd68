"""The venv with the real MLflow client and server, shared by the benchmark and the tests.

MLflow's pins clash with modelreg's, so MLflow lives in a venv of its own, made with this
Python at ``bench/.mlflow-venv`` (gitignored) and reused while it holds the pinned release.
``bench/compare.py`` makes it on first use; CI makes it before the tests, which need it
(``tests/mlflow_env.py``):

    .venv/bin/python bench/mlflow_venv.py          # make or reuse it; prints its python

Standard library only, so that it can be loaded from any venv.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# MLflow 3.18.0 is on PyPI, but the mlflow-skinny and mlflow-tracing 3.18.0 it pins exactly
# are not, so it cannot be installed; 3.17.2 is the newest release that can (and the one
# the numbers and shared/MLFLOW-PROTOCOL.md were taken from). Bump with
# --mlflow-version once 3.18.0 resolves.
MLFLOW_VERSION = "3.17.2"
DEFAULT_VENV = Path(__file__).resolve().parent / ".mlflow-venv"
# MLflow reads and writes ``s3://`` artifact roots with boto3, which it does not install
# itself: the S3 import tests and the S3 transfer benchmark run MLflow against moto.
EXTRA_PACKAGES = ("boto3>=1.35,<2",)
# MLflow 3 sends usage telemetry by default; runs on loopback send nothing anywhere.
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def installed_mlflow(python: Path) -> str | None:
    """The mlflow version installed for ``python`` beside boto3, if any (without importing)."""
    if not python.exists():
        return None
    code = "import importlib.metadata as m; m.version('boto3'); print(m.version('mlflow'))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_mlflow_venv(
    venv: Path = DEFAULT_VENV, version: str = MLFLOW_VERSION
) -> tuple[Path, dict[str, Any]]:
    """A venv with ``mlflow==version`` made with this Python, reused when already right.

    ``mlflow`` (not ``mlflow-skinny``) brings scikit-learn and skops along, which the tests'
    scripts use.
    """
    python = venv / "bin" / "python"
    if installed_mlflow(python) == version:
        return python, {"path": str(venv), "created": False, "install_s": None}
    print(f"installing mlflow=={version} into {venv} (once; reused later)…", file=sys.stderr)
    started = time.perf_counter()
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, f"mlflow=={version}", *EXTRA_PACKAGES], check=True)
    seconds = time.perf_counter() - started
    print(f"  installed in {seconds:.1f} s", file=sys.stderr)
    return python, {"path": str(venv), "created": True, "install_s": round(seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="default: %(default)s")
    parser.add_argument("--mlflow-version", default=MLFLOW_VERSION, help="default: %(default)s")
    args = parser.parse_args()
    python, _ = ensure_mlflow_venv(args.venv, args.mlflow_version)
    print(python)
    return 0


if __name__ == "__main__":
    sys.exit(main())

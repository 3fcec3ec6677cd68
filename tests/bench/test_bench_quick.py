"""``bench/compare.py --quick --skip-mlflow`` keeps working (issue #6).

It runs the modelreg side of the comparison with tiny sizes and checks the JSON it writes:
every workload present with a number, versions contiguous, the download verified. Benchmarks
are not timed tests, so nothing here looks at how fast anything was.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

COMPARE = Path(__file__).resolve().parents[2] / "bench" / "compare.py"

WORKLOADS = [
    "register_sequential",
    "register_concurrent",
    "resolve_sequential",
    "resolve_readers",
    "search_metric",
    "search_fresh",
    "search_name",
    "upload",
    "download",
    "reregister",
    "upload_client_rss",
    "upload_server_rss",
    "download_client_rss",
    "download_server_rss",
    "import",
    "import_client",
    "server_ready_cold",
    "server_ready_warm",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("bench")
    out = work / "out.json"
    args = ["--quick", "--skip-mlflow", "--json", str(out), "--workdir", str(work)]
    done = subprocess.run(
        [sys.executable, str(COMPARE), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "workload" in done.stdout  # the table went to stdout
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def test_every_workload_is_reported_once(report: dict[str, Any]) -> None:
    assert [row["workload"] for row in report["rows"]] == WORKLOADS


@pytest.mark.parametrize("workload", WORKLOADS)
def test_workload_has_a_number_for_modelreg_only(report: dict[str, Any], workload: str) -> None:
    row = next(r for r in report["rows"] if r["workload"] == workload)
    cell = row["modelreg"]
    value = cell["value"]
    assert isinstance(value, int | float)
    assert not isinstance(value, bool)
    assert math.isfinite(value)
    assert cell["errors"] == 0
    assert cell["error"] is None
    assert row["mlflow"] is None  # --skip-mlflow
    assert row["ratio"] is None


def test_versions_are_contiguous(report: dict[str, Any]) -> None:
    assert report["checks"]["modelreg"]["contiguous"] is True


def test_download_is_verified(report: dict[str, Any]) -> None:
    assert report["checks"]["modelreg"]["download_verified"] is True


def test_machine_is_noted(report: dict[str, Any]) -> None:
    machine = report["machine"]
    assert machine["cores"] >= 1
    assert machine["python"] == ".".join(map(str, sys.version_info[:3]))
    assert machine["mlflow"] is None

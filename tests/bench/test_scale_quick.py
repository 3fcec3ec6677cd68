"""``bench/scale.py --quick`` keeps working (issue #6, scope 2).

It loads 200 models x 10 versions into a throwaway PostgreSQL with COPY, serves them with a
real ``modelreg server`` and measures every read workload, the web UI's pages too; this checks
the JSON it writes has every workload with numbers. Benchmarks are not timed tests, so nothing
here looks at how fast anything was.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pg import find_pg_bin

SCALE = Path(__file__).resolve().parents[2] / "bench" / "scale.py"

WORKLOADS = [
    "search_filtered_all_models",
    "list_versions_filtered",
    "list_models_first_page",
    "list_models_later_page",
    "list_versions_page",
    "resolve_alias",
    "resolve_stage",
    "resolve_number",
    "model_page",
    "ui_models_first_page",
    "ui_models_later_page",
    "ui_search",
    "ui_model_page",
    "ui_version_page",
    "ui_compare",
    "ui_history",
    "ui_promotions",
    "ui_audit",
]
PAGES = [w for w in WORKLOADS if w.startswith("ui_")]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find_pg_bin() is None, reason="PostgreSQL is not installed (apt-get install postgresql)"
    ),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("scale")
    out = work / "out.json"
    done = subprocess.run(
        [sys.executable, str(SCALE), "--quick", "--json", str(out), "--workdir", str(work)],
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


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_every_workload_is_reported_once(report: dict[str, Any]) -> None:
    assert [row["workload"] for row in report["rows"]] == WORKLOADS


@pytest.mark.parametrize("workload", WORKLOADS)
def test_workload_has_numeric_percentiles(report: dict[str, Any], workload: str) -> None:
    row = next(r for r in report["rows"] if r["workload"] == workload)
    assert row["errors"] == 0, row.get("first_error")
    assert row["samples"] > 0
    assert _number(row["p50_ms"])
    assert _number(row["p99_ms"])
    assert isinstance(row["meets_target"], bool)


@pytest.mark.parametrize("workload", PAGES)
def test_page_has_server_time_and_size(report: dict[str, Any], workload: str) -> None:
    row = next(r for r in report["rows"] if r["workload"] == workload)
    assert _number(row["server_p50_ms"])
    assert _number(row["server_p99_ms"])
    assert isinstance(row["max_bytes"], int)
    assert row["max_bytes"] > 0


def test_every_row_was_loaded(report: dict[str, Any]) -> None:
    rows = report["load"]["rows"]
    assert rows["models"] == 200
    assert rows["model_versions"] == 200 * 10
    assert rows["version_metrics"] == 2 * 200 * 10
    assert rows["aliases"] == 200
    assert _number(report["load"]["total_s"])
    assert _number(report["disk"]["database_mb"])

"""Human output piped or redirected is never cut (issue 19 #10).

Rich assumes 80 columns when stdout is not a terminal and cut cells to ``fraud_detec…``; a
script that greps a table, or a log that keeps it, needs every name, metric and digest whole.
Run as a real process with its stdout a pipe, also with a narrow ``COLUMNS``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import modelreg
from server_process import run_cli

LONG = "fraud_detector_trained_on_the_whole_history_of_card_transactions_v2"


@pytest.fixture
def home(tmp_path: Path, files: Path) -> Path:
    home = tmp_path / "piped"
    with modelreg.Registry(home) as reg:
        reg.register(
            LONG,
            files / "model.pkl",
            metrics={"accuracy": 0.912345, "recall": 0.7, "f1": 0.75, "auc": 0.93, "ks": 0.5},
            tags={"team": "risk-and-fraud-prevention-europe"},
            capture=False,
        )
        reg.set_alias(LONG, "champion_for_the_european_market", 1)
    return home


def test_piped_tables_are_never_cut(home: Path, files: Path) -> None:
    # A narrow COLUMNS too: piped output follows no window, real or claimed.
    env = {"COLUMNS": "40"}
    digest = hashlib.sha256((files / "model.pkl").read_bytes()).hexdigest()
    for args, whole in (
        (["models"], [LONG, "champion_for_the_european_market"]),
        (["versions", LONG], [LONG, "accuracy=0.912345", "f1=0.75", "auc=0.93", "ks=0.5"]),
        (["search", "tags.team = 'risk-and-fraud-prevention-europe'"], [LONG]),
        (["show", f"{LONG}:1"], [LONG, digest]),
    ):
        done = run_cli("--registry", str(home), *args, env=env)
        assert done.returncode == 0, done.stderr
        assert "…" not in done.stdout, done.stdout
        for text in whole:
            assert text in done.stdout, (args, text, done.stdout)

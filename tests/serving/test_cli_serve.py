"""``modelreg serve`` as a real process: several workers follow a promotion and sum their
metrics; a mistake on the command line is refused before anything listens."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from serving_harness import ServeProcess, wait_for

import modelreg
from server_process import run_cli

LOADER = "--loader=serving_fakes:load"


def test_two_workers_follow_a_promotion_and_share_metrics(
    reg: modelreg.Registry, registry_url: str, add_version: Callable[..., int], tmp_path: Path
) -> None:
    add_version(factor=1.0)
    add_version(factor=2.0)
    reg.promote("churn", 1, "production")
    serve = ServeProcess(
        registry_url, "models:/churn/production", "--workers", "2", LOADER, log=tmp_path / "s.log"
    )
    try:
        serve.wait_ready()
        reg.promote("churn", 2, "production")
        body = {"dataframe_records": [{"x": 3.0}]}

        def both_on_v2() -> bool:
            # Fresh connections land on either worker; 20 answers from v2 in a row means both.
            for _ in range(20):
                with httpx.Client() as client:
                    r = client.post(serve.url + "/invocations", json=body)
                if r.headers.get("modelreg-version") != "churn:2":
                    return False
                assert r.json() == {"predictions": [6.0]}
            return True

        wait_for("both workers on v2", both_on_v2)
        text = httpx.get(serve.url + "/metrics").text
        assert "modelreg_serve_requests_total" in text
        assert 'status="200",version="2"} 2' in text  # at least 20, summed over the workers
    finally:
        code = serve.stop()
    out = serve.output()
    assert code == 0, out
    assert "modelreg serve: models:/churn/production (now churn:1)" in out
    assert "serving churn:2 (was churn:1" in out


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["churn"], 1, "names a model, not a version"),
        (["churn/production", "--guard", "errors > 1"], 1, "cannot read the guard"),
        (["churn/production", "--guard", "error_rate > 2 over 60s"], 1, "between 0 and 1"),
        (["churn:1", "--guard", "error_rate > 0.1 over 60s"], 1, "stage or alias"),
        (["churn/production", "--loader", "nowhere:load"], 1, "cannot import the loader"),
        (["churn/production"], 2, "churn"),
        (["nosuch@champion"], 2, "nosuch"),
    ],
    ids=[
        "model-ref",
        "guard-syntax",
        "guard-rate",
        "guard-pinned",
        "loader",
        "no-version",
        "no-model",
    ],
)
def test_mistakes_are_refused_before_serving(
    registry_url: str, add_version: Callable[..., int], args: list[str], code: int, needle: str
) -> None:
    add_version()
    path = os.pathsep.join([str(Path(__file__).parent), *sys.path])
    done = run_cli(
        "--registry", registry_url, "serve", LOADER, *args, "--port", "1", env={"PYTHONPATH": path}
    )
    assert done.returncode == code, done.stderr
    assert needle in done.stderr

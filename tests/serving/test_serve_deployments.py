"""A serve process reports itself to the registry's deployments: at start, on each swap or
failure, and its end when it stops."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from serving_harness import serving, wait_for

import modelreg

needs_deployments = pytest.mark.skipif(
    not hasattr(modelreg.Registry, "report_deployment"),
    reason="Registry.report_deployment (issue 23, deployments) is not merged yet",
)


@needs_deployments
def test_serve_reports_its_swaps_failures_and_end(
    reg: modelreg.Registry, registry_url: str, add_version: Callable[..., int]
) -> None:
    add_version(factor=1.0)
    add_version(broken="load")
    reg.promote("churn", 1, "production")
    with serving(registry_url, "churn/production", address="http://10.0.0.7:9000") as server:
        wait_for("v1 served", lambda: httpx.get(server.url + "/ping").status_code == 200)
        deployment_id = httpx.get(server.url + "/version").json()["deployment"]

        def mine() -> object:
            found = [d for d in reg.deployments("churn").items if d.id == deployment_id]
            return found[0] if found else None

        first = wait_for("reported with v1", lambda: (d := mine()) and d.live_version == 1 and d)
        assert first.ref == "churn/production"
        assert first.address == "http://10.0.0.7:9000"
        assert first.status == "live"
        assert first.loaded_at
        reg.promote("churn", 2, "production")
        failed = wait_for("the failure reported", lambda: (d := mine()) and d.last_error and d)
        assert failed.live_version == 1
        assert failed.last_error.startswith("churn:2 was not swapped in")
    assert mine() is None  # a clean stop ends the deployment: its row goes away

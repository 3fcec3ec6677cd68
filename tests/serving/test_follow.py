"""Following REF: promotions swap in under load without a failed request; a version that fails
to load or warm is not swapped in; the guard rolls a failing version back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx
from serving_harness import ONE, Clients, serving, wait_for

import modelreg


def served(url: str) -> int | None:
    version: int | None = httpx.get(url + "/version").json()["version"]
    return version


def test_ten_promotions_under_four_clients_fail_no_request(
    reg: modelreg.Registry, registry_url: str, add_version: Callable[..., int]
) -> None:
    for factor in range(1, 12):  # version N predicts x * N
        add_version(factor=float(factor))
    reg.promote("churn", 1, "production")
    with serving(registry_url, "models:/churn/production") as server:
        wait_for("v1 served", lambda: served(server.url) == 1)
        with Clients(server.url) as clients:
            for version in range(2, 12):
                reg.promote("churn", version, "production")
                wait_for(f"v{version} served", lambda v=version: served(server.url) == v)
                # Some requests answered by this version before the next promotion.
                seen = len(clients.answers)
                wait_for("requests answered", lambda s=seen: len(clients.answers) > s + 4)
        doc = httpx.get(server.url + "/version").json()
    assert clients.failures == []
    statuses = Counter(status for status, _, _ in clients.answers)
    assert statuses == {200: len(clients.answers)}
    # Each answer came whole from the version its header names (the swap is atomic).
    for _, header, body in clients.answers:
        assert body == {"predictions": [float(header.split(":")[1])]}
    assert {h for _, h, _ in clients.answers} >= {f"churn:{v}" for v in range(2, 12)}
    assert doc["version"] == 11
    assert doc["last_error"] == ""
    assert doc["events"] is True


def test_a_version_that_fails_to_load_or_warm_is_not_swapped_in(
    reg: modelreg.Registry, registry_url: str, add_version: Callable[..., int]
) -> None:
    add_version(factor=2.0)
    add_version(broken="load")
    add_version(broken="warm")
    add_version(factor=4.0)
    reg.promote("churn", 1, "production")
    with serving(registry_url, "churn/production") as server:
        wait_for("v1 served", lambda: served(server.url) == 1)
        for broken in (2, 3):
            reg.promote("churn", broken, "production")
            doc = wait_for(
                f"v{broken} refused",
                lambda b=broken: (
                    (d := httpx.get(server.url + "/version").json())["last_error"].startswith(
                        f"churn:{b} was not swapped in"
                    )
                    and d
                ),
            )
            assert doc["version"] == 1
            assert doc["last_error_at"]
            answer = httpx.post(server.url + "/invocations", json=ONE)
            assert answer.status_code == 200
            assert answer.headers["modelreg-version"] == "churn:1"
            assert answer.json() == {"predictions": [2.0]}
        metrics = httpx.get(server.url + "/metrics").text
        assert 'modelreg_serve_swaps_total{model="churn",outcome="failed"} 2.0' in metrics
        reg.promote("churn", 4, "production")
        wait_for("v4 served", lambda: served(server.url) == 4)
        doc = httpx.get(server.url + "/version").json()
        assert doc["last_error"] == ""
        assert doc["last_error_at"] is None


def test_an_alias_is_followed_and_nothing_served_until_it_exists(
    reg: modelreg.Registry, registry_url: str, add_version: Callable[..., int]
) -> None:
    add_version(factor=1.0)
    add_version(factor=2.0)
    with serving(registry_url, "churn@champion") as server:
        doc = wait_for(
            "the missing alias reported",
            lambda: (d := httpx.get(server.url + "/version").json())["last_error"] and d,
        )
        assert doc["version"] is None
        assert "churn@champion" in doc["last_error"]
        assert httpx.get(server.url + "/ping").status_code == 503
        answer = httpx.post(server.url + "/invocations", json=ONE)
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        reg.set_alias("churn", "champion", 1)
        wait_for("v1 served", lambda: served(server.url) == 1)
        reg.set_alias("churn", "champion", 2)
        wait_for("v2 served", lambda: served(server.url) == 2)
        assert httpx.post(server.url + "/invocations", json=ONE).json() == {"predictions": [2.0]}


def test_without_the_event_stream_a_poll_follows(
    reg: modelreg.Registry, registry_url: str, add_version: Callable[..., int]
) -> None:
    add_version(factor=1.0)
    add_version(factor=2.0)
    reg.promote("churn", 1, "production")
    with serving(registry_url, "churn/production", events=False) as server:
        wait_for("v1 served", lambda: served(server.url) == 1)
        reg.promote("churn", 2, "production")
        wait_for("v2 served", lambda: served(server.url) == 2)
        assert httpx.get(server.url + "/version").json()["events"] is False


def test_the_guard_rolls_back_a_failing_version_with_the_measured_rate(
    reg: modelreg.Registry, registry_url: str, add_version: Callable[..., int]
) -> None:
    add_version(factor=1.0)
    add_version(broken="predict")
    reg.promote("churn", 1, "production")
    guard = "error_rate > 0.5 over 60s min 5"
    with serving(registry_url, "churn/production", guard=guard) as server:
        wait_for("v1 served", lambda: served(server.url) == 1)
        reg.promote("churn", 2, "production")
        wait_for("v2 served", lambda: served(server.url) == 2)
        statuses = [httpx.post(server.url + "/invocations", json=ONE).status_code for _ in range(5)]
        assert statuses == [500] * 5
        wait_for("rolled back to v1", lambda: served(server.url) == 1)
        assert httpx.post(server.url + "/invocations", json=ONE).status_code == 200
        text = httpx.get(server.url + "/metrics").text
        assert 'modelreg_serve_errors_total{kind="model",model="churn",version="2"} 5.0' in text
    assert reg.get_version("churn/production").version == 1
    rollback = [e for e in reg.audit("churn") if e.action.endswith("rollback")]
    assert len(rollback) == 1
    assert rollback[0].reason.startswith("serve guard: error rate 1.000 (5 of 5 requests) > 0.5")


def test_the_guard_is_not_armed_for_the_version_loaded_at_start(
    reg: modelreg.Registry, registry_url: str, add_version: Callable[..., int]
) -> None:
    add_version(factor=1.0)
    add_version(broken="predict")
    reg.promote("churn", 1, "production")
    reg.promote("churn", 2, "production")
    with serving(registry_url, "churn/production", guard="error_rate > 0.5 over 60s min 5") as s:
        wait_for("v2 served", lambda: served(s.url) == 2)
        for _ in range(10):
            assert httpx.post(s.url + "/invocations", json=ONE).status_code == 500
    assert reg.get_version("churn/production").version == 2

"""Prometheus metrics of one serve process (``GET /metrics``), in its own collector registry.

With several workers each process counts its own requests unless ``PROMETHEUS_MULTIPROC_DIR``
is set (``modelreg serve --workers N`` sets it): then every worker writes its samples there
and any worker answers ``/metrics`` with the sums (docs/serving.md, "Several workers").
"""

from __future__ import annotations

import os
from typing import Any

# Latency buckets for small models: 0.5 ms to 10 s.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """Requests, errors, latency, live version and swaps, labelled by model version."""

    def __init__(self, model: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.model = model
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        reg = self.registry
        self.requests = Counter(
            "modelreg_serve_requests",
            "Scoring requests answered, by version and HTTP status.",
            ["model", "version", "status"],
            registry=reg,
        )
        self.errors = Counter(
            "modelreg_serve_errors",
            "Scoring requests that failed: kind=input (4xx) or model (5xx).",
            ["model", "version", "kind"],
            registry=reg,
        )
        self.latency = Histogram(
            "modelreg_serve_request_duration_seconds",
            "Time to answer a scoring request (parse, check, predict, write).",
            ["model", "version"],
            buckets=BUCKETS,
            registry=reg,
        )
        self.live = Gauge(
            "modelreg_serve_live_version",
            "The version number answering requests (0 while none is loaded).",
            ["model"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.swaps = Counter(
            "modelreg_serve_swaps",
            "Versions loaded (outcome=ok, swapped in) or refused (outcome=failed).",
            ["model", "outcome"],
            registry=reg,
        )
        self.load_seconds = Histogram(
            "modelreg_serve_load_duration_seconds",
            "Time from seeing a new version to serving it: download, verify, load, warm.",
            ["model"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
            registry=reg,
        )
        self.live.labels(model).set(0)

    def observe(self, version: int | None, status: int, seconds: float) -> None:
        """Count one scoring request."""
        v = str(version or 0)
        self.requests.labels(self.model, v, str(status)).inc()
        self.latency.labels(self.model, v).observe(seconds)
        if status >= 400:
            kind = "model" if status >= 500 else "input"
            self.errors.labels(self.model, v, kind).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        source: Any = self.registry
        if self.multiprocess:
            from prometheus_client import CollectorRegistry, multiprocess

            source = CollectorRegistry()
            multiprocess.MultiProcessCollector(source)  # type: ignore[no-untyped-call]
        return generate_latest(source), CONTENT_TYPE_LATEST

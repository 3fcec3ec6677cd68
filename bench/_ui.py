"""The web UI's pages in ``bench/scale.py``: GETs of each page over one keep-alive connection.

The server is in laptop mode (no users), so a page needs no sign-in. Each sample asks for
another random model, as the API workloads do. Besides the wall time (``measure``), every
answer's ``Server-Timing: app;dur=…`` (the time the server spent building the page) and its
size are kept: a UI page meets its target when the server's p99 is under 100 ms and no
answer reaches 300 KB (issue 21).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from _common import percentile

TARGET_UI_P99_MS = 100.0
MAX_PAGE_BYTES = 300_000
UI_WORKLOADS = (
    "ui_models_first_page",
    "ui_models_later_page",
    "ui_search",
    "ui_model_page",
    "ui_version_page",
    "ui_compare",
    "ui_history",
    "ui_promotions",
    "ui_audit",
)


class UiWorkloads:
    """The page GETs, each a ``(i) -> None`` operation, and what their answers said."""

    def __init__(
        self,
        url: str,
        name_of: Callable[[int], str],
        search_of: Callable[[int], str],
        pinned: int,
        later_token: str | None,
    ) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.name_of, self.search_of = name_of, search_of
        self.pinned, self.later_token = pinned, later_token
        self.server_ms: list[float] = []
        self.sizes: list[int] = []

    def close(self) -> None:
        """Close the connection."""
        self.http.close()

    def get(self, path: str, params: Any = None) -> None:
        """One page; a status other than 200 counts as an error (``measure`` records it)."""
        answer = self.http.get(path, params=params)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:200]}")
        timing = answer.headers.get("server-timing", "")
        if timing.startswith("app;dur="):
            self.server_ms.append(float(timing.removeprefix("app;dur=")))
        self.sizes.append(len(answer.content))

    def table(self) -> dict[str, Callable[[int], object]]:
        """Workload name → operation."""
        n = self.pinned
        compared = [max(1, n - 2), max(1, n - 1), n] if n > 2 else [1, 2]

        def model(i: int) -> str:
            return f"/models/{self.name_of(i)}"

        return {
            "ui_models_first_page": lambda i: self.get("/"),
            "ui_models_later_page": lambda i: self.get("/", {"page_token": self.later_token}),
            "ui_search": lambda i: self.get("/search", {"q": self.search_of(i)}),
            "ui_model_page": lambda i: self.get(model(i)),
            "ui_version_page": lambda i: self.get(f"{model(i)}/versions/{n}"),
            "ui_compare": lambda i: self.get(f"{model(i)}/compare", [("v", v) for v in compared]),
            "ui_history": lambda i: self.get(f"{model(i)}/history"),
            "ui_promotions": lambda i: self.get("/promotions", {"state": "pending"}),
            "ui_audit": lambda i: self.get("/audit", {"model": self.name_of(i)}),
        }

    def reset(self) -> None:
        """Forget what was recorded (the warm-up's answers)."""
        self.server_ms, self.sizes = [], []

    def take(self, name: str) -> dict[str, Any]:
        """The server-side percentiles and the largest answer of the samples since last asked.

        Empty for a workload that is not a page. ``meets_target`` replaces the API's: server
        p99 under 100 ms and every answer under 300 KB.
        """
        ordered, sizes = sorted(self.server_ms), self.sizes
        self.reset()
        if name not in UI_WORKLOADS:
            return {}
        server_p50 = round(percentile(ordered, 50), 2) if ordered else None
        server_p99 = round(percentile(ordered, 99), 2) if ordered else None
        biggest = max(sizes) if sizes else None
        return {
            "server_p50_ms": server_p50,
            "server_p99_ms": server_p99,
            "max_bytes": biggest,
            "meets_target": server_p99 is not None
            and server_p99 < TARGET_UI_P99_MS
            and biggest is not None
            and biggest < MAX_PAGE_BYTES,
        }

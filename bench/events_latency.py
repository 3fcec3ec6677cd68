"""How soon a long-polling ``GET /api/v1/events`` answers after another process commits a change.

PYTHONPATH=src .venv/bin/python bench/events_latency.py [--pg] [--count N] [--writer embedded|http]

Starts ``modelreg server`` (its own process, default workers) on a fresh registry: SQLite, or
with ``--pg`` a throwaway PostgreSQL (the tests' ``tests/pg.py``). Each round parks one request
(``after`` = the last event, ``wait=30``), lets it settle, then changes a model's tags from this
process and times from the write's return (its commit done) to the long-poll's answer. The
writer is an embedded ``Registry`` on the same database (``embedded``: another process than the
server, so SQLite's stamp poller or PostgreSQL's LISTEN wakes it) or the server itself over
HTTP (``http``: the server's own after-commit hook). Prints p50, p90, p99 and max in ms.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

import modelreg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ServerProcess, percentile

ROOT = Path(__file__).resolve().parent.parent
MODELREG = str(Path(sys.executable).parent / "modelreg")
SETTLE = 0.05  # seconds a request is given to reach the server and park before the write


def _rounds(url: str, writer: modelreg.Registry, count: int) -> list[float]:
    writer.create_model("bench")
    with httpx.Client(base_url=url, timeout=60) as http:
        after = http.get("/api/v1/events").json()["next_after"]
        latencies: list[float] = []
        for i in range(count):
            answered: dict[str, Any] = {}

            def poll(cursor: int = after, out: dict[str, Any] = answered) -> None:
                body = http.get("/api/v1/events", params={"after": cursor, "wait": 30}).json()
                out["at"] = time.perf_counter()
                out["body"] = body

            waiter = threading.Thread(target=poll)
            waiter.start()
            time.sleep(SETTLE)
            writer.set_tags("bench", {"round": str(i)})
            committed = time.perf_counter()
            waiter.join()
            items = answered["body"]["items"]
            if not items or "at" not in answered:
                raise RuntimeError(f"round {i}: the long-poll answered without the change")
            latencies.append(max(0.0, answered["at"] - committed))
            after = answered["body"]["next_after"]
    return latencies


def _report(label: str, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    ms = {q: percentile(ordered, q) * 1000 for q in (50, 90, 99, 100)}
    print(
        f"{label}: {len(ordered)} rounds, p50 {ms[50]:.1f} ms, p90 {ms[90]:.1f} ms, "
        f"p99 {ms[99]:.1f} ms, max {ms[100]:.1f} ms"
    )


def _run(home: Path, label: str, count: int, writer_kind: str) -> None:
    server = ServerProcess(
        "modelreg",
        lambda port: [MODELREG, "--registry", str(home), "server", "--port", str(port)],
        ready_path="/readyz",
        log=home.parent / "server.log",
    ).start()
    writer = modelreg.Registry(home if writer_kind == "embedded" else server.url)
    try:
        _report(f"{label}, writer {writer_kind}", _rounds(server.url, writer, count))
    finally:
        writer.close()
        server.stop()


def main() -> None:
    """Measure on SQLite, or on a throwaway PostgreSQL with ``--pg``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--count", type=int, default=200, help="rounds")
    parser.add_argument("--writer", choices=["embedded", "http"], default="embedded")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "registry"
        home.mkdir()
        if not args.pg:
            _run(home, "sqlite", args.count, args.writer)
            return
        sys.path.insert(0, str(ROOT / "tests"))
        from pg import PostgresServer  # the tests' throwaway server

        pg = PostgresServer()
        pg.start()
        try:
            (home / "modelreg.toml").write_text(f'db = "{pg.create_database("bench_events")}"\n')
            _run(home, "postgresql", args.count, args.writer)
        finally:
            pg.stop()


if __name__ == "__main__":
    main()

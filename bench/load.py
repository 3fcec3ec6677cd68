"""A simple load loop against a real `modelreg server`: register and resolve, ops/s and latency.

Usage:
    .venv/bin/python bench/load.py [--workers 4] [--registrations 300] [--seconds 10] [--quick]
        [--db URL] [--json FILE]

It starts `modelreg server` on a free loopback port for a fresh registry folder (SQLite unless
--db), and measures with the real Python client (httpx):
  register   small-artifact registrations, sequential, then 8 concurrent clients
  resolve    GET /api/v1/resolve?uri=models:/m@champion, sequential, then 5 concurrent readers
Prints one table; --json writes the same rows. Benchmarks are not tests: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
from _common import ServerProcess, measure, stderr, timed_readers

import modelreg


def start_server(home: Path, workers: int, db: str | None) -> ServerProcess:
    def command(port: int) -> list[str]:
        cmd = [sys.executable, "-m", "modelreg.cli.main", "--registry", str(home), "server"]
        cmd += ["--port", str(port), "--workers", str(workers)]
        return cmd + (["--db", db] if db else [])

    home.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(
        "modelreg", command, ready_path="/readyz", log=home.parent / "server.log"
    )
    server.start()
    stderr(f"server ready in {server.ready_s:.2f} s ({workers} workers)")
    return server


def row(label: str, stats: dict[str, object]) -> dict[str, object]:
    if stats["errors"]:  # measure() counts failed calls instead of stopping at the first
        stderr(f"{label}: {stats['errors']} calls failed, first: {stats.get('first_error')}")
    keys = ("ops", "errors", "ops_per_s", "p50_ms", "p99_ms")
    return {"workload": label, **{k: stats[k] for k in keys}}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--registrations", type=int, default=300)
    parser.add_argument("--resolves", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--db", help="database URL (default: SQLite in the temp registry)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script works")
    parser.add_argument("--json", dest="json_out", help="also write the rows as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.registrations, args.resolves, args.seconds = 10, 20, 0.5

    tmp = Path(tempfile.mkdtemp(prefix="modelreg-bench-"))
    artifact = tmp / "model.bin"
    artifact.write_bytes(os.urandom(4096))
    server = start_server(tmp / "registry", args.workers, args.db)
    url = server.url
    rows = []
    try:
        client = modelreg.Registry(url)
        counter = iter(range(10**9))
        lock = threading.Lock()

        def register(_i: int) -> None:
            with lock:
                i = next(counter)
            client.register("bench", artifact, metrics={"i": float(i)}, capture=False)

        rows.append(row("register (sequential)", measure(register, args.registrations)))
        rows.append(row("register (8 clients)", measure(register, args.registrations, 8)))
        numbers = sorted(v.version for v in client.list_versions("bench", page_size=1000))
        assert numbers == list(range(1, len(numbers) + 1)), "versions are not contiguous"
        client.set_alias("bench", "champion", 1)

        def resolver() -> Callable[[int], None]:
            http = httpx.Client(base_url=url)

            def resolve(_i: int) -> None:
                response = http.get("/api/v1/resolve", params={"uri": "models:/bench@champion"})
                response.raise_for_status()

            return resolve

        rows.append(row("resolve @alias (sequential)", measure(resolver(), args.resolves)))
        rows.append(
            row(
                f"resolve @alias (5 readers, {args.seconds:g} s)",
                timed_readers(resolver, args.seconds, 5),
            )
        )
        client.close()
    finally:
        server.stop()
    width = max(len(str(r["workload"])) for r in rows)
    print(f"{'workload':<{width}}  {'ops':>6}  {'ops/s':>8}  {'p50 ms':>8}  {'p99 ms':>8}")
    for r in rows:
        print(
            f"{r['workload']:<{width}}  {r['ops']:>6}  {r['ops_per_s']:>8}  "
            f"{r['p50_ms']:>8}  {r['p99_ms']:>8}"
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

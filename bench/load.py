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
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

import modelreg


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(home: Path, workers: int, db: str | None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "modelreg.cli.main",
        "--registry",
        str(home),
        "server",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if db:
        cmd += ["--db", db]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.02)
    print(
        f"server ready in {time.perf_counter() - started:.2f} s ({workers} workers)",
        file=sys.stderr,
    )
    return proc, url


def measure(label: str, op: Callable[[], object], count: int, threads: int) -> dict[str, object]:
    latencies: list[float] = []
    lock = threading.Lock()

    def one(_: int) -> None:
        start = time.perf_counter()
        op()
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)

    started = time.perf_counter()
    if threads == 1:
        for i in range(count):
            one(i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(count)))
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "workload": label,
        "ops": count,
        "ops_per_s": round(count / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
    }


def timed_readers(
    label: str, op: Callable[[], object], seconds: float, threads: int
) -> dict[str, object]:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def reader() -> None:
        local: list[float] = []
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            op()
            local.append(time.perf_counter() - start)
        with lock:
            latencies.extend(local)

    started = time.perf_counter()
    workers = [threading.Thread(target=reader) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "workload": label,
        "ops": len(latencies),
        "ops_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


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
    proc, url = start_server(tmp / "registry", args.workers, args.db)
    rows = []
    try:
        client = modelreg.Registry(url)
        counter = iter(range(10**9))
        lock = threading.Lock()

        def register() -> None:
            with lock:
                i = next(counter)
            client.register("bench", artifact, metrics={"i": float(i)}, capture=False)

        rows.append(measure("register (sequential)", register, args.registrations, 1))
        rows.append(measure("register (8 clients)", register, args.registrations, 8))
        numbers = sorted(v.version for v in client.list_versions("bench", page_size=1000))
        assert numbers == list(range(1, len(numbers) + 1)), "versions are not contiguous"
        client.set_alias("bench", "champion", 1)
        http = httpx.Client(base_url=url)

        def resolve() -> None:
            response = http.get("/api/v1/resolve", params={"uri": "models:/bench@champion"})
            response.raise_for_status()

        rows.append(measure("resolve @alias (sequential)", resolve, args.resolves, 1))
        readers = [httpx.Client(base_url=url) for _ in range(5)]
        local = threading.local()

        def resolve_pooled() -> None:
            if not hasattr(local, "client"):
                local.client = readers.pop()
            local.client.get(
                "/api/v1/resolve", params={"uri": "models:/bench@champion"}
            ).raise_for_status()

        rows.append(
            timed_readers(
                f"resolve @alias (5 readers, {args.seconds:g} s)", resolve_pooled, args.seconds, 5
            )
        )
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
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

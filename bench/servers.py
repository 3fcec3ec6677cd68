"""Several `modelreg server` processes on one PostgreSQL: registrations/s and resolves/s.

Usage:
    .venv/bin/python bench/servers.py [--servers 1,2,3] [--clients 6] [--seconds 12]
        [--quick] [--json FILE]

It starts a throwaway PostgreSQL (the tests' `tests/pg.py`) and, for each server count, a fresh
database and registry folder with that many `modelreg server --workers 1` processes on it
(one artifacts folder, one database, each on its own loopback port). A fixed number of client
threads, thread t talking to server t mod N, then run for --seconds each:
  register   `Registry.register` of a new 4 KiB file (one per call), version numbers checked
             contiguous afterwards
  resolve    GET /api/v1/resolve?uri=models:/bench@champion over keep-alive httpx
Prints one table (ops/s, p50, p99 per configuration) and the load average before and after;
--json writes the same. The clients run in this one Python process, so they share its GIL:
on a small machine the client side is part of what is measured. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _common import ServerProcess, stderr, timed_readers

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from modelreg import Registry  # noqa: E402
from pg import PostgresServer, find_pg_bin  # noqa: E402  (the tests' server, on their path)

RESOLVE_URI = "models:/bench@champion"


def start_servers(home: Path, db_url: str, count: int) -> list[ServerProcess]:
    """``count`` one-worker servers on one database and one artifacts folder, all ready."""

    def command(port: int) -> list[str]:
        cmd = [sys.executable, "-m", "modelreg.cli.main", "--registry", str(home), "server"]
        cmd += ["--db", db_url, "--artifacts", str(home / "blobs")]
        return [*cmd, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]

    servers = []
    try:
        for k in range(count):
            server = ServerProcess(
                f"modelreg-{k}", command, ready_path="/readyz", log=home.parent / f"server-{k}.log"
            )
            servers.append(server)
            server.start()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def registrations(urls: list[str], inputs: Path, clients: int, seconds: float) -> dict[str, Any]:
    """Each client thread registers new 4 KiB files through its own server."""
    next_thread = itertools.count()

    def make_op() -> Callable[[int], None]:
        thread = next(next_thread)
        client = Registry(urls[thread % len(urls)])

        def register(i: int) -> None:
            path = inputs / f"t{thread}-{i}.bin"  # a new file each call: no digest-cache hit
            path.write_bytes(os.urandom(4096))
            client.register("bench", path, metrics={"i": float(i)}, capture=False)

        return register

    return timed_readers(make_op, seconds, clients)


def resolves(urls: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """Each client thread resolves the alias through its own server, keep-alive."""
    next_thread = itertools.count()

    def make_op() -> Callable[[int], None]:
        http = httpx.Client(base_url=urls[next(next_thread) % len(urls)])

        def resolve(_i: int) -> None:
            http.get("/api/v1/resolve", params={"uri": RESOLVE_URI}).raise_for_status()

        return resolve

    return timed_readers(make_op, seconds, clients)


def version_numbers(client: Registry) -> list[int]:
    """Every version number of `bench`, sorted, following the pages."""
    numbers: list[int] = []
    token: str | None = None
    while True:
        page = client.list_versions("bench", page_size=1000, page_token=token)
        numbers += [v.version for v in page]
        token = page.next_page_token
        if not token:
            return sorted(numbers)


def one_configuration(
    pg: PostgresServer, tmp: Path, count: int, clients: int, seconds: float
) -> list[dict[str, Any]]:
    """Fresh database and folder, ``count`` servers, both workloads; the rows."""
    db_url = pg.create_database(f"servers_{count}")
    home = tmp / f"registry-{count}"
    inputs = tmp / f"inputs-{count}"
    home.mkdir()
    inputs.mkdir()
    servers = start_servers(home, db_url, count)
    stderr(f"{count} server(s) ready: {', '.join(s.url for s in servers)}")
    rows = []
    try:
        urls = [s.url for s in servers]
        reg = registrations(urls, inputs, clients, seconds)
        with Registry(urls[0]) as client:
            numbers = version_numbers(client)
            contiguous = numbers == list(range(1, len(numbers) + 1))
            client.set_alias("bench", "champion", 1)
        res = resolves(urls, clients, seconds)
        for workload, stats in (("register", reg), ("resolve", res)):
            if stats["errors"]:
                stderr(f"{count}/{workload}: {stats['errors']} failed: {stats.get('first_error')}")
            rows.append({"servers": count, "workload": workload, "clients": clients, **stats})
        rows[0]["contiguous"] = contiguous
    finally:
        for server in servers:
            server.stop()
    shutil.rmtree(inputs, ignore_errors=True)
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    head = f"{'servers':>7}  {'workload':<8}  {'ops':>6}  {'errors':>6}  {'ops/s':>8}"
    lines = [head + f"  {'p50 ms':>8}  {'p99 ms':>8}"]
    for r in rows:
        lines.append(
            f"{r['servers']:>7}  {r['workload']:<8}  {r['ops']:>6}  {r['errors']:>6}  "
            f"{r['ops_per_s']:>8}  {r['p50_ms']:>8}  {r['p99_ms']:>8}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--servers", default="1,2,3", help="server counts to run, e.g. 1,3")
    parser.add_argument("--clients", type=int, default=6, help="client threads (fixed)")
    parser.add_argument("--seconds", type=float, default=12.0, help="per workload and count")
    parser.add_argument("--quick", action="store_true", help="1 s per workload: checks it runs")
    parser.add_argument("--json", dest="json_out", help="also write the report as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 1.0
    counts = [int(c) for c in args.servers.split(",")]
    bindir = find_pg_bin()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql-15)")
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_before": os.getloadavg(),
        "clients": args.clients,
        "seconds": args.seconds,
    }
    rows: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="modelreg-servers-"))
    try:
        with PostgresServer(bindir) as pg:
            for count in counts:
                rows += one_configuration(pg, tmp, count, args.clients, args.seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["load_after"] = os.getloadavg()
    report["rows"] = rows
    print(render(rows))
    before = " ".join(f"{x:.2f}" for x in report["load_before"])
    after = " ".join(f"{x:.2f}" for x in report["load_after"])
    print(f"\n{args.clients} client threads, {args.seconds:g} s per row; {os.cpu_count()} CPUs")
    print(f"load average before: {before}; after: {after}")
    broken = [r["servers"] for r in rows if r.get("contiguous") is False]
    if broken:
        print(f"versions NOT contiguous with {broken} servers")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if broken or any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

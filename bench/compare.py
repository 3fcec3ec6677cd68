"""modelreg vs MLflow, side by side on this machine, in one run: one table, optionally JSON.

Usage:
    .venv/bin/python bench/compare.py [--quick] [--skip-mlflow] [--json FILE] [sizes…]
    make bench ARGS="--json bench.json"

Starts a `modelreg server` and an `mlflow server` (MLflow from its own venv, created on first
use under bench/.mlflow-venv), both on SQLite and local disk on free loopback ports, and runs
the same workloads against both with each system's own Python client: modelreg.Registry(url)
in this venv, MlflowClient in MLflow's (bench/_mlflow_worker.py). Each workload runs in a
fresh client process:
  register   a 4 KiB artifact: sequential, then 8 concurrent clients; versions contiguous?
  resolve    name@alias: sequential, then 5 concurrent readers for --seconds
  search     a metric filter over --search-versions versions of one model (first page);
             MLflow cannot filter versions on metrics: see the `calls` notes it prints
  transfer   upload and download a --file-mb file (hashed and verified), `cp` as the floor,
             peak RSS of client and server; then re-register the identical file (dedup)
  startup    `import modelreg` vs `import mlflow` (fresh interpreter, median), server ready
Ratios are modelreg/MLflow; the unit column says which way is better (↑ or ↓). Medians and
p99 are over the samples. Benchmarks are not tests: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

from _common import RssProbe, ServerProcess, stderr, write_random_file
from mlflow_venv import (
    DEFAULT_VENV,
    MLFLOW_ENV,
    MLFLOW_VERSION,
    ensure_mlflow_venv,
    installed_mlflow,
)

import modelreg

BENCH = Path(__file__).resolve().parent
SYSTEMS = ("modelreg", "mlflow")
# Results of MLflow's client run against modelreg's server (the drop-in rows).
DROPIN = "mlflow-client-on-modelreg"
DROPIN_ROWS = (
    "register_sequential",
    "register_concurrent",
    "resolve_sequential",
    "resolve_readers",
)
WORKER_TIMEOUT = 3600.0


@dataclasses.dataclass
class Sizes:
    """How much of each workload to run."""

    registrations: int
    resolves: int
    seconds: float
    search_versions: int
    searches: int
    file_mb: int
    import_samples: int
    ready_samples: int
    concurrent_clients: int = 8
    readers: int = 5
    page: int = 100


FULL = Sizes(200, 500, 10.0, 5000, 50, 1024, 5, 3)
QUICK = Sizes(20, 20, 1.0, 200, 5, 8, 3, 1)


class WorkerFailed(Exception):
    """A worker process exited non-zero; carries the end of its log."""


class Harness:
    """The servers, worker processes and results of one run."""

    def __init__(self, tmp: Path, sizes: Sizes, args: argparse.Namespace) -> None:
        self.tmp = tmp
        self.sizes = sizes
        self.args = args
        self.results: dict[str, dict[str, Any]] = {name: {} for name in SYSTEMS}
        self.servers: dict[str, ServerProcess] = {}
        self.pythons: dict[str, Path] = {"modelreg": Path(sys.executable)}
        self.envs: dict[str, dict[str, str]] = {"modelreg": {}, "mlflow": MLFLOW_ENV}
        self.live: set[subprocess.Popen[bytes]] = set()
        self.lock = threading.Lock()
        self.calls = 0

    @property
    def systems(self) -> list[str]:
        return [name for name in SYSTEMS if name in self.pythons]

    # -- servers -------------------------------------------------------------------------

    def modelreg_server(self) -> ServerProcess:
        home = self.tmp / "modelreg"
        home.mkdir(exist_ok=True)
        workers = self.args.modelreg_workers

        def command(port: int) -> list[str]:
            cmd = [sys.executable, "-m", "modelreg.cli.main", "--registry", str(home), "server"]
            cmd += ["--db", f"sqlite:///{home / 'registry.db'}", "--artifacts", str(home / "blobs")]
            cmd += ["--host", "127.0.0.1", "--port", str(port)]
            return cmd + (["--workers", str(workers)] if workers else [])

        return ServerProcess(
            "modelreg", command, ready_path="/readyz", log=self.tmp / "modelreg-server.log"
        )

    def mlflow_server(self) -> ServerProcess:
        home = self.tmp / "mlflow"
        home.mkdir(exist_ok=True)
        mlflow = str(self.pythons["mlflow"].parent / "mlflow")
        workers = self.args.mlflow_workers

        def command(port: int) -> list[str]:
            cmd = [mlflow, "server", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}"]
            cmd += ["--artifacts-destination", str(home / "artifacts"), "--serve-artifacts"]
            cmd += ["--host", "127.0.0.1", "--port", str(port)]
            return cmd + (["--workers", str(workers)] if workers else [])

        return ServerProcess(
            "mlflow",
            command,
            ready_path="/health",
            log=self.tmp / "mlflow-server.log",
            env=MLFLOW_ENV,
        )

    def start_servers(self) -> None:
        """Start both servers on empty databases; their wait is the cold time-to-ready."""
        for name in self.systems:
            server = self.modelreg_server() if name == "modelreg" else self.mlflow_server()
            stderr(f"starting {name} server…")
            self.servers[name] = server.start()
            self.results[name]["ready_cold"] = [server.ready_s]
            stderr(f"  {name} ready in {server.ready_s:.2f} s at {server.url}")

    def stop_servers(self) -> None:
        for server in self.servers.values():
            server.stop()

    def restart_times(self) -> None:
        """Stop each server, then time ``ready_samples`` restarts on its now-full database."""
        for name in self.systems:
            self.servers[name].stop()
            samples = []
            for _ in range(self.sizes.ready_samples):
                server = self.modelreg_server() if name == "modelreg" else self.mlflow_server()
                try:
                    server.start()
                    samples.append(server.ready_s)
                finally:
                    server.stop()
            self.results[name]["ready_warm"] = samples
            stderr(f"  {name} restarts ready in {', '.join(f'{s:.2f}' for s in samples)} s")

    # -- workers -------------------------------------------------------------------------

    def run_worker(
        self,
        name: str,
        workload: str,
        params: dict[str, Any],
        *,
        probe: bool = False,
        server: str | None = None,
    ) -> dict[str, Any]:
        """Run one workload in a fresh client process of ``name``; its JSON result.

        The client talks to ``name``'s own server unless ``server`` names the other one (the
        drop-in rows: MLflow's client against modelreg). With ``probe``, the server's process
        tree is watched meanwhile and ``server_rss`` is its peak; only transfers ask, since
        walking /proc costs CPU the timed work needs.
        """
        target = self.servers[server or name]
        with self.lock:
            self.calls += 1
            out = self.tmp / f"{name}-{workload}-{self.calls}.json"
        log = self.tmp / f"{name}-worker.log"
        worker = BENCH / f"_{name}_worker.py"
        cmd = [str(self.pythons[name]), str(worker), workload, "--url", target.url]
        cmd += ["--params", json.dumps(params), "--out", str(out)]
        with log.open("ab") as sink:
            sink.write(f"\n== {workload} {json.dumps(params)}\n".encode())
            sink.flush()
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                env={**os.environ, **self.envs[name]},
                cwd=self.tmp,
            )
        self.live.add(proc)
        watch = RssProbe(target.pid, interval=0.1)
        try:
            with watch if probe else contextlib.nullcontext():
                code = proc.wait(timeout=WORKER_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            self.live.discard(proc)
            if proc.poll() is None:
                proc.kill()
        if code != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-15:]
            how = f"exited {code}" if code is not None else f"ran over {WORKER_TIMEOUT:g} s"
            raise WorkerFailed(f"{name} {workload} {how}:\n  " + "\n  ".join(tail))
        result: dict[str, Any] = json.loads(out.read_text())
        if probe:
            result["server_rss"] = watch.result()
        return result

    def record(
        self,
        name: str,
        key: str,
        workload: str,
        params: dict[str, Any],
        *,
        probe: bool = False,
        server: str | None = None,
        into: str | None = None,
    ) -> None:
        """Run a workload and keep its result, or its failure, under ``key`` (of ``into``)."""
        stderr(f"{into or name}: {key}…")
        results = self.results.setdefault(into or name, {})
        try:
            results[key] = self.run_worker(name, workload, params, probe=probe, server=server)
        except WorkerFailed as exc:
            stderr(f"  FAILED: {exc}")
            results[key] = {"error": str(exc)}

    def kill_workers(self) -> None:
        for proc in list(self.live):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    # -- workloads -----------------------------------------------------------------------

    def run(self) -> None:
        """Every workload, one system after the other, so that they never compete."""
        s = self.sizes
        small = self.tmp / "model.bin"
        small.write_bytes(os.urandom(4096))
        for name in self.systems:
            params = {
                "model": "m",
                "artifact": str(small),
                "sequential": s.registrations,
                "concurrent": s.registrations,
                "threads": s.concurrent_clients,
            }
            self.record(name, "register", "register", params)
        for name in self.systems:
            params = {
                "model": "m",
                "alias": "champion",
                "version": 1,
                "count": s.resolves,
                "seconds": s.seconds,
                "readers": s.readers,
            }
            self.record(name, "resolve", "resolve", params)
        if "mlflow" in self.systems and not self.args.skip_dropin:
            self.dropin(small)
        self.seed(small)
        for name in self.systems:
            params = {
                "model": "s",
                "experiment": "search",
                "threshold": 0.5,
                "page": s.page,
                "count": s.searches,
            }
            self.record(name, "search", "search", params)
        self.transfer()
        for name in self.systems:
            self.import_times(name)
        stderr("restarting servers on their full databases…")
        self.restart_times()

    def dropin(self, small: Path) -> None:
        """MLflow's client and workloads, unchanged, against modelreg's server (not timed
        against modelreg's own client: this is what a team that only swaps the URL sees)."""
        s = self.sizes
        register = {
            "model": "dropin",
            "artifact": str(small),
            "sequential": s.registrations,
            "concurrent": s.registrations,
            "threads": s.concurrent_clients,
        }
        self.record("mlflow", "register", "register", register, server="modelreg", into=DROPIN)
        resolve = {
            "model": "dropin",
            "alias": "champion",
            "version": 1,
            "count": s.resolves,
            "seconds": s.seconds,
            "readers": s.readers,
        }
        self.record("mlflow", "resolve", "resolve", resolve, server="modelreg", into=DROPIN)

    def seed(self, small: Path) -> None:
        """Load the search model into both systems at once: seeding is not timed."""
        stderr(f"seeding {self.sizes.search_versions} versions for search (not timed)…")
        params: dict[str, dict[str, Any]] = {
            "modelreg": {
                "home": str(self.tmp / "modelreg"),
                "db": f"sqlite:///{self.tmp / 'modelreg' / 'registry.db'}",
                "artifacts": str(self.tmp / "modelreg" / "blobs"),
                "artifact": str(small),
            },
            "mlflow": {
                "db": f"sqlite:///{self.tmp / 'mlflow' / 'mlflow.db'}",
                "experiment": "search",
            },
        }
        with ThreadPoolExecutor(len(self.systems)) as pool:
            for name in self.systems:
                params[name].update(model="s", count=self.sizes.search_versions)
            futures = [
                pool.submit(self.record, name, "seed", "seed", params[name])
                for name in self.systems
            ]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                self.kill_workers()  # or leaving the pool would wait for them to finish
                raise

    def transfer(self) -> None:
        """The big file: `cp` as the floors, then upload, download and re-register per system.

        Two floors: `cp` alone leaves the copy in the page cache, while a blob store must
        fsync before it commits, so `cp` followed by an fsync of the copy (and its folder)
        is the floor for a durable upload.
        """
        size = self.sizes.file_mb << 20
        big = self.tmp / "big.bin"
        stderr(f"writing a {self.sizes.file_mb} MiB random file…")
        digest = write_random_file(big, size)
        copies = self.copies(big, durable=False)
        self.results["cp"] = {"seconds": copies, "sha256": digest, "bytes": size}
        self.results["cp_fsync"] = {"seconds": self.copies(big, durable=True), "bytes": size}
        # modelreg's client keeps a digest cache; the run's own, not the user's.
        cache = str(self.tmp / "digest-cache.sqlite")
        for name in self.systems:
            big_file = {"model": "big", "path": str(big), "digest_cache": cache}
            self.record(name, "upload", "upload", big_file, probe=True)
            first = self.results[name]["upload"]
            if "error" not in first:
                params = {"ref": first["ref"], "out": str(self.tmp / "download"), "sha256": digest}
                self.record(name, "download", "download", params, probe=True)
            self.record(name, "reregister", "upload", big_file, probe=True)
        big.unlink()

    def copies(self, big: Path, *, durable: bool) -> list[float]:
        """Seconds of three `cp`s of ``big``; ``durable``: each then fsynced, with its folder."""
        seconds = []
        for i in range(3):
            target = self.tmp / f"cp-{i}.bin"
            started = time.perf_counter()
            subprocess.run(["cp", str(big), str(target)], check=True)
            if durable:
                for path in (target, target.parent):
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            seconds.append(time.perf_counter() - started)
            target.unlink()
        return seconds

    def import_times(self, name: str) -> None:
        """Median of fresh-interpreter imports: the bare package, then its client class."""
        python = str(self.pythons[name])
        statements = {
            "modelreg": ("import modelreg", "import modelreg; modelreg.Registry"),
            "mlflow": ("import mlflow", "from mlflow import MlflowClient"),
        }[name]
        for key, statement in zip(("import", "import_client"), statements, strict=True):
            stderr(f"{name}: {statement} ×{self.sizes.import_samples}…")
            code = (
                f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
            )
            samples = []
            for i in range(self.sizes.import_samples + 1):
                done = subprocess.run(
                    [python, "-c", code],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=self.tmp,
                    env={**os.environ, **self.envs[name]},
                )
                if i:  # the first run only warms the disk cache
                    samples.append(float(done.stdout.strip().splitlines()[-1]))
            self.results[name][key] = samples


# -- the table ---------------------------------------------------------------------------


@dataclasses.dataclass
class Cell:
    """One system's number for one workload."""

    value: float | None
    p50_ms: float | None = None
    p99_ms: float | None = None
    samples: int | None = None
    errors: int = 0
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _ops(stats: dict[str, Any]) -> Cell:
    return Cell(stats["ops_per_s"], stats["p50_ms"], stats["p99_ms"], stats["ops"], stats["errors"])


def _times(samples: list[float]) -> Cell:
    ordered = sorted(samples)
    return Cell(
        round(statistics.median(ordered), 3),
        round(statistics.median(ordered) * 1000, 1),
        round(ordered[-1] * 1000, 1),  # with a handful of samples, p99 is the slowest
        len(ordered),
    )


def _rate(mib: float, seconds: float) -> Cell:
    return Cell(round(mib / seconds, 1), round(seconds * 1000, 1), None, 1)


def _mb(value: float) -> Cell:
    return Cell(value)


RowSpec = tuple[str, str, str, str, Callable[[dict[str, Any]], Cell]]


def row_specs(sizes: Sizes) -> list[RowSpec]:
    """(key, label, unit, result key, how to read a cell) for every table row."""
    mib = sizes.file_mb
    n, c = sizes.registrations, sizes.concurrent_clients
    # Laid out by hand as a table; the formatter would give each tuple six lines.
    return [
        ("register_sequential", f"register 4 KiB, sequential ×{n}", "ops/s ↑", "register",
         lambda r: _ops(r["sequential"])),
        ("register_concurrent", f"register 4 KiB, {c} clients ×{n}", "ops/s ↑", "register",
         lambda r: _ops(r["concurrent"])),
        ("resolve_sequential", f"resolve name@alias, sequential ×{sizes.resolves}", "ops/s ↑",
         "resolve", lambda r: _ops(r["sequential"])),
        ("resolve_readers", f"resolve name@alias, {sizes.readers} readers {sizes.seconds:g} s",
         "ops/s ↑", "resolve", lambda r: _ops(r["readers"])),
        ("search_metric", f"search acc > 0.5 of {sizes.search_versions} (page {sizes.page})",
         "ops/s ↑", "search", lambda r: _ops(r["metric"])),
        ("search_fresh", f"search acc > 0.5, a new query each time (page {sizes.page})",
         "ops/s ↑", "search", lambda r: _ops(r["metric_fresh"])),
        ("search_name", f"search name only of {sizes.search_versions} (page {sizes.page})",
         "ops/s ↑", "search", lambda r: _ops(r["name_only"])),
        ("upload", f"upload {mib} MiB", "MiB/s ↑", "upload",
         lambda r: _rate(mib, r["seconds"])),
        ("download", f"download {mib} MiB, verified", "MiB/s ↑", "download",
         lambda r: _rate(mib, r["seconds"])),
        ("reregister", f"re-register identical {mib} MiB", "s ↓", "reregister",
         lambda r: Cell(r["seconds"], round(r["seconds"] * 1000, 1), None, 1)),
        ("upload_client_rss", "peak RSS, client, upload", "MiB ↓", "upload",
         lambda r: _mb(r["client_rss"]["peak_mb"])),
        ("upload_server_rss", "peak RSS, server (all processes), upload", "MiB ↓", "upload",
         lambda r: _mb(r["server_rss"]["total_mb"])),
        ("download_client_rss", "peak RSS, client, download", "MiB ↓", "download",
         lambda r: _mb(r["client_rss"]["peak_mb"])),
        ("download_server_rss", "peak RSS, server (all processes), download", "MiB ↓", "download",
         lambda r: _mb(r["server_rss"]["total_mb"])),
        ("import", "import the package", "s ↓", "import", _times),
        ("import_client", "import the client class", "s ↓", "import_client", _times),
        ("server_ready_cold", "server ready, empty database", "s ↓", "ready_cold", _times),
        ("server_ready_warm", f"server ready, restart ×{sizes.ready_samples}", "s ↓",
         "ready_warm", _times),
    ]  # fmt: skip


def build_rows(results: dict[str, Any], sizes: Sizes, systems: list[str]) -> list[dict[str, Any]]:
    """The table as JSON rows: a cell per system (``None`` when skipped) and the ratio."""
    rows = []
    for key, label, unit, source, read in row_specs(sizes):
        cells: dict[str, Cell | None] = {}
        for name in SYSTEMS:
            if name not in systems:
                cells[name] = None
                continue
            found = results[name].get(source)
            if found is None or (isinstance(found, dict) and "error" in found):
                error = found["error"] if isinstance(found, dict) else "not run"
                cells[name] = Cell(None, error=error)
            else:
                cells[name] = read(found)
        ours, theirs = cells["modelreg"], cells["mlflow"]
        ratio = None
        if ours and theirs and ours.value is not None and theirs.value:
            ratio = round(ours.value / theirs.value, 2)
        rows.append(
            {
                "workload": key,
                "label": label,
                "unit": unit,
                "modelreg": ours.as_json() if ours else None,
                "mlflow": theirs.as_json() if theirs else None,
                "ratio": ratio,
            }
        )
    return rows


def _fmt(value: float | None, *, failed: bool = False) -> str:
    if failed:
        return "FAILED"
    if value is None:
        return "-"
    return (
        f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if value < 10 else f"{value:.1f}"
    )


def render(rows: list[dict[str, Any]]) -> str:
    """The rows as a fixed-width text table."""
    head = [
        "workload",
        "unit",
        "modelreg",
        "p50 ms",
        "p99 ms",
        "MLflow",
        "p50 ms",
        "p99 ms",
        "ratio",
    ]
    lines = []
    for row in rows:
        line = [row["label"], row["unit"]]
        for name in SYSTEMS:
            cell = row[name]
            if cell is None:
                line += ["-", "-", "-"]
                continue
            failed = cell["value"] is None and cell["error"] is not None
            value = _fmt(cell["value"], failed=failed)
            if cell["errors"]:
                value += f" ({cell['errors']} err)"
            line += [value, _fmt(cell["p50_ms"]), _fmt(cell["p99_ms"])]
        line.append(f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-")
        lines.append(line)
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]

    def join(cols: list[str]) -> str:
        first = cols[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cols[1:], widths[1:], strict=True))])

    rule = "-" * len(join(head))
    return "\n".join([join(head), rule, *(join(line) for line in lines)])


def notes(results: dict[str, Any], systems: list[str]) -> list[str]:
    """What the table does not show: contiguity, how each system was driven, the floors."""
    out = []
    cp, cp_fsync = results.get("cp"), results.get("cp_fsync")
    for name in systems:
        r = results[name]
        reg = r.get("register", {})
        if "contiguous" in reg:
            yes = "yes" if reg["contiguous"] else "NO"
            out.append(f"{name}: versions contiguous 1..{reg['versions']}: {yes}")
        for key in ("register", "resolve", "search"):
            if "calls" in r.get(key, {}):
                out.append(f"{name} {key}: {r[key]['calls']}")
        if "hits" in r.get("search", {}):
            out.append(f"{name} search: first page held {r['search']['hits']} versions")
        if "seconds" in r.get("seed", {}):
            seed = r["seed"]
            loaded = f"{seed['versions']} versions in {seed['seconds']} s"
            out.append(f"{name} search data loaded in-process (untimed): {loaded}")
        up, again = r.get("upload", {}), r.get("reregister", {})
        for phase in ("upload", "download"):
            done = r.get(phase, {})
            shares = [
                f"{statistics.median(floor['seconds']) / done['seconds']:.0%} of {label}"
                for floor, label in ((cp, "cp's speed"), (cp_fsync, "cp + fsync's"))
                if floor and "seconds" in done
            ]
            if shares:
                out.append(f"{name} {phase}: {', '.join(shares)}")
        if "seconds" in up and "seconds" in again:
            share = again["seconds"] / up["seconds"]
            out.append(f"{name} re-register of the identical file: {share:.1%} of the first upload")
        if "digest_cached" in again:
            how = "from the client's digest cache" if again["digest_cached"] else "hashed again"
            out.append(
                f"{name} re-register: digest {how}; the file had last changed "
                f"{up.get('file_age_s', '?')} s before the first upload began (the cache "
                "records only files whose mtime and ctime are over 2 s old)"
            )
        for phase in ("upload", "download"):
            if "server_rss" in r.get(phase, {}):
                rss = r[phase]["server_rss"]
                out.append(
                    f"{name} server during {phase}: {rss['processes']} process(es), largest "
                    f"{rss['peak_mb']:.0f} MiB, largest growth {rss['growth_mb']:+.0f} MiB"
                )
        if "verified" in r.get("download", {}):
            out.append(f"{name} download verified (SHA-256 matches): {r['download']['verified']}")
    if cp:
        rate = cp["bytes"] / 2**20 / statistics.median(cp["seconds"])
        out.append(
            f"cp of the same file (the floor; page cache warm, not durable): {rate:,.0f} MiB/s"
        )
    if cp_fsync:
        rate = cp_fsync["bytes"] / 2**20 / statistics.median(cp_fsync["seconds"])
        out.append(
            f"cp, then fsync of the copy and its folder (the durable floor): {rate:,.0f} MiB/s"
        )
    return out


# -- the run -----------------------------------------------------------------------------


def machine(systems: list[str], mlflow_python: Path | None) -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        total = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        memory = round(int(total) / 2**20, 1)
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "modelreg": modelreg.__version__,
        "mlflow": installed_mlflow(mlflow_python) if mlflow_python else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "systems": systems,
    }


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the servers are stopped either way."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_argument_group("mode")
    mode.add_argument("--quick", action="store_true", help="tiny sizes: checks that it works")
    mode.add_argument("--skip-mlflow", action="store_true", help="modelreg only (no install)")
    parser.add_argument(
        "--skip-dropin",
        action="store_true",
        help="skip the drop-in rows (MLflow's client against modelreg's server)",
    )
    mode.add_argument("--json", dest="json_out", metavar="FILE", help="also write JSON here")
    sizes = parser.add_argument_group("sizes (defaults: full run / --quick)")
    f, q = FULL, QUICK
    sizes.add_argument(
        "--registrations",
        type=int,
        metavar="N",
        help=f"sequential, then as many concurrent ({f.registrations}/{q.registrations})",
    )
    sizes.add_argument(
        "--resolves", type=int, metavar="N", help=f"sequential resolves ({f.resolves}/{q.resolves})"
    )
    sizes.add_argument(
        "--seconds",
        type=float,
        metavar="T",
        help=f"duration of the concurrent readers ({f.seconds:g}/{q.seconds:g})",
    )
    sizes.add_argument(
        "--search-versions",
        type=int,
        metavar="N",
        help=f"versions to search over ({f.search_versions}/{q.search_versions})",
    )
    sizes.add_argument(
        "--searches",
        type=int,
        metavar="N",
        help=f"searches timed per query ({f.searches}/{q.searches})",
    )
    sizes.add_argument(
        "--file-mb",
        type=int,
        metavar="MIB",
        help=f"size of the transferred file ({f.file_mb}/{q.file_mb})",
    )
    sizes.add_argument(
        "--import-samples",
        type=int,
        metavar="N",
        help=f"fresh interpreters per import ({f.import_samples}/{q.import_samples})",
    )
    sizes.add_argument(
        "--ready-samples",
        type=int,
        metavar="N",
        help=f"server restarts timed ({f.ready_samples}/{q.ready_samples})",
    )
    setup = parser.add_argument_group("setup")
    setup.add_argument(
        "--modelreg-workers",
        type=int,
        metavar="N",
        help="modelreg server --workers (default: its own default)",
    )
    setup.add_argument(
        "--mlflow-workers",
        type=int,
        metavar="N",
        help="mlflow server --workers (default: its own default)",
    )
    setup.add_argument(
        "--mlflow-version",
        default=MLFLOW_VERSION,
        help="mlflow release for the venv (default: %(default)s)",
    )
    setup.add_argument(
        "--mlflow-venv",
        type=Path,
        default=DEFAULT_VENV,
        metavar="DIR",
        help="where MLflow's venv is made and reused (default: bench/.mlflow-venv)",
    )
    setup.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="parent of the run's temporary folder (default: the system's)",
    )
    setup.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary folder (server and worker logs) afterwards",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    base = QUICK if args.quick else FULL
    overrides = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(Sizes)
        if getattr(args, field.name, None) is not None
    }
    sizes = dataclasses.replace(base, **overrides)
    started = time.perf_counter()
    mlflow_python, venv = None, None
    if not args.skip_mlflow:
        try:
            mlflow_python, venv = ensure_mlflow_venv(args.mlflow_venv, args.mlflow_version)
        except subprocess.CalledProcessError as exc:
            stderr(f"could not install mlflow=={args.mlflow_version} ({exc}); try --skip-mlflow")
            return 2
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="modelreg-vs-mlflow-", dir=args.workdir))
    harness = Harness(tmp, sizes, args)
    if mlflow_python is not None:
        harness.pythons["mlflow"] = mlflow_python
    info = machine(harness.systems, mlflow_python)
    try:
        with terminate_as_interrupt():
            try:
                harness.start_servers()
                harness.run()
            finally:
                harness.kill_workers()
                harness.stop_servers()
    except KeyboardInterrupt:
        stderr("interrupted; servers stopped")
        return 130
    finally:
        if args.keep:
            stderr(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - started
    rows = build_rows(harness.results, sizes, harness.systems)
    dropin_rows: list[dict[str, Any]] = []
    if DROPIN in harness.results:
        # The same MLflow code against each server: "modelreg" is modelreg's server here.
        swapped = {"modelreg": harness.results[DROPIN], "mlflow": harness.results["mlflow"]}
        dropin_rows = [
            row
            for row in build_rows(swapped, sizes, harness.systems)
            if row["workload"] in DROPIN_ROWS
        ]
    info["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    lines = notes(harness.results, harness.systems)
    print(render(rows))
    print()
    print(
        f"{info['cores']} cores ({info['cpu']}), Python {info['python']}, SQLite {info['sqlite']}, "
        f"modelreg {info['modelreg']}, MLflow {info['mlflow'] or 'skipped'}; "
        f"load average {info['load_average'][0]} → {info['load_average_after'][0]}; "
        f"run took {elapsed:.0f} s"
    )
    print("ratio = modelreg ÷ MLflow: above 1 is better on ↑ rows, below 1 on ↓ rows")
    if dropin_rows:
        print()
        print("Drop-in: MLflow's own client and workload code, pointed at each server")
        print("(the modelreg column is MlflowClient → modelreg server):")
        print(render(dropin_rows))
    for line in lines:
        print(f"- {line}")
    failures = [
        row["workload"]
        for row in rows
        if row["modelreg"] is None or row["modelreg"]["value"] is None or row["modelreg"]["errors"]
    ]
    reg = harness.results["modelreg"].get("register", {})
    if not reg.get("contiguous"):
        failures.append("modelreg versions not contiguous")
    if not harness.results["modelreg"].get("download", {}).get("verified"):
        failures.append("modelreg download not verified")
    if args.json_out:
        document = {
            "machine": info,
            "sizes": dataclasses.asdict(sizes),
            "mlflow_venv": venv,
            "servers": {
                "modelreg_workers": args.modelreg_workers or "default",
                "mlflow_workers": args.mlflow_workers or "default",
            },
            "elapsed_s": round(elapsed, 1),
            "rows": rows,
            "dropin_rows": dropin_rows,
            "checks": {
                name: {
                    "contiguous": harness.results[name].get("register", {}).get("contiguous"),
                    "download_verified": harness.results[name].get("download", {}).get("verified"),
                }
                for name in harness.systems
            },
            "notes": lines,
            "results": harness.results,
        }
        Path(args.json_out).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    if failures:
        stderr(f"modelreg side failed: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

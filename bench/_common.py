"""Helpers shared by the benchmark scripts: timing loops, memory probes, servers, workers.

Standard library only: this module is imported both by modelreg's venv (``compare.py``,
``load.py``, ``_modelreg_worker.py``) and by the separate MLflow venv (``_mlflow_worker.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

Stats = dict[str, Any]
Workload = Callable[[str, dict[str, Any]], dict[str, Any]]

CHUNK = 8 << 20
_START_ATTEMPTS = 3  # a free port can be taken between picking it and binding it


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- statistics --------------------------------------------------------------------------


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0-100) of an already sorted, non-empty sequence."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(
    latencies: list[float], wall: float, *, errors: int = 0, first_error: str | None = None
) -> Stats:
    """Throughput over ``wall`` seconds and latency percentiles of the successful operations."""
    ordered = sorted(latencies)
    stats: Stats = {
        "ops": len(ordered),
        "errors": errors,
        "seconds": round(wall, 3),
        "ops_per_s": round(len(ordered) / wall, 2) if wall > 0 else None,
        "p50_ms": round(statistics.median(ordered) * 1000, 2) if ordered else None,
        "p99_ms": round(percentile(ordered, 99) * 1000, 2) if ordered else None,
    }
    if first_error is not None:
        stats["first_error"] = first_error
    return stats


class _Recorder:
    """Latencies and failures collected from several threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error: str | None = None

    def run(self, op: Callable[[int], object], i: int) -> None:
        start = time.perf_counter()
        try:
            op(i)
        except Exception as exc:  # a failed call is counted, not fatal: we compare failure too
            with self.lock:
                self.errors += 1
                self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"[:500]
            return
        elapsed = time.perf_counter() - start
        with self.lock:
            self.latencies.append(elapsed)


def measure(op: Callable[[int], object], count: int, threads: int = 1) -> Stats:
    """Call ``op(i)`` for ``i`` in ``range(count)`` on ``threads`` threads; ops/s and latency."""
    recorder = _Recorder()
    started = time.perf_counter()
    if threads == 1:
        for i in range(count):
            recorder.run(op, i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda i: recorder.run(op, i), range(count)))
    wall = time.perf_counter() - started
    return summarize(
        recorder.latencies, wall, errors=recorder.errors, first_error=recorder.first_error
    )


def timed_readers(
    make_op: Callable[[], Callable[[int], object]], seconds: float, threads: int
) -> Stats:
    """``threads`` loops, each with its own ``make_op()`` (its own client), for ``seconds``."""
    recorder = _Recorder()
    ops = [make_op() for _ in range(threads)]  # clients are built before the clock starts
    deadline = time.perf_counter() + seconds

    def reader(op: Callable[[int], object]) -> None:
        i = 0
        while time.perf_counter() < deadline:
            recorder.run(op, i)
            i += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=reader, args=(op,)) for op in ops]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - started
    return summarize(
        recorder.latencies, wall, errors=recorder.errors, first_error=recorder.first_error
    )


def timed_once(op: Callable[[], object]) -> float:
    """Seconds one call of ``op`` takes."""
    start = time.perf_counter()
    op()
    return time.perf_counter() - start


# -- files -------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in large chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_random_file(path: Path, size: int) -> str:
    """Write ``size`` random (incompressible) bytes to ``path``; returns their hex SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK, left))
            digest.update(chunk)
            fh.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


# -- memory ------------------------------------------------------------------------------


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants (Linux ``/proc``; just ``[pid]`` elsewhere)."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as fh:
                    # The command name is in parentheses and may hold spaces: split after it.
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


class RssProbe:
    """Resident memory of a process tree while a block runs.

    Each process's kernel high-water mark (``VmHWM``) is reset on entry where Linux allows it
    (``/proc/PID/clear_refs``), so its peak belongs to the block and not to earlier work; a
    thread also samples ``VmRSS`` (every ``interval`` s) to add up the tree and to catch
    processes that start meanwhile. ``result()`` reports MiB: ``total_mb``, the largest sum
    over the tree (what the machine pays; shared pages count once per process), and for
    single processes ``peak_mb`` (the largest) and ``growth_mb`` (the most any one grew).
    """

    def __init__(self, pid: int, *, tree: bool = True, interval: float = 0.02) -> None:
        self.pid = pid
        self.tree = tree
        self.interval = interval
        self.total_kb = 0
        self.seen: dict[int, list[int]] = {}  # pid -> [RSS when first seen, peak RSS]
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _pids(self) -> list[int]:
        return process_tree(self.pid) if self.tree else [self.pid]

    def _note(self, pid: int, kb: int) -> None:
        first = self.seen.setdefault(pid, [kb, kb])
        first[1] = max(first[1], kb)

    def _sample(self) -> None:
        while True:
            sizes = {p: _status_kb(p, "VmRSS") for p in self._pids()}
            for p, kb in sizes.items():
                self._note(p, kb)
            self.total_kb = max(self.total_kb, sum(sizes.values()))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> RssProbe:
        for p in self._pids():
            try:
                Path(f"/proc/{p}/clear_refs").write_text("5")
                self.hwm_reset = True
            except OSError:
                pass
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.hwm_reset:
            for p in self._pids():
                if p in self.seen:
                    self._note(p, _status_kb(p, "VmHWM"))

    def result(self) -> dict[str, Any]:
        """The figures in MiB, as JSON."""
        peaks = [peak for _, peak in self.seen.values()] or [0]
        growths = [peak - first for first, peak in self.seen.values()] or [0]
        return {
            "total_mb": round(max(self.total_kb, *peaks) / 1024, 1),
            "peak_mb": round(max(peaks) / 1024, 1),
            "growth_mb": round(max(growths) / 1024, 1),
            "processes": len(self.seen),
            "hwm_reset": self.hwm_reset,
        }


# -- servers -----------------------------------------------------------------------------


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether ``GET url`` answers 200 right now."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


class ServerProcess:
    """A server command on a free loopback port, in its own session, until ``stop()``.

    ``command(port)`` builds the argument list. Its own session lets ``stop()`` signal the
    whole process group, which reaches worker processes the server forked (uvicorn workers,
    MLflow's job runner) even if the parent dies first.
    """

    def __init__(
        self,
        name: str,
        command: Callable[[int], list[str]],
        *,
        ready_path: str,
        log: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.command = command
        self.ready_path = ready_path
        self.log = log
        self.env = {**os.environ, **(env or {})}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 180) -> ServerProcess:
        """Start, then poll ``ready_path`` until it answers 200; ``ready_s`` is the wait."""
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.port = free_port()
            with self.log.open("ab") as out:
                started = time.perf_counter()
                self.proc = subprocess.Popen(
                    self.command(self.port),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    start_new_session=True,
                )
            deadline = started + timeout
            while time.perf_counter() < deadline and self.proc.poll() is None:
                if http_ok(self.url + self.ready_path):
                    self.ready_s = time.perf_counter() - started
                    return self
                time.sleep(0.02)
            self.stop()
            if attempt == _START_ATTEMPTS or "address already in use" not in self.output():
                break
        raise RuntimeError(f"{self.name} server did not become ready:\n{self.output()[-3000:]}")

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the process group, wait, then SIGKILL whatever is left of it."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        # Whatever is left in the server's own process group (orphaned workers) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- workers -----------------------------------------------------------------------------


@contextlib.contextmanager
def own_rss() -> Iterator[RssProbe]:
    """Peak RSS of this process during the block (the client's side of a transfer)."""
    with RssProbe(os.getpid(), tree=False) as probe:
        yield probe


def worker_main(workloads: Mapping[str, Workload]) -> None:
    """Entry point of a worker script: run one workload, write its JSON result to ``--out``.

    The harness runs ``python WORKER WORKLOAD --url URL --params JSON --out FILE`` in the
    system's own venv; a file rather than stdout keeps the result apart from whatever the
    client library prints.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=sorted(workloads))
    parser.add_argument("--url", required=True)
    parser.add_argument("--params", default="{}")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    result = workloads[args.workload](args.url, json.loads(args.params))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


def stderr(message: str) -> None:
    """Progress goes to stderr so stdout keeps only the table."""
    # One write per line: the seeding threads report at the same time.
    sys.stderr.write(message + "\n")
    sys.stderr.flush()

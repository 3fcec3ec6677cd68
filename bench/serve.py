"""``modelreg serve`` under load: promotions without failed requests, and beside MLflow.

PYTHONPATH=src .venv/bin/python bench/serve.py [--seconds 10] [--promotions 10] [--skip-mlflow]

1. Follow: a registry server (SQLite) holds 11 versions of a small scikit-learn model;
   ``modelreg serve models:/bench/production`` (1 worker) answers 4 clients sending 1-row
   ``dataframe_split`` requests continuously while the bench promotes a new version 10 times.
   Reported: requests sent and failed (anything but a 200), and the swap latency: from the
   promotion's return to the first ``/version`` poll (every 5 ms) naming the new version.
2. Throughput: the same 4 clients for ``--seconds`` against ``modelreg serve`` and against
   ``mlflow models serve --env-manager local`` of the same model (trained identically in
   MLflow's venv, bench/.mlflow-venv), one after the other: requests/s, p50 and p99 latency,
   and the server's peak RSS (the process tree, MiB).

The clients are threads of this process (``http.client``, one kept-alive connection each), on
the same 2 cores as the server: the figures are for comparing the two servers, not absolute.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import modelreg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RssProbe, ServerProcess, percentile
from mlflow_venv import DEFAULT_VENV, MLFLOW_ENV

MODELREG = str(Path(sys.executable).parent / "modelreg")
FEATURES = ["f0", "f1", "f2", "f3"]
BODY = json.dumps({"dataframe_split": {"columns": FEATURES, "data": [[0.1, -1.2, 0.5, 2.0]]}})
TRAIN = """
import sys
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
seed = int(sys.argv[1])
rng = np.random.default_rng(seed)
X = pd.DataFrame(rng.normal(size=(500, 4)), columns=["f0", "f1", "f2", "f3"])
y = (X["f0"] + X["f1"] * seed % 3 > 0).astype(int)
model = LogisticRegression(C=1.0 + seed).fit(X, y)
"""


def train(seed: int) -> Any:
    """The same small model ``TRAIN`` makes in MLflow's venv."""
    scope: dict[str, Any] = {}
    argv, sys.argv = sys.argv, ["train", str(seed)]
    try:
        exec(TRAIN, scope)
    finally:
        sys.argv = argv
    return scope["model"], scope["X"]


class Clients:
    """``n`` threads posting ``BODY`` until stopped; latencies and failures."""

    def __init__(self, port: int, n: int = 4) -> None:
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.failed = 0
        self.first_failure = ""
        self.versions: set[str] = set()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"content-type": "application/json"}
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                conn.request("POST", "/invocations", BODY, headers)
                response = conn.getresponse()
                response.read()
                ok, status = response.status == 200, str(response.status)
                version = response.getheader("modelreg-version") or ""
            except (OSError, http.client.HTTPException) as exc:
                ok, status, version = False, repr(exc), ""
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            elapsed = time.perf_counter() - started
            with self.lock:
                if ok:
                    self.latencies.append(elapsed)
                    self.versions.add(version)
                else:
                    self.failed += 1
                    self.first_failure = self.first_failure or status
        conn.close()

    def __enter__(self) -> Clients:
        self.started = time.perf_counter()
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()
        self.wall = time.perf_counter() - self.started

    def stats(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "requests": len(ordered) + self.failed,
            "failed": self.failed,
            "first_failure": self.first_failure,
            "req_per_s": round(len(ordered) / self.wall, 1),
            "p50_ms": round(percentile(ordered, 50) * 1000, 2) if ordered else None,
            "p99_ms": round(percentile(ordered, 99) * 1000, 2) if ordered else None,
        }


def version_of(port: int) -> int | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/version")
        value: int | None = json.loads(conn.getresponse().read())["version"]
        return value
    finally:
        conn.close()


def register_versions(reg: modelreg.Registry, count: int) -> None:
    """``count`` versions of ``bench``, registered as scikit-learn objects (the sklearn flavor)."""
    for seed in range(1, count + 1):
        model, frame = train(seed)
        reg.register("bench", model=model, input_example=frame.head(2))


def serve_command(registry: str, *extra: str) -> Any:
    def command(port: int) -> list[str]:
        args = [MODELREG, "--registry", registry, "serve", "models:/bench/production"]
        args += ["--port", str(port), "--no-report", "--log-level", "warning", "--trust"]
        return args + list(extra)

    return command


def follow(port: int, reg: modelreg.Registry, promotions: int) -> dict[str, Any]:
    """Promote ``promotions`` times under 4 clients; swap latencies and failed requests."""
    swaps: list[float] = []
    with Clients(port) as clients:
        time.sleep(1.0)
        for version in range(2, promotions + 2):
            reg.promote("bench", version, "production", reason="bench")
            promoted = time.perf_counter()
            while version_of(port) != version:
                time.sleep(0.005)
            swaps.append(time.perf_counter() - promoted)
            time.sleep(0.5)
    ordered = sorted(swaps)
    stats = clients.stats()
    stats.update(
        promotions=promotions,
        versions_answering=len(clients.versions),
        swap_p50_ms=round(percentile(ordered, 50) * 1000, 1),
        swap_p99_ms=round(percentile(ordered, 99) * 1000, 1),
        swap_max_ms=round(ordered[-1] * 1000, 1),
    )
    return stats


def throughput(server: ServerProcess, seconds: float) -> dict[str, Any]:
    with RssProbe(server.pid) as probe, Clients(server.port) as clients:
        time.sleep(seconds)
    stats = clients.stats()
    stats["rss_mb"] = probe.result()["total_mb"]
    return stats


def mlflow_model(tmp: Path, seed: int) -> Path:
    """The same model saved by MLflow (``mlflow.sklearn.save_model``) in its venv."""
    path = tmp / "mlflow-model"
    script = TRAIN + f"import mlflow.sklearn\nmlflow.sklearn.save_model(model, {str(path)!r})\n"
    python = DEFAULT_VENV / "bin" / "python"
    env = {**os.environ, **MLFLOW_ENV}
    subprocess.run([str(python), "-c", script, str(seed)], check=True, env=env, timeout=600)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per throughput run")
    parser.add_argument("--promotions", type=int, default=10)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="modelreg-bench-serve-") as folder:
        tmp = Path(folder)
        home = tmp / "registry"
        registry = ServerProcess(
            "modelreg",
            lambda port: [MODELREG, "--registry", str(home), "server", "--port", str(port)],
            ready_path="/readyz",
            log=tmp / "registry.log",
        )
        with registry, modelreg.Registry(registry.url) as reg:
            register_versions(reg, args.promotions + 1)
            reg.promote("bench", 1, "production", reason="bench")
            env = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
            serve = ServerProcess(
                "modelreg serve",
                serve_command(registry.url),
                ready_path="/ping",
                log=tmp / "serve.log",
                env=env,
            )
            with serve:
                results["follow"] = follow(serve.port, reg, args.promotions)
                results["modelreg"] = throughput(serve, args.seconds)
        if not args.skip_mlflow:
            model = mlflow_model(tmp, args.promotions + 1)
            mlflow = DEFAULT_VENV / "bin" / "mlflow"
            command = [str(mlflow), "models", "serve", "-m", str(model), "--env-manager", "local"]
            with ServerProcess(
                "mlflow",
                lambda port: [*command, "-h", "127.0.0.1", "-p", str(port)],
                ready_path="/ping",
                log=tmp / "mlflow.log",
                # It runs `uvicorn` from PATH: its venv's.
                env={**MLFLOW_ENV, "PATH": f"{mlflow.parent}{os.pathsep}{os.environ['PATH']}"},
            ) as server:
                results["mlflow"] = throughput(server, args.seconds)
    report(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results["follow"]["failed"] == 0 else 1


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    f = results["follow"]
    print(f"\nFollowing production: {f['promotions']} promotions under 4 clients")
    print(f"  requests {f['requests']}, failed {f['failed']} {f['first_failure']}")
    print(f"  versions that answered {f['versions_answering']}")
    print(
        f"  swap latency (promotion returned -> /version names it): p50 {f['swap_p50_ms']} ms, "
        f"p99 {f['swap_p99_ms']} ms, max {f['swap_max_ms']} ms"
    )
    print(f"\n/invocations, 1-row dataframe_split, 4 clients, {args.seconds:g} s each")
    print(f"{'':24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'RSS MiB':>10}{'failed':>8}")
    rows = [("modelreg serve", results["modelreg"])]
    if "mlflow" in results:
        rows.append(("mlflow models serve", results["mlflow"]))
    for name, r in rows:
        print(
            f"{name:24}{r['req_per_s']:>10}{r['p50_ms']:>10}{r['p99_ms']:>10}"
            f"{r['rss_mb']:>10}{r['failed']:>8}"
        )
    if "mlflow" in results:
        m, o = results["modelreg"], results["mlflow"]
        print(
            f"{'ratio modelreg/mlflow':24}{m['req_per_s'] / o['req_per_s']:>10.2f}"
            f"{m['p50_ms'] / o['p50_ms']:>10.2f}{m['p99_ms'] / o['p99_ms']:>10.2f}"
            f"{m['rss_mb'] / o['rss_mb']:>10.2f}"
        )
    print(f"\nload average {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")


if __name__ == "__main__":
    raise SystemExit(main())

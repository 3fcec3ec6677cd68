"""A large file up to and down from S3 (moto's server on loopback): modelreg and MLflow.

Usage:
    .venv/bin/python bench/s3_transfer.py [--size-mib 1024] [--repeat 1] [--json FILE]
        [--skip-mlflow] [--keep DIR]

One moto S3 server (the tests' `tests/s3_endpoint.py`) holds a fresh bucket per system:
  modelreg proxied  `modelreg server --artifacts s3://…`, the client with MODELREG_TRANSFER=proxy:
                    every byte through the server, which hashes it on the way in and out
  modelreg direct   the same server, MODELREG_TRANSFER=direct: the client sends parts to
                    presigned URLs (4 at once), the server reads the blob back to hash it
                    before it counts; the download reads a presigned URL
  MLflow proxied    `mlflow server --artifacts-destination s3://… --serve-artifacts`:
                    `log_artifact` / `download_artifacts` through the server
  MLflow direct     `mlflow server --default-artifact-root s3://… --no-serve-artifacts`, the
                    client writing to and reading from the bucket with boto3
                    (MLFLOW_S3_ENDPOINT_URL), multipart and threaded by boto3's defaults
Upload is `Registry.register` (the file's digest already in the client's digest cache, so the
upload does not include hashing it first) / `log_artifact` + `create_model_version`; download
is `Registry.download` (verified as it is written) / `download_artifacts` (its SHA-256 checked
afterwards, untimed). Each repeat uses a new random file, so nothing is deduplicated. MLflow
runs from bench/.mlflow-venv (made on first use). Prints one table; nothing asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import ServerProcess, stderr, write_random_file
from mlflow_venv import MLFLOW_ENV, ensure_mlflow_venv

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from modelreg import Registry  # noqa: E402
from modelreg.client._digest_cache import DigestCache, default_path  # noqa: E402
from s3_endpoint import MotoServer  # noqa: E402  (the tests' moto server, on their path)

MIB = 1024 * 1024
SYSTEMS = ("modelreg proxied", "modelreg direct", "MLflow proxied", "MLflow direct")


class Bench:
    """The moto server, the four servers under test and the files they move."""

    def __init__(self, tmp: Path, args: argparse.Namespace) -> None:
        self.tmp = tmp
        self.args = args
        self.moto = MotoServer(tmp / "moto.log").start()
        self.env = self.moto.env()
        os.environ.update(self.env)
        os.environ["MODELREG_DIGEST_CACHE"] = str(tmp / "digests.db")
        self.servers: dict[str, ServerProcess] = {}
        self.mlflow_python: Path | None = None

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.moto.stop()

    def modelreg_server(self, name: str) -> ServerProcess:
        home = self.tmp / name.replace(" ", "-")
        home.mkdir()
        artifacts = f"s3://{self.moto.new_bucket()}/registry"

        def command(port: int) -> list[str]:
            cmd = [sys.executable, "-m", "modelreg.cli.main", "--registry", str(home), "server"]
            cmd += ["--artifacts", artifacts, "--host", "127.0.0.1", "--port", str(port)]
            return cmd

        server = ServerProcess(
            "modelreg", command, ready_path="/readyz", log=home / "server.log", env=self.env
        )
        return server.start()

    def mlflow_server(self, name: str, direct: bool) -> ServerProcess:
        assert self.mlflow_python is not None
        home = self.tmp / name.replace(" ", "-")
        home.mkdir()
        mlflow = str(self.mlflow_python.parent / "mlflow")
        where = f"s3://{self.moto.new_bucket()}/mlflow"

        def command(port: int) -> list[str]:
            cmd = [mlflow, "server", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}"]
            if direct:
                cmd += ["--default-artifact-root", where, "--no-serve-artifacts"]
            else:
                cmd += ["--artifacts-destination", where, "--serve-artifacts"]
            return [*cmd, "--host", "127.0.0.1", "--port", str(port)]

        env = {**self.env, **MLFLOW_ENV, "MLFLOW_S3_ENDPOINT_URL": self.moto.url}
        server = ServerProcess(
            "mlflow", command, ready_path="/health", log=home / "server.log", env=env
        )
        return server.start()

    def one(self, name: str, path: Path, digest: str) -> dict[str, Any]:
        """Upload then download ``path`` with system ``name`` (one of ``SYSTEMS``)."""
        if name.startswith("modelreg"):
            return self.modelreg_run("direct" if name.endswith("direct") else "proxy", path, digest)
        return self.mlflow_run(name, path, digest)

    def modelreg_run(self, mode: str, path: Path, digest: str) -> dict[str, Any]:
        # A server (and bucket) per mode: the same file uploaded twice to one would be a no-op.
        server = self.servers[f"modelreg {'direct' if mode == 'direct' else 'proxied'}"]
        os.environ["MODELREG_TRANSFER"] = mode
        out = self.tmp / "out"
        with Registry(server.url) as reg:
            # The server answers a proxied upload once its copy to the final key is done,
            # which takes moto a minute or more for 1 GiB: wait for it.
            reg.backend._http.timeout = httpx.Timeout(900.0)  # type: ignore[attr-defined]
            started = time.perf_counter()
            version = reg.register(f"big-{mode}", path, capture=False)
            up = time.perf_counter() - started
            assert version.files[0].sha256 == digest
            started = time.perf_counter()
            reg.download(f"big-{mode}:{version.version}", out)
            down = time.perf_counter() - started
        shutil.rmtree(out)
        return {"upload_s": up, "download_s": down, "verified": True}

    def mlflow_run(self, name: str, path: Path, digest: str) -> dict[str, Any]:
        assert self.mlflow_python is not None
        url = self.servers[name].url
        env = {**os.environ, **MLFLOW_ENV, "MLFLOW_S3_ENDPOINT_URL": self.moto.url}
        up = self._mlflow_worker("upload", url, {"model": "big", "path": str(path)}, env)
        params = {"ref": up["ref"], "out": str(self.tmp / "mlflow-out"), "sha256": digest}
        down = self._mlflow_worker("download", url, params, env)
        verified = down["verified"]
        return {"upload_s": up["seconds"], "download_s": down["seconds"], "verified": verified}

    def _mlflow_worker(
        self, workload: str, url: str, params: dict[str, Any], env: dict[str, str]
    ) -> dict[str, Any]:
        assert self.mlflow_python is not None
        out = self.tmp / f"worker-{workload}.json"
        worker = str(Path(__file__).parent / "_mlflow_worker.py")
        cmd = [str(self.mlflow_python), worker, workload, "--url", url]
        cmd += ["--params", json.dumps(params), "--out", str(out)]
        subprocess.run(cmd, check=True, env=env, stdin=subprocess.DEVNULL)
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def _table(results: dict[str, list[dict[str, Any]]], size: int) -> str:
    lines = [
        f"{'system':<18} {'upload s':>9} {'up MiB/s':>9} {'download s':>11} {'down MiB/s':>11}"
        f" {'verified':>9}"
    ]
    for name, runs in results.items():
        up = statistics.median(r["upload_s"] for r in runs)
        down = statistics.median(r["download_s"] for r in runs)
        ok = all(r["verified"] for r in runs)
        lines.append(
            f"{name:<18} {up:>9.2f} {size / MIB / up:>9.0f} {down:>11.2f} "
            f"{size / MIB / down:>11.0f} {'yes' if ok else 'NO':>9}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    size = args.size_mib * MIB
    bench = Bench(tmp, args)
    systems = [s for s in SYSTEMS if not (args.skip_mlflow and s.startswith("MLflow"))]
    results: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    load_before = os.getloadavg()
    try:
        for name in ("modelreg proxied", "modelreg direct"):
            bench.servers[name] = bench.modelreg_server(name)
        if not args.skip_mlflow:
            bench.mlflow_python = ensure_mlflow_venv()[0]
            for name in ("MLflow proxied", "MLflow direct"):
                bench.servers[name] = bench.mlflow_server(name, direct=name.endswith("direct"))
        for rep in range(args.repeat):
            path = tmp / "inputs" / f"weights-{rep}.bin"
            path.parent.mkdir(exist_ok=True)
            stderr(f"writing {args.size_mib} MiB of random bytes…")
            digest = write_random_file(path, size)
            time.sleep(2.1)  # the digest cache keeps only files older than its racy margin
            with DigestCache(default_path()) as cache:
                cache.digest(path)  # hashed once here, untimed: every upload reads the cache
            for name in systems:
                stderr(f"{name}: upload and download, run {rep + 1}/{args.repeat}…")
                results[name].append(bench.one(name, path, digest))
                stderr(f"  {results[name][-1]}")
            path.unlink()
    finally:
        bench.close()
    return {
        "size_mib": args.size_mib,
        "repeat": args.repeat,
        "results": results,
        "table": _table(results, size),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1 GiB)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per system (median shown)")
    parser.add_argument("--skip-mlflow", action="store_true", help="modelreg only")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it (logs, moto's log)")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        report = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="modelreg-s3-bench-") as tmp:
            report = run(args, Path(tmp))
    print(report["table"])
    print(f"\n{report['machine']}; load {report['load_before']} -> {report['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

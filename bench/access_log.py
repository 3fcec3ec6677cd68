"""What the access log costs a cached resolve: the app with and without ``AccessLog``.

PYTHONPATH=src .venv/bin/python bench/access_log.py [--requests 2000] [--rounds 15]
PYTHONPATH=src .venv/bin/python bench/access_log.py --http [--baseline-src OLD/src]

In-process (the default), it calls the app's ASGI entry directly (no sockets, so the layer's
share is not hidden in network time) with ``GET /api/v1/resolve?uri=models:/m@champion``,
answered from memory after the first call (``api.answers``). Variants take turns round by
round, so a busy machine slows them alike: no access layer, the layer with its logger off
(``--log-level warning``), and the layer writing text and JSON lines to /dev/null through the
server's handler. Medians of CPU time per request.

With ``--http``, real ``modelreg server`` processes on one registry answer the same resolve
over keep-alive HTTP, taking turns: ``--log-level warning`` (the layer, logger off),
``info`` with text and with JSON lines to a file, and, with ``--baseline-src``, a server run
from another checkout's sources (e.g. one without the layer). It reports the median latency
and the server's CPU time per request (``/proc``), which a busy machine disturbs less.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import ServerProcess

import modelreg
from modelreg.api.access_log import LOGGER, AccessLog, JsonFormatter, LineHandler, TextFormatter
from modelreg.api.app import create_app
from modelreg.config import Settings

SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/api/v1/resolve",
    "raw_path": b"/api/v1/resolve",
    "query_string": b"uri=models:/m@champion",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1:8080"), (b"accept", b"application/json")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8080),
    "state": {},
}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _run(app: Any, n: int, owner: Any) -> float:
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    # CPU time, not wall time: a busy machine disturbs it less (the loop never waits).
    start = time.process_time()
    for _ in range(n):
        # What Starlette.__call__ adds before calling its middleware stack.
        await app({**SCOPE, "state": {}, "app": owner}, _receive, send)
    elapsed = time.process_time() - start
    assert set(statuses) == {200}, set(statuses)
    return elapsed / n * 1e6


def _registry(tmp: str) -> Path:
    home = Path(tmp) / "registry"
    local = modelreg.Registry(home)
    (Path(tmp) / "w.bin").write_bytes(b"weights")
    local.register("m", Path(tmp) / "w.bin", capture=False)
    local.set_alias("m", "champion", 1)
    local.close()
    return home


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = _registry(tmp)
        variants: dict[str, tuple[list[str], dict[str, str]]] = {
            "log-level warning": (["--log-level", "warning"], {}),
            "text lines": (["--log-format", "text"], {}),
            "JSON lines": (["--log-format", "json"], {}),
        }
        if args.baseline_src:
            variants = {"baseline sources": ([], {"PYTHONPATH": args.baseline_src}), **variants}
        servers = {}
        for i, (name, (extra, env)) in enumerate(variants.items()):

            def command(port: int, extra: list[str] = extra) -> list[str]:
                cmd = [sys.executable, "-m", "modelreg.cli.main", "--registry", str(home)]
                return [*cmd, "server", "--port", str(port), *extra]

            log = Path(tmp) / f"server-{i}.log"
            servers[name] = ServerProcess(
                name, command, ready_path="/healthz", log=log, env=env
            ).start()
        latency: dict[str, list[float]] = {name: [] for name in servers}
        cpu: dict[str, list[float]] = {name: [] for name in servers}
        try:
            clients = {name: httpx.Client(base_url=srv.url) for name, srv in servers.items()}
            params = {"uri": "models:/m@champion"}
            for client in clients.values():
                for _ in range(20):
                    client.get("/api/v1/resolve", params=params).raise_for_status()
            for _ in range(args.rounds):
                for name, client in clients.items():
                    pid = servers[name].pid
                    used = _cpu_seconds(pid)
                    for _ in range(args.requests):
                        start = time.perf_counter()
                        client.get("/api/v1/resolve", params=params)
                        latency[name].append((time.perf_counter() - start) * 1e6)
                    cpu[name].append((_cpu_seconds(pid) - used) / args.requests * 1e6)
            for client in clients.values():
                client.close()
        finally:
            for srv in servers.values():
                srv.stop()
    base = next(iter(servers))
    base_lat = statistics.median(latency[base])
    base_cpu = statistics.median(cpu[base])
    print(f"cached resolve over HTTP, {args.rounds} rounds × {args.requests} requests per server")
    for name in servers:
        lat = statistics.median(latency[name])
        used = statistics.median(cpu[name])
        print(
            f"  {name:<18} median {lat:7.1f} µs ({(lat / base_lat - 1) * 100:+5.1f}%)  "
            f"server CPU {used:6.1f} µs/request ({(used / base_cpu - 1) * 100:+5.1f}%)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--http", action="store_true", help="real servers over HTTP")
    parser.add_argument("--baseline-src", help="with --http: also serve from these sources")
    args = parser.parse_args()
    if args.http:
        http(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        home = _registry(tmp)
        app = create_app(Settings.for_home(home))
        full = app.build_middleware_stack()
        # The same stack without the layer (same registry, so the same cached answers).
        ours = [m for m in app.user_middleware if m.cls is AccessLog]
        assert ours, "the app has no AccessLog"
        app.user_middleware = [m for m in app.user_middleware if m.cls is not AccessLog]
        bare = app.build_middleware_stack()
        logger = logging.getLogger(LOGGER)
        logger.propagate = False
        # Line-buffered, as the server's standard error is.
        sink = open("/dev/null", "w", buffering=1)  # noqa: SIM115 - open for the whole run
        handler = LineHandler(sink)
        logger.addHandler(handler)

        def off() -> None:
            logger.setLevel(logging.WARNING)

        def text() -> None:
            logger.setLevel(logging.INFO)
            handler.setFormatter(TextFormatter())

        def json_() -> None:
            logger.setLevel(logging.INFO)
            handler.setFormatter(JsonFormatter())

        variants = {
            "no access layer": (bare, off),
            "layer, logger off": (full, off),
            "layer, text lines": (full, text),
            "layer, JSON lines": (full, json_),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}

        async def measure() -> None:
            for target, setup in variants.values():  # warm up: the first call fills the cache
                setup()
                await _run(target, 50, app)
            for _ in range(args.rounds):
                for name, (target, setup) in variants.items():
                    setup()
                    times[name].append(await _run(target, args.requests, app))

        asyncio.run(measure())
        app.state.registry.engine.dispose()
        sink.close()
    base = statistics.median(times["no access layer"])
    print(f"cached resolve through the ASGI app, {args.rounds} rounds × {args.requests} requests")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:<20} {median:7.1f} µs/request  ({(median / base - 1) * 100:+5.1f}%)")


if __name__ == "__main__":
    main()

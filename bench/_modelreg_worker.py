"""The modelreg side of ``compare.py``: each workload through ``modelreg.Registry(url)``.

Run by the harness in a fresh process per workload (so a transfer's peak RSS is the client's
own), as ``python bench/_modelreg_worker.py WORKLOAD --url URL --params JSON --out FILE``.
``_mlflow_worker.py`` implements the same workloads with MLflow's client.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import measure, own_rss, sha256_file, timed_once, timed_readers, worker_main

import modelreg

CLIENT = f"modelreg {modelreg.__version__}"


def _numbers(reg: modelreg.Registry, name: str) -> list[int]:
    numbers: list[int] = []
    token = None
    while True:
        page = reg.list_versions(name, page_size=1000, page_token=token)
        numbers.extend(v.version for v in page.items)
        token = page.next_page_token
        if not token:
            return sorted(numbers)


def register(url: str, p: dict[str, Any]) -> dict[str, Any]:
    """Small-artifact registrations, sequential then from concurrent clients; contiguity."""
    artifact = Path(p["artifact"])
    local = threading.local()

    def op(i: int) -> None:
        # One client per thread, as separate processes or services would have.
        if not hasattr(local, "reg"):
            local.reg = modelreg.Registry(url)
        local.reg.register(p["model"], artifact, metrics={"i": float(i)}, capture=False)

    sequential = measure(op, p["sequential"])
    concurrent = measure(op, p["concurrent"], threads=p["threads"])
    numbers = _numbers(modelreg.Registry(url), p["model"])
    return {
        "sequential": sequential,
        "concurrent": concurrent,
        "versions": len(numbers),
        "contiguous": numbers == list(range(1, len(numbers) + 1)),
        "calls": (
            "Registry.register(name, file, metrics=…): POST the manifest "
            "(PUT blob, POST again if the server lacks it)"
        ),
    }


def resolve(url: str, p: dict[str, Any]) -> dict[str, Any]:
    """``name@alias`` resolution: sequential, then concurrent readers for a fixed time."""
    reg = modelreg.Registry(url)
    reg.set_alias(p["model"], p["alias"], p["version"])
    ref = f"{p['model']}@{p['alias']}"
    assert reg.get_version(ref).version == p["version"]

    def reader() -> Callable[[int], object]:
        own = modelreg.Registry(url)
        return lambda _i: own.get_version(ref)

    return {
        "sequential": measure(reader(), p["count"]),
        "readers": timed_readers(reader, p["seconds"], p["readers"]),
        "calls": f"Registry.get_version('{ref}'): GET /api/v1/resolve",
    }


def seed(url: str, p: dict[str, Any]) -> dict[str, Any]:
    """Load ``count`` versions with an ``acc`` metric for the search workload (not timed).

    Written through the embedded registry on the server's own folder, the same service
    layer the server runs, without HTTP, so seeding takes a fraction of the run.
    """
    del url
    os.environ["MODELREG_DB"] = p["db"]
    os.environ["MODELREG_ARTIFACTS"] = p["artifacts"]
    artifact = Path(p["artifact"])
    count = int(p["count"])
    started = time.perf_counter()
    with modelreg.Registry(p["home"]) as reg:
        for i in range(count):
            acc = (i + 0.5) / count
            reg.register(p["model"], artifact, metrics={"acc": acc}, capture=False)
    return {"versions": count, "seconds": round(time.perf_counter() - started, 2)}


# Moves the threshold by a hair per call: the same hits, but a query no cache has seen.
FRESH_STEP = 1e-12


def search(url: str, p: dict[str, Any]) -> dict[str, Any]:
    """First page of a metric-filtered version search, and of a name-only one."""
    reg = modelreg.Registry(url)
    query = f"name = '{p['model']}' AND metrics.acc > {p['threshold']}"
    by_name = f"name = '{p['model']}'"
    hits = len(reg.search(query, page_size=p["page"]).items)

    def fresh(i: int) -> object:
        # A query text no cache has seen (the server remembers repeated searches).
        moved = f"name = '{p['model']}' AND metrics.acc > {p['threshold'] + i * FRESH_STEP}"
        return reg.search(moved, page_size=p["page"])

    return {
        "metric": measure(lambda _i: reg.search(query, page_size=p["page"]), p["count"]),
        "metric_fresh": measure(fresh, p["count"]),
        "name_only": measure(lambda _i: reg.search(by_name, page_size=p["page"]), p["count"]),
        "hits": hits,
        "calls": f'Registry.search("{query}", page_size={p["page"]}): one GET',
    }


def upload(url: str, p: dict[str, Any]) -> dict[str, Any]:
    """Register a version whose one file is the big file (hash, upload, register).

    Also says, from outside the timed call, whether the client's digest cache already held
    the file, and how long ago the file last changed (younger than 2 s, it is not recorded).
    """
    if p.get("digest_cache"):
        os.environ["MODELREG_DIGEST_CACHE"] = p["digest_cache"]
    reg = modelreg.Registry(url)
    path = Path(p["path"])
    reg.list_models(page_size=1)  # open the connection before the clock starts
    info = path.stat()
    age = time.time() - max(info.st_mtime, info.st_ctime)
    cached = _digest_cached(path)
    with own_rss() as rss:
        holder: list[Any] = []
        seconds = timed_once(lambda: holder.append(reg.register(p["model"], path, capture=False)))
    version = holder[0]
    return {
        "seconds": round(seconds, 3),
        "client_rss": rss.result(),
        "ref": f"{version.name}:{version.version}",
        "sha256": version.files[0].sha256 if version.files else None,
        "file_age_s": round(age, 2),
        "digest_cached": cached,
    }


def _digest_cached(path: Path) -> bool:
    """Whether the digest cache has an entry for ``path`` (read directly: the bench only)."""
    cache = os.environ.get("MODELREG_DIGEST_CACHE", "")
    if not cache or not Path(cache).is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{cache}?mode=ro", uri=True)) as db:
            row = db.execute(
                "SELECT 1 FROM digests WHERE path = ?", (str(path.resolve()),)
            ).fetchone()
    except sqlite3.Error:
        return False
    return row is not None


def download(url: str, p: dict[str, Any]) -> dict[str, Any]:
    """Download a version's file (the client verifies its SHA-256), then check it again."""
    reg = modelreg.Registry(url)
    out = Path(p["out"])
    reg.get_version(p["ref"])  # open the connection before the clock starts
    with own_rss() as rss:
        holder: list[list[Path]] = []
        seconds = timed_once(lambda: holder.append(reg.download(p["ref"], out)))
    files = holder[0]
    verified = len(files) == 1 and sha256_file(files[0]) == p["sha256"]
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": round(seconds, 3), "client_rss": rss.result(), "verified": verified}


if __name__ == "__main__":
    worker_main(
        {
            "register": register,
            "resolve": resolve,
            "seed": seed,
            "search": search,
            "upload": upload,
            "download": download,
        }
    )

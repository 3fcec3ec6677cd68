"""modelreg at scale: 1,000,000 versions on PostgreSQL, then p50/p99 of the reads (issue #6, 2).

Usage:
    .venv/bin/python bench/scale.py [--quick] [--models N] [--versions-per-model M] [--json FILE]
                                    [--keep DIR] [--only WORKLOAD ...]

Starts a throwaway PostgreSQL server (the tests' ``tests/pg.py``: Debian binaries, run as the
``postgres`` user when we are root, fsync off), creates the modelreg schema through its
migrations, and bulk-loads N models x M versions with ``COPY`` (psycopg 3) straight into the
tables: every version ready with one file (a few shared digests), ``acc``/``loss`` metrics and a
``team`` tag; per model one production version (the ``champion`` alias points at it), the
versions after it in staging, every fifth one before it archived, and the two history entries
behind the production stage and the alias. Then VACUUM ANALYZE.

Then a real ``modelreg server --db postgresql+psycopg://…`` on a free loopback port is measured
through the real client, ``modelreg.Registry(url)`` (the HTTP backend), sequentially:
  search        ``metrics.acc > 0.9 AND tags.team = 'risk'`` across all models, 100 a page
  filter        one model's versions with ``metrics.acc > 0.5``
  listing       the first and a later page of the models (100), one model's versions (50)
  resolve       ``name@champion``, ``name/production``, ``name:57``
  model page    get_model + list_versions(50) + history, together
  web UI        the pages a browser GETs (``bench/_ui.py``): the models list (first and a later
                page), a search, a model, a version, a compare of three versions, a history,
                the pending requests and a model's audit events;
                their target is the server's own time (``Server-Timing``) p99 < 100 ms and
                every page < 300 KB
Each sample picks another random model, so the server's resolve cache (keyed on the reference)
never answers; each search sample raises the threshold by another ten-millionth (0.9000000,
0.9000001, …: practically the same matches), so the server's cache of search answers never
answers either. Workloads whose p99 misses the issue's target (50 ms) are replayed with
PostgreSQL's ``auto_explain`` on, and the plans of the statements over 50 ms are printed.
Benchmarks are not tests: nothing here asserts a time.

Loading is the slow part (about 150 s for 1,000,000 versions), so ``--keep DIR`` keeps the
PostgreSQL cluster in ``DIR``: the first run loads it there, later runs with the same shape and
seed start the server on it again, upgrade its schema to this modelreg's head (new indexes land
through the migrations, then ``VACUUM ANALYZE``) and go straight to measuring. Delete ``DIR``
to start over.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from _common import ServerProcess, measure, stderr
from _ui import MAX_PAGE_BYTES, TARGET_UI_P99_MS, UI_WORKLOADS, UiWorkloads

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from modelreg import Registry  # noqa: E402
from modelreg.db.schema import current_revision, ensure_schema, upgrade  # noqa: E402
from modelreg.db.session import make_engine  # noqa: E402
from modelreg.names import normalize_name  # noqa: E402
from pg import PostgresServer, find_pg_bin  # noqa: E402  (the tests' server, on their path)

TARGET_P99_MS = 50.0
TEAMS = ("risk", "growth", "search", "ads", "fraud")
SEARCH_QUERY = "metrics.acc > 0.9 AND tags.team = 'risk'"
# The same search with a threshold a hair above 0.9 per sample: a new question every time.
SEARCH_EACH = "metrics.acc > {threshold:.7f} AND tags.team = 'risk'"
VERSION_FILTER = "metrics.acc > 0.5"
DIGESTS = 64  # distinct blobs behind all the version files: dedup in action
CHUNK_MODELS = 250  # models per COPY round (and per transaction)
LATER_PAGE = 50  # which page of list_models counts as "a later page"
EXPLAIN_SAMPLES = 20
WORKLOADS = (
    "search_filtered_all_models",
    "list_versions_filtered",
    "list_models_first_page",
    "list_models_later_page",
    "list_versions_page",
    "resolve_alias",
    "resolve_stage",
    "resolve_number",
    "model_page",
    *UI_WORKLOADS,
)


@dataclass
class Shape:
    """How much to load and measure."""

    models: int
    versions: int
    samples: int
    seed: int

    @property
    def production(self) -> int:
        """The version number in production (and ``champion``) for every model."""
        return max(1, self.versions - 2)

    @property
    def pinned(self) -> int:
        """The version number resolved by ``name:N`` (57 when there are that many)."""
        return min(57, self.versions)


def model_name(i: int) -> str:
    return f"scale-model-{i:05d}"


# -- loading -----------------------------------------------------------------------------


@dataclass
class _Rows:
    """Text-format COPY buffers for one chunk of models."""

    tables: dict[str, io.StringIO] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, *values: object) -> None:
        buf = self.tables.setdefault(table, io.StringIO())
        buf.write("\t".join(r"\N" if v is None else str(v) for v in values))
        buf.write("\n")
        self.counts[table] = self.counts.get(table, 0) + 1


# Column lists in the order the rows are written; every NOT NULL column is given explicitly.
COLUMNS = {
    "models": (
        "id, name, normalized_name, description, owner, last_version, created_at, updated_at"
    ),
    "model_versions": (
        "id, model_id, number, status, stage, description, framework, run_id, environment, "
        "total_size, created_by, created_at, updated_at"
    ),
    "version_files": "version_id, path, size, sha256",
    "version_metrics": "version_id, key, value, version_created_at",
    "version_tags": "version_id, key, value",
    "aliases": "model_id, name, version_id, updated_by, updated_at",
    "history": (
        "id, model_id, kind, key, from_version, to_version, actor, at, reason, from_stage, action"
    ),
}


def _stage(number: int, shape: Shape) -> str:
    prod = shape.production
    if number == prod:
        return "production"
    if number > prod:
        return "staging"
    return "archived" if number % 5 == 0 else "none"


def _chunk_rows(first: int, last: int, shape: Shape, rng: random.Random, epoch: datetime) -> _Rows:
    rows = _Rows()
    digests = [hashlib.sha256(f"blob-{i}".encode()).hexdigest() for i in range(DIGESTS)]
    for i in range(first, last):
        model_id = uuid.uuid4()
        name = model_name(i)
        born = epoch + timedelta(minutes=i)
        team = TEAMS[i % len(TEAMS)]
        stamp = (born + timedelta(hours=shape.versions)).isoformat()
        rows.add(
            "models",
            model_id,
            name,
            normalize_name(name),
            f"benchmark model {i}",
            team,
            shape.versions,
            born.isoformat(),
            stamp,
        )
        production_id = None
        for number in range(1, shape.versions + 1):
            version_id = uuid.uuid4()
            at = (born + timedelta(hours=number)).isoformat()
            size = rng.randrange(1_000, 50_000_000)
            stage = _stage(number, shape)
            if stage == "production":
                production_id = version_id
            rows.add(
                "model_versions",
                version_id,
                model_id,
                number,
                "ready",
                stage,
                "",
                "sklearn",
                f"run-{i}-{number}",
                "{}",
                size,
                "bench",
                at,
                at,
            )
            rows.add("version_files", version_id, "model.bin", size, rng.choice(digests))
            acc = rng.random()
            rows.add("version_metrics", version_id, "acc", repr(acc), at)
            loss = 1 - acc + rng.random() / 10
            rows.add("version_metrics", version_id, "loss", repr(loss), at)
            rows.add("version_tags", version_id, "team", team)
        rows.add("aliases", model_id, "champion", production_id, "bench", stamp)
        prod = shape.production
        rows.add(
            "history",
            uuid.uuid4(),
            model_id,
            "stage",
            "production",
            None,
            prod,
            "bench",
            stamp,
            "",
            "staging",
            "move",
        )
        rows.add(
            "history",
            uuid.uuid4(),
            model_id,
            "alias",
            "champion",
            None,
            prod,
            "bench",
            stamp,
            "",
            None,
            "move",
        )
    return rows


def load(dsn: str, shape: Shape) -> dict[str, Any]:
    """COPY ``shape`` into the (migrated, empty) database at ``dsn``; row counts and time."""
    rng = random.Random(shape.seed)
    epoch = datetime(2024, 1, 1, tzinfo=UTC)
    totals: dict[str, int] = {}
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        for first in range(0, shape.models, CHUNK_MODELS):
            last = min(first + CHUNK_MODELS, shape.models)
            rows = _chunk_rows(first, last, shape, rng, epoch)
            with conn.cursor() as cur:
                # Parents before children: the foreign keys are checked as the rows go in.
                for table, columns in COLUMNS.items():
                    data = rows.tables[table].getvalue()
                    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        copy.write(data)
                    totals[table] = totals.get(table, 0) + rows.counts[table]
            conn.commit()
            if (last // CHUNK_MODELS) % 8 == 0 or last == shape.models:
                done = totals["model_versions"]
                stderr(f"  {done:,} versions in {time.perf_counter() - started:.0f} s")
        copied = time.perf_counter() - started
        conn.autocommit = True
        # VACUUM as well: a live registry's autovacuum keeps the visibility map set, which
        # index-only scans need; right after COPY it is empty.
        conn.execute("VACUUM ANALYZE")
        heads = conn.execute("SELECT count(*) FROM audit_head").fetchone()
    assert heads is not None
    if heads[0] != 1:
        raise RuntimeError(f"audit_head must keep its single row, found {heads[0]}")
    return {
        "copy_s": round(copied, 1),
        "total_s": round(time.perf_counter() - started, 1),
        "rows": totals,
    }


def disk_usage(dsn: str) -> dict[str, Any]:
    """The database's size on disk, and its largest tables (heap + indexes + TOAST)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        tables = conn.execute(
            "SELECT relname, pg_total_relation_size(oid), pg_indexes_size(oid) FROM pg_class "
            "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
            "ORDER BY 2 DESC LIMIT 8"
        ).fetchall()
    assert row is not None
    return {
        "database_mb": round(row[0] / 2**20, 1),
        "tables": {
            name: {"total_mb": round(t / 2**20, 1), "index_mb": round(i / 2**20, 1)}
            for name, t, i in tables
        },
    }


# -- measuring ---------------------------------------------------------------------------


class Workloads:
    """The measured reads, each a ``(i) -> None`` operation over a fresh random model."""

    def __init__(self, client: Registry, shape: Shape, url: str) -> None:
        self.client = client
        self.shape = shape
        rng = random.Random(shape.seed + 1)
        count = max(shape.samples, EXPLAIN_SAMPLES) + 10
        self.picks: list[str] = (
            [model_name(i) for i in rng.sample(range(shape.models), count)]
            if count <= shape.models
            else [model_name(rng.randrange(shape.models)) for _ in range(count)]
        )
        self.offset = 0
        self.later_token = self._token_of_page(LATER_PAGE)
        self.ui = UiWorkloads(url, self._name, self._search, shape.pinned, self.later_token)

    def _token_of_page(self, page: int) -> str | None:
        token = None
        for _ in range(page - 1):
            listing = self.client.list_models(page_size=100, page_token=token)
            if listing.next_page_token is None:
                break
            token = listing.next_page_token
        return token

    def _search(self, i: int) -> str:
        return SEARCH_EACH.format(threshold=0.9 + (self.offset + i) * 1e-7)

    def _name(self, i: int) -> str:
        return self.picks[(self.offset + i) % len(self.picks)]

    def table(self) -> dict[str, Callable[[int], object]]:
        """Workload name → operation, in the order of the report."""
        c, pinned = self.client, self.shape.pinned

        def model_page(i: int) -> None:
            name = self._name(i)
            c.get_model(name)
            c.list_versions(name, page_size=50)
            c.history(name)

        return {
            "search_filtered_all_models": lambda i: c.search(self._search(i), page_size=100),
            "list_versions_filtered": lambda i: c.list_versions(self._name(i), VERSION_FILTER),
            "list_models_first_page": lambda i: c.list_models(page_size=100),
            "list_models_later_page": lambda i: c.list_models(
                page_size=100, page_token=self.later_token
            ),
            "list_versions_page": lambda i: c.list_versions(self._name(i), page_size=50),
            "resolve_alias": lambda i: c.get_version(f"{self._name(i)}@champion"),
            "resolve_stage": lambda i: c.get_version(f"{self._name(i)}/production"),
            "resolve_number": lambda i: c.get_version(f"{self._name(i)}:{pinned}"),
            "model_page": model_page,
            **self.ui.table(),
        }


def run_workloads(
    work: Workloads, samples: int, only: list[str] | None = None
) -> list[dict[str, Any]]:
    """Measure each workload ``samples`` times after a short warm-up; one row per workload."""
    rows = []
    for name, op in work.table().items():
        if only is not None and name not in only:
            continue
        for i in range(3):  # connections and the planner's caches, not the measured models
            op(len(work.picks) - 1 - i)
        work.ui.reset()
        stats = measure(op, samples)
        work.offset += samples  # the next workload starts on models nobody read yet
        row = {
            "workload": name,
            "samples": stats["ops"],
            "errors": stats["errors"],
            "p50_ms": stats["p50_ms"],
            "p99_ms": stats["p99_ms"],
            "meets_target": stats["p99_ms"] is not None
            and stats["errors"] == 0
            and stats["p99_ms"] < TARGET_P99_MS,
        }
        row.update(work.ui.take(name))
        row["meets_target"] = row["meets_target"] and stats["errors"] == 0
        if stats.get("first_error"):
            row["first_error"] = stats["first_error"]
        rows.append(row)
        stderr(f"  {name}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms")
    return rows


def _ms(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def render(rows: list[dict[str, Any]]) -> str:
    """The one table: workload, samples, p50, p99, the server's p99 and bytes (pages), target.

    The target is p99 < 50 ms for the API, and for a page the server's p99 < 100 ms with
    every answer < 300 KB.
    """
    head = ("workload", "samples", "p50 ms", "p99 ms", "server p99 ms", "max KB", "target met")
    body = [
        (
            r["workload"],
            str(r["samples"]),
            _ms(r["p50_ms"]),
            _ms(r["p99_ms"]),
            _ms(r.get("server_p99_ms")),
            f"{r['max_bytes'] / 1000:.1f}" if r.get("max_bytes") is not None else "-",
            "yes" if r["meets_target"] else "NO",
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = []
    for cells in (head, *body):
        lines.append(
            "  ".join(
                c.ljust(w) if k == 0 else c.rjust(w)
                for k, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
        )
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# -- explaining --------------------------------------------------------------------------


def enable_auto_explain(dsn: str, threshold_ms: int) -> None:
    """Log the EXPLAIN ANALYZE of every statement over ``threshold_ms`` (-1: none).

    ``auto_explain`` is preloaded into every new session, and ALTER SYSTEM plus a reload moves
    the threshold in sessions the server's pool already holds: the plans are those of the exact
    statements modelreg runs, not a hand-copied approximation.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("LOAD 'auto_explain'")
        conn.execute("ALTER SYSTEM SET session_preload_libraries = 'auto_explain'")
        conn.execute(f"ALTER SYSTEM SET auto_explain.log_min_duration = {int(threshold_ms)}")
        conn.execute("ALTER SYSTEM SET auto_explain.log_analyze = on")
        conn.execute("ALTER SYSTEM SET auto_explain.log_buffers = on")
        conn.execute("SELECT pg_reload_conf()")


_PLAN_START = re.compile(r"duration: ([\d.]+) ms\s+plan:")


def slow_plans(log_text: str, limit: int = 6) -> list[dict[str, Any]]:
    """The distinct statements ``auto_explain`` logged, slowest first, each with its plan."""
    found: dict[str, dict[str, Any]] = {}
    lines = log_text.splitlines()
    for k, line in enumerate(lines):
        hit = _PLAN_START.search(line)
        if hit is None:
            continue
        block = []
        for follow in lines[k + 1 :]:
            if not follow.startswith(("\t", " ")):
                break
            block.append(follow.strip())
        query = " ".join(b.removeprefix("Query Text:").strip() for b in block[:1])
        key = re.sub(r"'[^']*'|\b\d+\b", "?", query)
        ms = float(hit.group(1))
        entry = found.setdefault(key, {"query": query, "count": 0, "max_ms": 0.0, "plan": []})
        entry["count"] += 1
        if ms >= entry["max_ms"]:
            entry["max_ms"] = ms
            entry["query"] = query
            entry["plan"] = block[1:]
    return sorted(found.values(), key=lambda e: -e["max_ms"])[:limit]


# -- a cluster kept between runs --------------------------------------------------------

DB_NAME = "modelreg_scale"


class KeptPostgres(PostgresServer):
    """The tests' throwaway server, but on a cluster in ``root`` that outlives the run.

    ``start()`` creates the cluster only when ``root`` holds none yet; ``stop()`` shuts the
    server down cleanly (a checkpoint: the tests' server runs with fsync off) and keeps it.
    """

    def __init__(self, bindir: Path, root: Path) -> None:
        super().__init__(bindir)
        self.root = root.resolve()

    def start(self) -> None:
        if self._running:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root
        self._data = self.root / "data"
        self._log = self.root / "postgres.log"
        sockdir = self.root / "sock"
        sockdir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            self._hand_to_os_user()
        if not (self._data / "PG_VERSION").is_file():
            self._run(
                "initdb",
                [
                    *("-D", str(self._data), "-A", "trust", "-U", "postgres", "--no-sync"),
                    *("-E", "UTF8", "--locale=C"),
                ],
            )
        self._start_server(sockdir)

    def stop(self) -> None:
        if self._running and self._data is not None:
            self._run("pg_ctl", ["-D", str(self._data), "-m", "fast", "-w", "stop"])
        self._running = False

    def database(self, name: str, *, fresh: bool) -> str:
        """The SQLAlchemy URL of database ``name``, dropped and created again when ``fresh``."""
        dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            there = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if there and not fresh:
                return f"{self.url_base}/{name}"
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        return self.create_database(name)


def _shape_key(shape: Shape) -> dict[str, int]:
    return {"models": shape.models, "versions": shape.versions, "seed": shape.seed}


def prepare(pg: PostgresServer, shape: Shape, keep: Path | None) -> tuple[str, dict[str, Any]]:
    """A database holding ``shape`` at the current schema: loaded now, or kept from before."""
    marker = keep / "loaded.json" if keep is not None else None
    reuse = (
        isinstance(pg, KeptPostgres)
        and marker is not None
        and marker.is_file()
        and json.loads(marker.read_text()).get("shape") == _shape_key(shape)
    )
    if isinstance(pg, KeptPostgres):
        db_url = pg.database(DB_NAME, fresh=not reuse)
    else:
        db_url = pg.create_database(DB_NAME)
    dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
    engine = make_engine(db_url)
    try:
        if reuse:
            assert marker is not None
            before = current_revision(engine)
            upgrade(engine)
            after = current_revision(engine)
            info: dict[str, Any] = json.loads(marker.read_text())["load"]
            info = {**info, "reused": True}
            if before != after:
                stderr(f"kept database upgraded {before} -> {after}; VACUUM ANALYZE…")
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE")
            return db_url, info
        ensure_schema(engine, create=True)
    finally:
        engine.dispose()
    total = shape.models * shape.versions
    stderr(f"loading {shape.models:,} models x {shape.versions} = {total:,} versions…")
    info = load(dsn, shape)
    if marker is not None:
        marker.write_text(json.dumps({"shape": _shape_key(shape), "load": info}) + "\n")
    return db_url, info


# -- the run -----------------------------------------------------------------------------


def modelreg_server(home: Path, db_url: str, workers: int | None) -> ServerProcess:
    def command(port: int) -> list[str]:
        cmd = [sys.executable, "-m", "modelreg.cli.main", "--registry", str(home), "server"]
        cmd += ["--db", db_url, "--artifacts", str(home / "blobs")]
        cmd += ["--host", "127.0.0.1", "--port", str(port)]
        return cmd + (["--workers", str(workers)] if workers else [])

    return ServerProcess(
        "modelreg", command, ready_path="/readyz", log=home.parent / "modelreg-server.log"
    )


@contextlib.contextmanager
def workdir(path: str | None) -> Iterator[Path]:
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    tmp = Path(tempfile.mkdtemp(prefix="modelreg-scale-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, shape: Shape) -> dict[str, Any]:
    """Load, serve, measure, explain; everything started here is stopped here."""
    bindir = find_pg_bin()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql-15)")
    report: dict[str, Any] = {
        "shape": {
            "models": shape.models,
            "versions_per_model": shape.versions,
            "samples": shape.samples,
            "seed": shape.seed,
        }
    }
    keep = Path(args.keep) if args.keep else None
    server_pg = KeptPostgres(bindir, keep) if keep is not None else PostgresServer(bindir)
    with workdir(args.workdir) as tmp, server_pg as pg:
        db_url, report["load"] = prepare(pg, shape, keep)
        dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
        report["disk"] = disk_usage(dsn)
        how = "kept from before" if report["load"].get("reused") else "loaded"
        stderr(f"  {how} in {report['load']['total_s']} s; {report['disk']['database_mb']} MiB")
        enable_auto_explain(dsn, -1)
        home = tmp / "registry"
        home.mkdir(exist_ok=True)
        server = modelreg_server(home, db_url, args.workers)
        try:
            server.start()
            stderr(f"modelreg server ready in {server.ready_s:.2f} s at {server.url}")
            client = Registry(server.url)
            work: Workloads | None = None
            try:
                work = Workloads(client, shape, server.url)
                report["rows"] = run_workloads(work, shape.samples, only=args.only)
                report["targets"] = {
                    "api_p99_ms": TARGET_P99_MS,
                    "ui_server_p99_ms": TARGET_UI_P99_MS,
                    "ui_max_bytes": MAX_PAGE_BYTES,
                }
                slow = [r["workload"] for r in report["rows"] if not r["meets_target"]]
                report["slow_plans"] = []
                if slow and not args.no_explain:
                    stderr(
                        f"replaying {', '.join(slow)} with auto_explain (> {TARGET_P99_MS:g} ms)…"
                    )
                    log = pg._log  # the tests' helper keeps the server log private
                    assert log is not None
                    mark = log.stat().st_size
                    enable_auto_explain(dsn, int(TARGET_P99_MS))
                    run_workloads(work, EXPLAIN_SAMPLES, only=slow)
                    enable_auto_explain(dsn, -1)
                    with log.open(errors="replace") as fh:
                        fh.seek(mark)
                        report["slow_plans"] = slow_plans(fh.read())
            finally:
                if work is not None:
                    work.ui.close()
                client.close()
        finally:
            server.stop()
    return report


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--versions-per-model", type=int, default=100)
    parser.add_argument("--samples", type=int, default=200, help="per workload")
    parser.add_argument("--quick", action="store_true", help="200 models x 10 versions, 20 samples")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--workers", type=int, help="modelreg server processes (default 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--workdir", help="keep the registry folder and logs here")
    parser.add_argument("--no-explain", action="store_true", help="skip the auto_explain replay")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="keep the loaded PostgreSQL cluster in DIR and reuse it on the next run",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="WORKLOAD",
        choices=WORKLOADS,
        help="measure only these workloads",
    )
    args = parser.parse_args()
    if args.quick:
        args.models, args.versions_per_model, args.samples = 200, 10, 20
    if args.models < 1 or args.versions_per_model < 1 or args.samples < 1:
        parser.error("--models, --versions-per-model and --samples must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    shape = Shape(args.models, args.versions_per_model, args.samples, args.seed)
    report = run(args, shape)
    load_info, disk = report["load"], report["disk"]
    kept = " (kept from an earlier run)" if load_info.get("reused") else ""
    print(
        f"{shape.models:,} models x {shape.versions} versions: loaded in {load_info['total_s']} s "
        f"(COPY {load_info['copy_s']} s, then VACUUM ANALYZE){kept}; "
        f"database {disk['database_mb']} MiB"
    )
    print(render(report["rows"]))
    if report["slow_plans"] == [] and not all(r["meets_target"] for r in report["rows"]):
        print("\nno single SQL statement took over 50 ms: the time is spent outside PostgreSQL")
    for plan in report["slow_plans"]:
        head = f"slow statement ({plan['count']}x, up to {plan['max_ms']:.1f} ms)"
        print(f"\n{head}: {plan['query'][:300]}")
        print("\n".join("    " + line for line in plan["plan"][:25]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(r["errors"] == 0 for r in report["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())

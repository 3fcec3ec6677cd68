"""How fast the deliveries listing answers when the outbox is large.

Loads ``--subscriptions`` subscriptions with ``--per`` deliveries each (bulk-inserted, untimed)
into a fresh registry on SQLite, or on ``--db URL`` (an empty migrated PostgreSQL database),
then times ``usecases.notify.deliveries`` as the REST route calls it: the first page of all
deliveries, a page 50 pages deep (following tokens), one subscription's first page and the
failed-only page. Prints p50/p99 in milliseconds; asserts nothing.

    .venv/bin/python bench/deliveries.py --subscriptions 20 --per 10000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, text

from modelreg.config import Settings
from modelreg.db.base import utcnow
from modelreg.db.tables.notify import DeliveryState, WebhookDelivery
from modelreg.local import LocalBackend
from modelreg.services import webhooks
from modelreg.services.usecases import notify


def _load(backend: LocalBackend, subscriptions: int, per: int) -> list[str]:
    sealer = notify.sealer_for(backend.settings)
    ids = []
    for n in range(subscriptions):
        spec = webhooks.NewWebhook(url=f"https://hooks.example.com/{n}")
        ids.append(notify.create(backend, backend.actor, sealer, spec)["id"])
    start = utcnow() - timedelta(days=1)
    states = [DeliveryState.DELIVERED] * 18 + [DeliveryState.PENDING, DeliveryState.FAILED]
    with backend.write() as session:
        for k, hook in enumerate(ids):
            rows = [
                {
                    "id": uuid.uuid4(),
                    "webhook_id": uuid.UUID(hook),
                    "event_seq": seq,
                    "state": states[seq % len(states)],
                    "attempts": 1,
                    "next_attempt_at": start,
                    "created_at": start + timedelta(milliseconds=seq * subscriptions + k),
                    "last_error": "",
                }
                for seq in range(1, per + 1)
            ]
            for chunk in range(0, len(rows), 5000):
                session.execute(insert(WebhookDelivery), rows[chunk : chunk + 5000])
    return ids


def _time(call: Callable[[], object], runs: int) -> tuple[float, float]:
    call()  # warm
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1e3)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main() -> None:
    """Load, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=20)
    parser.add_argument("--per", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--db", help="an empty, migrated database URL (default: SQLite)")
    parser.add_argument(
        "--with-index",
        action="store_true",
        help="add the indexes on (created_at, id) and (webhook_id, created_at, id) first",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        if args.db:
            (home / "modelreg.toml").write_text(f'db = "{args.db}"\n')
        backend = LocalBackend(Settings.for_home(home))
        t0 = time.perf_counter()
        ids = _load(backend, args.subscriptions, args.per)
        if args.with_index:
            with backend.write() as session:
                for name, columns in (
                    ("bench_deliveries_created", "created_at, id"),
                    ("bench_deliveries_hook_created", "webhook_id, created_at, id"),
                ):
                    session.execute(text(f"CREATE INDEX {name} ON webhook_deliveries ({columns})"))
        total = args.subscriptions * args.per
        print(f"loaded {total:,} deliveries in {time.perf_counter() - t0:.1f} s")
        actor = backend.actor

        def page(hook: str | None = None, failed: bool = False, token: str | None = None):
            return notify.deliveries(backend, actor, hook, failed, 50, token)

        token = None
        for _ in range(50):
            token = page(token=token)["next_page_token"]
        cases = {
            "all, first page": page,
            "all, page 51": lambda: page(token=token),
            "one subscription, first page": lambda: page(ids[0]),
            "failed only, first page": lambda: page(failed=True),
        }
        for name, call in cases.items():
            p50, p99 = _time(call, args.runs)
            print(f"{name:<32} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
        backend.close()


if __name__ == "__main__":
    main()

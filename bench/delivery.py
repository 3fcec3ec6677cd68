"""Does a dead or slow webhook target slow registration? Registrations/s with and without it.

PYTHONPATH=src .venv/bin/python bench/delivery.py [--count 100] [--rounds 5] [--hooks 8]
                                                  [--db URL] [--json FILE]

One real ``modelreg server`` (SQLite in a temporary folder unless ``--db``, which must be an
empty or migrated database) takes sequential registrations of a 4 KiB file from
``modelreg.Registry(url)``. The variants take turns round by round: ``none`` (no
subscription), ``healthy`` (``--hooks`` subscriptions to every event, to a receiver that
answers 204 at once) and ``blackhole`` (as many subscriptions to a target that is a
TCP port that accepts connections into its backlog and never answers, so each attempt hangs
until the 10 s per-attempt timeout, and once the backlog is full connecting hangs too).
While ``blackhole`` runs, the server's delivery worker is fanning out every event to every
subscription and holding sends open. Reports the median registrations/s and p99 latency.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _common import ServerProcess, measure
from cryptography.fernet import Fernet
from sqlalchemy import delete, func, select

import modelreg
from modelreg.db.schema import ensure_schema
from modelreg.db.session import make_engine, transaction
from modelreg.db.tables import AuditEvent
from modelreg.db.tables.notify import DeliveryAttempt, Webhook, WebhookDelivery, WebhookKind
from modelreg.services.secrets import Sealer, new_webhook_secret

MODELREG = str(Path(sys.executable).parent / "modelreg")


class _Answer204(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def healthy() -> ThreadingHTTPServer:
    """A receiver that answers 204 at once, in a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer204)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def blackhole() -> socket.socket:
    """A listening socket nobody accepts from: connections sit in its backlog, unanswered."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def _subscribe(engine: Any, url: str, key: str, hooks: int) -> None:
    with transaction(engine, write=True) as session:
        head = session.scalar(select(func.max(AuditEvent.seq))) or 0
        for _ in range(hooks):
            session.add(
                Webhook(
                    id=uuid.uuid4(),
                    kind=WebhookKind.WEBHOOK,
                    url=url,
                    events=["*"],
                    secret_enc=Sealer(key).seal(new_webhook_secret()),
                    created_by="bench",
                    cursor_seq=head,
                )
            )


def _unsubscribe(engine: Any) -> tuple[int, int]:
    """Remove every subscription; how many deliveries were fanned out and attempts made."""
    with transaction(engine, write=True) as session:
        made = session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0
        attempts = session.scalar(select(func.count()).select_from(DeliveryAttempt)) or 0
        session.execute(delete(Webhook))
    return made, attempts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100, help="registrations per variant/round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hooks", type=int, default=8, help="subscriptions to the blackhole")
    parser.add_argument("--db", default="", help="database URL (default: SQLite in the folder)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    key = Fernet.generate_key().decode()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "registry"
        home.mkdir()
        db = args.db or f"sqlite:///{home / 'registry.db'}"
        (home / "modelreg.toml").write_text(f'db = "{db}"\n')
        engine = make_engine(db)
        ensure_schema(engine)
        model_file = Path(tmp) / "model.bin"
        model_file.write_bytes(os.urandom(4096))
        hole, fine = blackhole(), healthy()
        targets = {
            "blackhole": f"http://127.0.0.1:{hole.getsockname()[1]}/hook",
            "healthy": f"http://127.0.0.1:{fine.server_address[1]}/hook",
        }
        env = {"MODELREG_WEBHOOK_ALLOW_PRIVATE": "true", "MODELREG_SECRET_KEY": key}
        server = ServerProcess(
            "modelreg",
            lambda port: [MODELREG, "--registry", str(home), "server", "--port", str(port)],
            ready_path="/readyz",
            log=Path(tmp) / "server.log",
            env=env,
        )
        server.start()
        results: dict[str, list[dict[str, Any]]] = {"none": [], "healthy": [], "blackhole": []}
        counts = {variant: [0, 0] for variant in results}
        try:
            with modelreg.Registry(server.url) as reg:
                reg.register("warmup", model_file)
                for _ in range(args.rounds):
                    for variant, rounds in results.items():
                        if variant != "none":
                            _subscribe(engine, targets[variant], key, args.hooks)
                        stats = measure(lambda _i: reg.register("m", model_file), args.count)
                        if variant != "none":
                            made, tried = _unsubscribe(engine)
                            counts[variant][0] += made
                            counts[variant][1] += tried
                        rounds.append(stats)
        finally:
            server.stop()
            hole.close()
            fine.shutdown()
            engine.dispose()
    summary = {
        variant: {
            "registrations_per_s": statistics.median(r["ops_per_s"] for r in rounds),
            "p99_ms": statistics.median(r["p99_ms"] for r in rounds),
            "errors": sum(r["errors"] for r in rounds),
            "rounds_per_s": [r["ops_per_s"] for r in rounds],
            "deliveries_fanned_out": counts[variant][0],
            # Attempts finished while the variant ran (the blackhole's hang 10 s each).
            "attempts_finished": counts[variant][1],
        }
        for variant, rounds in results.items()
    }
    print(json.dumps({"db": args.db or "sqlite", "hooks": args.hooks, **summary}, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rounds": results}, indent=2))


if __name__ == "__main__":
    main()

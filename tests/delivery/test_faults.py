"""Faults (issue 22 §6), with real servers: kill -9 before delivery, two servers on one
PostgreSQL, 1,000 events to a receiver that is down for a while."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from receivers import SECRET_KEY, Receiver, all_delivered, deliveries, settings_for, subscribe
from sqlalchemy import Engine

import modelreg
from modelreg.db.base import utcnow
from modelreg.db.session import make_engine, transaction
from modelreg.db.tables.notify import WorkerLease
from modelreg.services.delivery.worker import Backoff, DeliveryWorker
from server_process import DEADLINE, ServerProcess, ThreadedServer, run_cli
from service_db import ServiceRegistry, engine_for, migrated_template

SERVER_ENV = {"MODELREG_WEBHOOK_ALLOW_PRIVATE": "true", "MODELREG_SECRET_KEY": SECRET_KEY}


def until(condition: Any) -> None:
    """Wait until ``condition()``; fails only on a hang (DEADLINE)."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


@pytest.fixture
def engine(home: Path) -> Iterator[Engine]:
    """An engine on the database of ``home`` (a registry folder; SQLite or PostgreSQL)."""
    db = (home / "modelreg.toml").read_text().split('"')[1]
    eng = make_engine(db)
    yield eng
    eng.dispose()


def seqs(receiver: Receiver) -> list[int]:
    return [json.loads(r.body)["seq"] for r in receiver.got]


def test_kill_9_before_delivery_then_restart_delivers(
    home: Path, engine: Engine, files: Path
) -> None:
    receiver = Receiver()
    target = ThreadedServer(receiver.app())  # its port is chosen; it is not listening yet
    hook_id, _ = subscribe(engine, target.url + "/hook", events=["registry:version:*"])
    first = ServerProcess(home, env=SERVER_ENV).start()
    try:
        with modelreg.Registry(first.url) as reg:
            reg.register("fraud", files / "model.pkl")  # acknowledged
        # The server's worker has it and failed to reach the (down) receiver at least once.
        until(lambda: any(d.attempts >= 1 for d in deliveries(engine, hook_id)))
        assert first.proc is not None
        os.killpg(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
    finally:
        first.stop()
    assert receiver.got == []
    with target:
        second = ServerProcess(home, env=SERVER_ENV).start()
        try:
            until(lambda: all_delivered(engine, hook_id, 1))
        finally:
            code = second.stop()
    # uvicorn re-raises SIGTERM after its graceful shutdown, in which the worker stopped and
    # handed its lease over (another process may take it at once).
    assert code in (0, -signal.SIGTERM), second.output()
    with transaction(engine, write=False) as session:
        lease = session.get_one(WorkerLease, "delivery")
        assert lease.expires_at <= utcnow()
    assert len(receiver.got) == 1
    assert json.loads(receiver.got[0].body)["event"] == "registry:version:register"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_servers_on_one_postgresql_deliver_each_event_once(
    home: Path, engine: Engine, files: Path
) -> None:
    receiver = Receiver()
    with ThreadedServer(receiver.app()) as target:
        hook_id, _ = subscribe(engine, target.url + "/hook", events=["registry:version:*"])
        with (
            ServerProcess(home, env=SERVER_ENV) as one,
            ServerProcess(home, env=SERVER_ENV) as two,
            modelreg.Registry(one.url) as a,
            modelreg.Registry(two.url) as b,
        ):
            for n in range(30):
                (a if n % 2 else b).register("fraud", files / "model.pkl")
            until(lambda: all_delivered(engine, hook_id, 30))
    got = seqs(receiver)
    assert got == sorted(got)
    assert len(got) == len(set(got)) == 30
    assert len({r.headers["webhook-id"] for r in receiver.got}) == 30


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("faults-template"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_1000_events_in_order_once_the_receiver_is_back(
    db_url: str, template: Path, tmp_path: Path
) -> None:
    engine = engine_for(db_url, template)
    receiver = Receiver()
    target = ThreadedServer(receiver.app())
    hook_id, _ = subscribe(engine, target.url + "/hook", events=["registry:version:register"])
    reg = ServiceRegistry(engine)
    for _ in range(1000):
        reg.register("fraud")
    backoff = Backoff(base=0.05, cap=0.2, timeout=5.0)
    worker = DeliveryWorker(engine, settings_for(tmp_path, db_url), backoff=backoff, poll=0.05)
    worker.start()
    try:
        # The receiver is down: the first event is tried again and again, the rest wait.
        until(lambda: any(d.attempts >= 3 for d in deliveries(engine, hook_id)))
        with target:
            until(lambda: all_delivered(engine, hook_id, 1000))
    finally:
        worker.stop()
        engine.dispose()
    got = seqs(receiver)
    assert len(got) == 1000
    assert got == sorted(got)
    assert len(set(got)) == 1000


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_modelreg_deliver_once(home: Path, engine: Engine) -> None:
    receiver = Receiver()
    with ThreadedServer(receiver.app()) as target:
        hook_id, _ = subscribe(engine, target.url + "/hook", events=["registry:model:create"])
        ServiceRegistry(engine).register("fraud")
        done = run_cli("--registry", str(home), "deliver", "--once", env=SERVER_ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1 attempt made"
    assert all_delivered(engine, hook_id, 1)
    assert seqs(receiver) == [1]

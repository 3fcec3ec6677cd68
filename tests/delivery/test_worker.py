"""The delivery worker against real receivers on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from receivers import Receiver, all_delivered, deliveries, settings_for, subscribe
from sqlalchemy import Engine, select
from standardwebhooks.webhooks import Webhook as Verifier

from modelreg.db.base import utcnow
from modelreg.db.session import transaction
from modelreg.db.tables import AuditEvent, Role
from modelreg.db.tables.notify import (
    DeliveryAttempt,
    DeliveryState,
    Webhook,
    WebhookKind,
    WorkerLease,
)
from modelreg.services import auth
from modelreg.services.delivery import fanout
from modelreg.services.delivery.worker import Backoff, DeliveryWorker
from server_process import DEADLINE, ThreadedServer, free_port
from service_db import OWNER, ServiceRegistry, engine_for, migrated_template

FAST = Backoff(base=0.01, cap=0.05, timeout=5.0)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("delivery-template"))


@pytest.fixture
def engine(db_url: str, template: Path) -> Iterator[Engine]:
    eng = engine_for(db_url, template)
    yield eng
    eng.dispose()


def worker_for(engine: Engine, tmp_path: Path, **more: Any) -> DeliveryWorker:
    settings = settings_for(tmp_path, str(engine.url.render_as_string(hide_password=False)))
    return DeliveryWorker(engine, settings, backoff=FAST, poll=0.05, **more)


def until(condition: Any, worker: DeliveryWorker | None = None) -> None:
    """Run ``worker`` (or wait) until ``condition()``; fails only on a hang (DEADLINE)."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        if worker is not None:
            worker.run_once()
        time.sleep(0.02)


def attempts(engine: Engine, delivery_id: Any) -> list[DeliveryAttempt]:
    with transaction(engine, write=False) as session:
        return list(
            session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id == delivery_id)
                .order_by(DeliveryAttempt.at)
            )
        )


def test_a_registration_is_delivered_signed(engine: Engine, tmp_path: Path) -> None:
    receiver = Receiver()
    with ThreadedServer(receiver.app()) as target:
        hook_id, secret = subscribe(engine, target.url + "/hook")
        ServiceRegistry(engine).register("fraud")
        worker = worker_for(engine, tmp_path)
        try:
            until(lambda: all_delivered(engine, hook_id, 2), worker)  # model + version events
        finally:
            worker.stop()
    events = [Verifier(secret).verify(r.body, r.headers) for r in receiver.got]
    assert [e["event"] for e in events] == ["registry:model:create", "registry:version:register"]
    assert events[1]["model"] == "fraud"
    assert events[1]["version"] == 1
    done = deliveries(engine, hook_id)
    assert receiver.got[1].headers["webhook-id"] == f"msg_{done[1].id.hex}"
    [attempt] = attempts(engine, done[1].id)
    assert attempt.status == 200
    assert attempt.response_excerpt == "answer 200"


def test_fails_twice_then_succeeds(engine: Engine, tmp_path: Path) -> None:
    receiver = Receiver(answers=[(500, {}), (502, {})])
    with ThreadedServer(receiver.app()) as target:
        hook_id, _ = subscribe(engine, target.url + "/hook", events=["registry:model:*"])
        ServiceRegistry(engine).register("fraud")
        worker = worker_for(engine, tmp_path)
        try:
            until(lambda: all_delivered(engine, hook_id, 1), worker)
        finally:
            worker.stop()
    [delivery] = deliveries(engine, hook_id)
    assert delivery.attempts == 3
    assert delivery.last_status == 200
    assert [a.status for a in attempts(engine, delivery.id)] == [500, 502, 200]
    assert len(receiver.got) == 3
    assert len({r.headers["webhook-id"] for r in receiver.got}) == 1  # the same message id


def test_retry_after_is_honoured_and_410_disables(engine: Engine, tmp_path: Path) -> None:
    receiver = Receiver(answers=[(503, {"retry-after": "3600"})])
    with ThreadedServer(receiver.app()) as target:
        hook_id, _ = subscribe(engine, target.url + "/hook")
        ServiceRegistry(engine).register("fraud")
        worker = worker_for(engine, tmp_path)
        try:
            worker.run_once()
            first, second = deliveries(engine, hook_id)
            assert first.state is DeliveryState.PENDING
            assert first.attempts == 1
            assert first.next_attempt_at >= utcnow() + timedelta(seconds=3500)
            assert second.attempts == 0  # in order: waits behind the first
            with transaction(engine, write=True) as session:
                session.get_one(type(first), first.id).next_attempt_at = utcnow()
            receiver.answers.append((410, {}))
            worker.run_once()
        finally:
            worker.stop()
    with transaction(engine, write=False) as session:
        hook = session.get_one(Webhook, hook_id)
        assert hook.disabled_at is not None
        assert "410" in hook.disabled_reason
    assert {d.state for d in deliveries(engine, hook_id)} == {DeliveryState.FAILED}


def test_a_refused_address_is_never_contacted(engine: Engine, tmp_path: Path) -> None:
    receiver = Receiver()
    with ThreadedServer(receiver.app()) as target:
        hook_id, _ = subscribe(engine, target.url + "/hook")
        ServiceRegistry(engine).register("fraud")
        url = str(engine.url.render_as_string(hide_password=False))
        settings = settings_for(tmp_path, url).model_copy(update={"webhook_allow_private": False})
        worker = DeliveryWorker(engine, settings, backoff=FAST)
        try:
            worker.run_once()
        finally:
            worker.stop()
    assert receiver.got == []
    first = deliveries(engine, hook_id)[0]
    assert first.state is DeliveryState.PENDING
    assert "loopback" in first.last_error


def test_slack_and_email(engine: Engine, tmp_path: Path) -> None:
    got: list[Any] = []

    class Handler:
        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
            got.append(envelope)
            return "250 OK"

    port = free_port()
    smtp = Controller(Handler(), hostname="127.0.0.1", port=port)
    smtp.start()
    receiver = Receiver()
    try:
        with ThreadedServer(receiver.app()) as target:
            slack_id, _ = subscribe(engine, target.url + "/hook", kind=WebhookKind.SLACK)
            mail_id, _ = subscribe(engine, kind=WebhookKind.EMAIL, to="ops@example.com")
            ServiceRegistry(engine).register("fraud")
            settings = settings_for(
                tmp_path,
                str(engine.url.render_as_string(hide_password=False)),
                smtp_url=f"smtp://127.0.0.1:{port}",
                smtp_from="registry@example.com",
            )
            worker = DeliveryWorker(engine, settings, backoff=FAST)
            try:
                until(lambda: all_delivered(engine, slack_id, 2), worker)
                until(lambda: all_delivered(engine, mail_id, 2), worker)
            finally:
                worker.stop()
    finally:
        smtp.stop()
    assert "blocks" in receiver.got[0].body.decode()
    assert "webhook-signature" not in receiver.got[0].headers
    message = message_from_bytes(got[1].content)
    assert message["To"] == "ops@example.com"
    assert "registry:version:register" in message["Subject"]
    assert [p.get_content_type() for p in message.walk()][1:] == ["text/plain", "text/html"]


def test_two_workers_deliver_each_event_once(engine: Engine, tmp_path: Path) -> None:
    receiver = Receiver()
    with ThreadedServer(receiver.app()) as target:
        hook_id, _ = subscribe(engine, target.url + "/hook")
        reg = ServiceRegistry(engine)
        url = engine.url.render_as_string(hide_password=False)
        other = engine_for(url, Path("unused")) if not url.startswith("sqlite") else engine
        workers = [worker_for(engine, tmp_path).start(), worker_for(other, tmp_path).start()]
        try:
            for n in range(20):
                reg.register(f"m{n % 3}")
            until(lambda: all_delivered(engine, hook_id, 23))
        finally:
            for worker in workers:
                worker.stop()
            if other is not engine:
                other.dispose()
    seqs = [int(r.body.split(b'"seq":')[1].split(b",")[0]) for r in receiver.got]
    assert seqs == sorted(seqs)
    assert len(seqs) == len(set(seqs)) == 23
    with transaction(engine, write=False) as session:
        assert session.get(WorkerLease, "delivery") is not None


def test_a_subscription_sees_only_what_its_creator_may_read(engine: Engine) -> None:
    reg = ServiceRegistry(engine)
    reg.register("fraud")
    reg.register("churn")
    with transaction(engine, write=True) as session:
        auth.create_principal(session, "root", actor=OWNER, role=Role.ADMIN)
        auth.create_principal(session, "mo", actor=OWNER, role=Role.ADMIN, model="fraud")
    mine, _ = subscribe(engine, "http://unused.example/", created_by="mo")
    everything, _ = subscribe(engine, "http://unused.example/", created_by="root")
    only_stage, _ = subscribe(engine, "http://unused.example/", events=["registry:version:stage"])
    gone, _ = subscribe(engine, "http://unused.example/", created_by="nobody")
    reg.register("fraud")
    reg.register("churn")
    with transaction(engine, write=True) as session:
        fanout.fan_out(session)
    targets: dict[Any, list[str]] = {}
    with transaction(engine, write=False) as session:
        for hook in (mine, everything, only_stage, gone):
            seqs = [d.event_seq for d in deliveries(engine, hook)]
            targets[hook] = [session.get_one(AuditEvent, seq).target for seq in seqs]
    assert targets[mine] == ["fraud:2"]  # a model admin of fraud: nothing of churn
    assert targets[everything] == ["fraud:2", "churn:2"]
    assert targets[only_stage] == []
    assert targets[gone] == []  # its creator no longer exists


def test_a_change_in_this_process_wakes_the_worker(engine: Engine, tmp_path: Path) -> None:
    receiver = Receiver()
    with ThreadedServer(receiver.app()) as target:
        hook_id, _ = subscribe(engine, target.url + "/hook")
        settings = settings_for(tmp_path, engine.url.render_as_string(hide_password=False))
        # It would look again only in an hour: the commit below must wake it.
        worker = DeliveryWorker(engine, settings, backoff=FAST, poll=3600).start()
        try:
            ServiceRegistry(engine).register("fraud")
            until(lambda: all_delivered(engine, hook_id, 2))
        finally:
            worker.stop()
    assert [json.loads(r.body)["seq"] for r in receiver.got] == sorted(
        json.loads(r.body)["seq"] for r in receiver.got
    )

"""Deployments (issue 23 §5): serve processes report themselves, are listed with a status from
their heartbeat's age, and end; through both backends and the CLI.

Heartbeats are aged by moving ``heartbeat_at`` back in the database (never by sleeping). Every
class of bad input gets its precise error (and exit code) and changes nothing: an id that is no
UUID, a ref that does not parse, an unknown model, a timestamp without a time zone, a negative
pid or version, an oversized address or ``info``, ``info`` that is not a JSON object.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

import modelreg
from modelreg import errors
from modelreg.cli.main import main
from modelreg.config import Settings
from modelreg.db.base import utcnow
from modelreg.db.session import make_engine, transaction
from modelreg.db.stamp import current
from modelreg.db.tables import AuditEvent, Deployment
from modelreg.services import deployments
from modelreg.services.actor import Actor
from modelreg.services.models import get_model

STARTED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def report(reg: modelreg.Registry, dep: uuid.UUID | str, **changes: Any) -> modelreg.Deployment:
    fields: dict[str, Any] = {
        "ref": "models:/churn/production",
        "live_version": 1,
        "address": "http://10.0.3.7:9000",
        "hostname": "web-7",
        "pid": 4242,
        "started_at": STARTED,
    }
    fields.update(changes)
    return reg.report_deployment(dep, **fields)


def counts(home: Path) -> tuple[int, int]:
    """(deployments, audit events): "nothing changed" is these, unchanged."""
    engine = make_engine(Settings.for_home(home).db_url)
    try:
        with transaction(engine, write=False) as session:
            return (
                session.scalar(select(func.count()).select_from(Deployment)) or 0,
                session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
            )
    finally:
        engine.dispose()


def age(home: Path, dep: uuid.UUID, by: timedelta) -> None:
    """Move a deployment's last heartbeat ``by`` into the past."""
    engine = make_engine(Settings.for_home(home).db_url)
    try:
        with transaction(engine, write=True) as session:
            row = session.get_one(Deployment, dep)
            session.execute(
                update(Deployment)
                .where(Deployment.id == dep)
                .values(heartbeat_at=row.heartbeat_at - by)
            )
    finally:
        engine.dispose()


def actions(reg: modelreg.Registry) -> list[str]:
    return [e.action for e in reg.audit(limit=1000) if "deployment" in e.action]


@pytest.fixture
def churn(reg: modelreg.Registry, files: Path) -> modelreg.Registry:
    reg.register("churn", files / "model.pkl", capture=False)
    reg.register("churn", files / "model.pkl", capture=False)
    return reg


# -- the round trip, both backends -------------------------------------------------------------


def test_a_deployment_from_first_report_to_end(churn: modelreg.Registry) -> None:
    dep = uuid.uuid4()
    first = report(churn, dep, info={"workers": 2})
    assert isinstance(first, modelreg.Deployment)
    assert (first.id, first.model, first.ref) == (str(dep), "churn", "models:/churn/production")
    assert (first.live_version, first.address, first.hostname, first.pid) == (
        1,
        "http://10.0.3.7:9000",
        "web-7",
        4242,
    )
    assert first.started_at == "2026-12-01T09:30:00.000000Z"
    assert first.status == "live"
    assert first.info == {"workers": 2}
    assert first.last_error == ""
    assert first.last_error_at is None

    loaded = datetime.now(UTC)
    beat = report(churn, str(dep), live_version=2, loaded_at=loaded, info=None)
    assert (beat.live_version, beat.info) == (2, {})
    assert beat.loaded_at is not None
    assert beat.created_at == first.created_at
    assert beat.heartbeat_at >= first.heartbeat_at

    (listed,) = churn.deployments("churn")
    assert listed.to_dict() == {**beat.to_dict(), "heartbeat_age": listed.heartbeat_age}
    assert [d.id for d in churn.deployments()] == [str(dep)]

    ended = churn.end_deployment(dep)
    assert ended.id == str(dep)
    assert churn.deployments("churn").items == []
    # The start and the end are audited; the heartbeat is not.
    assert actions(churn) == ["registry:deployment:report", "registry:deployment:end"]


def test_the_audit_event_says_where_the_process_runs(churn: modelreg.Registry) -> None:
    dep = uuid.uuid4()
    report(churn, dep, info={"secret-ish": "not audited"})
    (event,) = [e for e in churn.audit(model="churn") if e.action.endswith("deployment:report")]
    assert event.target == f"deployment:{dep}"
    assert event.after == {
        "ref": "models:/churn/production",
        "live_version": 1,
        "address": "http://10.0.3.7:9000",
        "hostname": "web-7",
        "pid": 4242,
        "started_at": "2026-12-01T09:30:00.000000Z",
    }


def test_status_follows_the_heartbeats_age(churn: modelreg.Registry, home: Path) -> None:
    live, stale, stopped = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for dep in (live, stale, stopped):
        report(churn, dep)
    age(home, live, timedelta(seconds=10))  # two missed beats: still live
    age(home, stale, timedelta(seconds=20))
    age(home, stopped, timedelta(minutes=6))
    status = {d.id: (d.status, d.heartbeat_age) for d in churn.deployments("churn")}
    assert status[str(live)][0] == "live"
    assert status[str(stale)][0] == "stale"
    assert status[str(stopped)][0] == "stopped"
    assert 20 <= status[str(stale)][1] < 60
    # A heartbeat makes a stale deployment live again, and is still not audited.
    assert report(churn, stale).status == "live"
    assert actions(churn) == ["registry:deployment:report"] * 3


def test_deployments_silent_for_a_week_go_when_another_starts(
    churn: modelreg.Registry, home: Path
) -> None:
    gone, recent = uuid.uuid4(), uuid.uuid4()
    report(churn, gone)
    report(churn, recent)
    age(home, gone, timedelta(days=8))
    age(home, recent, timedelta(days=6))
    assert {d.id for d in churn.deployments()} == {str(gone), str(recent)}
    report(churn, uuid.uuid4())
    assert str(gone) not in {d.id for d in churn.deployments()}
    assert str(recent) in {d.id for d in churn.deployments()}


def test_last_error_is_timed_and_cleared(churn: modelreg.Registry) -> None:
    dep = uuid.uuid4()
    failed = report(churn, dep, last_error="VersionNotFound: churn v3")
    assert failed.last_error_at is not None
    same = report(churn, dep, last_error="VersionNotFound: churn v3")
    assert same.last_error_at == failed.last_error_at  # when it first happened
    cleared = report(churn, dep)
    assert (cleared.last_error, cleared.last_error_at) == ("", None)


def test_a_long_error_keeps_its_end(churn: modelreg.Registry) -> None:
    trace = "Traceback (most recent call last):\n" + "  frame\n" * 2000 + "ValueError: bad"
    kept = report(churn, uuid.uuid4(), last_error=trace).last_error
    assert len(kept) == 4000
    assert kept.startswith("…")
    assert kept.endswith("ValueError: bad")


def test_pages_newest_first(churn: modelreg.Registry) -> None:
    ids = [str(report(churn, uuid.uuid4()).id) for _ in range(5)]
    first = churn.deployments(page_size=2)
    assert len(first.items) == 2
    assert first.next_page_token is not None
    seen = [d.id for d in first]
    token = first.next_page_token
    while token:
        page = churn.deployments(page_size=2, page_token=token)
        seen += [d.id for d in page]
        token = page.next_page_token
    assert sorted(seen) == sorted(ids)
    assert len(seen) == 5
    with pytest.raises(errors.InvalidInput, match="different query"):
        churn.deployments("churn", page_size=2, page_token=first.next_page_token)


def test_several_models(churn: modelreg.Registry, files: Path) -> None:
    churn.register("fraud", files / "model.pkl", capture=False)
    report(churn, uuid.uuid4())
    report(churn, uuid.uuid4(), ref="fraud@champion", live_version=None)
    assert {d.model for d in churn.deployments()} == {"churn", "fraud"}
    (fraud,) = churn.deployments("fraud")
    assert (fraud.ref, fraud.live_version) == ("fraud@champion", None)


# -- bad input changes nothing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("dep", "changes", "error", "message"),
    [
        ("not-a-uuid", {}, errors.InvalidInput, "invalid deployment id"),
        ("../../models", {}, errors.InvalidInput, "invalid deployment id"),
        (None, {"ref": "nosuchmodel@champion"}, errors.ModelNotFound, "nosuchmodel"),
        (None, {"ref": "models:/churn"}, errors.InvalidReference, "names no version"),
        (None, {"ref": ""}, errors.InvalidReference, "empty"),
        (None, {"started_at": datetime(2026, 12, 1, 9, 30)}, errors.InvalidInput, "time zone"),
        (None, {"started_at": "yesterday"}, errors.InvalidInput, "time zone"),
        (None, {"loaded_at": "2026-12-01T09:30:00"}, errors.InvalidInput, "time zone"),
        (None, {"started_at": "0001-01-01T00:00:00+01:00"}, errors.InvalidInput, "years"),
        (None, {"loaded_at": "1900-01-01T00:00:00+00:00"}, errors.InvalidInput, "years"),
        (None, {"pid": -1}, errors.InvalidInput, "pid"),
        (None, {"live_version": 0}, errors.InvalidInput, "live_version"),
        (None, {"address": "x" * 513}, errors.InvalidInput, "address is longer than 512"),
        (None, {"hostname": "h" * 256}, errors.InvalidInput, "hostname is longer than 255"),
        (None, {"hostname": "web\x00"}, errors.InvalidInput, "control character"),
        (None, {"info": {"blob": "x" * 17_000}}, errors.InvalidInput, "info is larger than"),
    ],
)
def test_bad_reports_are_refused_and_change_nothing(
    churn: modelreg.Registry,
    home: Path,
    dep: str | None,
    changes: dict[str, Any],
    error: type[errors.RegistryError],
    message: str,
) -> None:
    before = counts(home)
    with pytest.raises(error, match=message):
        report(churn, dep or uuid.uuid4(), **changes)
    assert counts(home) == before


def test_a_report_cannot_move_to_another_model(churn: modelreg.Registry, files: Path) -> None:
    churn.register("fraud", files / "model.pkl", capture=False)
    dep = uuid.uuid4()
    report(churn, dep)
    with pytest.raises(errors.Conflict, match="another model"):
        report(churn, dep, ref="fraud@champion")
    (kept,) = churn.deployments()
    assert kept.model == "churn"


@pytest.mark.parametrize("bad", ["nope", "12345"])
def test_ending_a_bad_or_unknown_id(churn: modelreg.Registry, home: Path, bad: str) -> None:
    before = counts(home)
    with pytest.raises(errors.InvalidInput, match="invalid deployment id"):
        churn.end_deployment(bad)
    with pytest.raises(errors.NotFound, match="no deployment"):
        churn.end_deployment(uuid.uuid4())
    assert counts(home) == before


def test_listing_an_unknown_model(churn: modelreg.Registry) -> None:
    with pytest.raises(errors.ModelNotFound):
        churn.deployments("nosuchmodel")


# -- the CLI -----------------------------------------------------------------------------------


def test_cli_lists_deployments(
    churn: modelreg.Registry, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live, stale = uuid.uuid4(), uuid.uuid4()
    report(churn, live, live_version=2)
    report(churn, stale, last_error="Traceback …\nValueError: broken v3")
    age(home, stale, timedelta(minutes=3))

    assert main(["--registry", str(home), "deployments", "churn"]) == 0
    out = capsys.readouterr().out
    assert "models:/churn/production" in out
    assert "http://10.0.3.7:9000" in out
    (stale_line,) = [line for line in out.splitlines() if "stale" in line]
    assert "ValueError: broken v3" in stale_line
    assert " 3m " in stale_line
    assert "live" in out

    assert main(["--registry", str(home), "deployments", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["id"]: d["status"] for d in data["items"]} == {str(live): "live", str(stale): "stale"}
    assert data["next_page_token"] is None


def test_cli_empty_and_unknown(
    churn: modelreg.Registry, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--registry", str(home), "deployments"]) == 0
    assert "no deployments" in capsys.readouterr().out
    assert main(["--registry", str(home), "deployments", "nosuchmodel", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "model_not_found"


def test_start_and_end_reach_the_event_stream(churn: modelreg.Registry) -> None:
    dep = uuid.uuid4()
    report(churn, dep)
    report(churn, dep)  # a heartbeat: no event
    churn.end_deployment(dep)
    seen = [(e.event, e.model) for e in churn.events(model="churn", wait=0) if "deploy" in e.event]
    assert seen == [("registry:deployment:report", "churn"), ("registry:deployment:end", "churn")]


def stamp(home: Path) -> int:
    engine = make_engine(Settings.for_home(home).db_url)
    try:
        with transaction(engine, write=False) as session:
            return current(session)
    finally:
        engine.dispose()


def test_heartbeats_leave_the_change_stamp_alone(churn: modelreg.Registry, home: Path) -> None:
    dep = uuid.uuid4()
    before = stamp(home)
    report(churn, dep)
    started = stamp(home)
    assert started != before  # the first report writes an audit event
    report(churn, dep, live_version=2, last_error="boom")
    report(churn, dep)
    # Heartbeats every few seconds from every server must not flush every cached answer.
    assert stamp(home) == started


def test_two_first_reports_of_one_id_at_once(churn: modelreg.Registry, home: Path) -> None:
    dep = uuid.uuid4()
    report(churn, dep)  # the one that won the race
    engine = make_engine(Settings.for_home(home).db_url)
    try:
        with transaction(engine, write=True) as session:
            model = get_model(session, "churn", actor=None)
            # The loser found no row when it looked, and inserts after the winner committed.
            with pytest.raises(errors.ConcurrentChange, match="report again"):
                deployments._insert(session, dep, model, Actor("root"), utcnow())
            # Only its savepoint failed: the transaction is still usable (PostgreSQL too).
            assert session.get(Deployment, dep) is not None
    finally:
        engine.dispose()

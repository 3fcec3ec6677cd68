"""Issue 18 finding 12: every way of tampering with the audit log is detected, on both databases.

What the chain and the head show on their own (an event edited, removed or reordered; the head
row deleted or out of step), and what only an anchor kept outside shows (events cut off the end
with the head moved back; the chain rewritten from some event on).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

import modelreg
from modelreg import errors
from modelreg.cli.main import main
from modelreg.config import Settings
from modelreg.db.session import make_engine
from modelreg.services.audit import GENESIS


@pytest.fixture
def logged(home: Path, files: Path) -> Iterator[tuple[modelreg.Registry, Engine]]:
    """A registry whose audit log holds a dozen events, and a raw engine on its database."""
    reg = modelreg.Registry(home)
    for n in range(3):
        reg.register("fraud", files / "model.pkl", capture=False, tags={"n": str(n)})
    reg.set_alias("fraud", "champion", 2)
    reg.create_user("alice", role="admin")
    engine = make_engine(Settings.for_home(home).db_url)
    yield reg, engine
    engine.dispose()
    reg.close()


def _sql(engine: Engine, *statements: str, **params: object) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


def _events(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, hash FROM audit_events ORDER BY seq"))
        return [dict(r._mapping) for r in rows]


def _cut_tail_and_move_head(engine: Engine) -> None:
    events = _events(engine)
    keep = events[-3]
    _sql(
        engine,
        "DELETE FROM audit_events WHERE seq > :seq",
        "UPDATE audit_head SET last_seq = :seq, last_hash = :hash",
        seq=keep["seq"],
        hash=keep["hash"],
    )


def _delete_head(engine: Engine) -> None:
    _sql(engine, "DELETE FROM audit_head")


def _cut_tail_keep_head(engine: Engine) -> None:
    _sql(engine, "DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)")


def _change_an_event(engine: Engine) -> None:
    _sql(engine, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")


def _reorder(engine: Engine) -> None:
    # Swap events 3 and 4 entirely (each keeps its own hash): the chain no longer links.
    _sql(
        engine,
        "UPDATE audit_events SET seq = -1 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = 4",
        "UPDATE audit_events SET seq = 4 WHERE seq = -1",
    )


def _delete_a_middle_event(engine: Engine) -> None:
    _sql(engine, "DELETE FROM audit_events WHERE seq = 2")


def _head_hash_forged(engine: Engine) -> None:
    _sql(engine, "UPDATE audit_head SET last_hash = :h", h="f" * 64)


TAMPERING: dict[str, tuple[Callable[[Engine], None], str]] = {
    "delete head": (_delete_head, "head row"),
    "cut tail, head kept": (_cut_tail_keep_head, "head records event"),
    "change an event": (_change_an_event, "altered"),
    "reorder": (_reorder, "does not follow"),
    "delete a middle event": (_delete_a_middle_event, "missing"),
    "head hash forged": (_head_hash_forged, "head's hash"),
}


class TestChainAlone:
    def test_untouched_log_is_intact(self, logged):
        reg, engine = logged
        result = reg.verify_audit()
        assert result["ok"], result
        assert result["events"] == len(_events(engine)) > 5

    @pytest.mark.parametrize("case", list(TAMPERING))
    def test_tampering_is_detected(self, logged, case):
        reg, engine = logged
        tamper, problem = TAMPERING[case]
        tamper(engine)
        result = reg.verify_audit()
        assert not result["ok"]
        assert problem in result["problem"]
        assert result["first_bad_seq"] is not None

    def test_cut_tail_with_head_moved_back_passes_without_an_anchor(self, logged):
        """The documented limit: whoever can write the database can cut the end cleanly."""
        reg, engine = logged
        _cut_tail_and_move_head(engine)
        assert reg.verify_audit()["ok"]


class TestAnchors:
    def test_anchor_is_the_head(self, logged):
        reg, engine = logged
        head = reg.audit_anchor()
        last = _events(engine)[-1]
        assert (head["seq"], head["hash"]) == (last["seq"], last["hash"])
        assert head["anchor"] == f"{last['seq']}:{last['hash']}"
        assert head["at"].endswith("Z")
        assert reg.verify_audit(anchors=[head["anchor"]])["ok"]

    def test_anchor_still_holds_after_more_events(self, logged, files):
        reg, _ = logged
        anchor = reg.audit_anchor()["anchor"]
        reg.register("fraud", files / "model_dir", capture=False)
        result = reg.verify_audit(anchors=[anchor, f"0:{GENESIS}"])
        assert result["ok"], result
        assert result["anchors"] == 2

    def test_cut_tail_and_moved_head_is_caught_by_an_anchor(self, logged):
        reg, engine = logged
        anchor = reg.audit_anchor()
        _cut_tail_and_move_head(engine)
        result = reg.verify_audit(anchors=[anchor["anchor"]])
        assert not result["ok"]
        assert "cut off the end" in result["problem"]
        assert result["first_bad_seq"] == anchor["seq"] - 1

    def test_rewritten_chain_is_caught_by_an_anchor(self, logged):
        """A rewrite from event 2 on (hashes recomputed) passes alone, not against an anchor."""
        from modelreg.db.session import transaction
        from modelreg.db.tables import AuditEvent, AuditHead
        from modelreg.services.audit import event_hash

        reg, engine = logged
        anchor = reg.audit_anchor()["anchor"]
        with transaction(engine, write=True) as session:
            prev = None
            for event in session.query(AuditEvent).order_by(AuditEvent.seq):
                if event.seq == 2:
                    event.actor = "mallory"
                if prev is not None:
                    event.prev_hash = prev
                event.hash = event_hash(event)
                prev = event.hash
            head = session.get(AuditHead, 1)
            head.last_hash = prev
        assert reg.verify_audit()["ok"]
        result = reg.verify_audit(anchors=[anchor])
        assert not result["ok"]
        assert "rewritten" in result["problem"]

    @pytest.mark.parametrize(
        "anchor", ["", "12", "x:" + "0" * 64, "3:" + "0" * 63, "3:" + "g" * 64, "-1:" + "0" * 64]
    )
    def test_malformed_anchor_is_invalid_input(self, logged, anchor):
        reg, _ = logged
        with pytest.raises(errors.InvalidInput, match="SEQ:HASH"):
            reg.verify_audit(anchors=[anchor])

    def test_anchor_zero_must_be_genesis(self, logged):
        reg, _ = logged
        result = reg.verify_audit(anchors=["0:" + "1" * 64])
        assert not result["ok"]


class TestCli:
    def test_anchor_and_verify_commands(self, logged, home, capsys):
        _, engine = logged
        args = ["--registry", str(home), "audit"]
        assert main([*args, "anchor", "--json"]) == 0
        head = json.loads(capsys.readouterr().out)
        assert set(head) == {"seq", "hash", "at", "anchor"}
        assert main([*args, "anchor"]) == 0
        assert capsys.readouterr().out.split()[0] == head["anchor"]
        assert main([*args, "verify", "--anchor", head["anchor"]]) == 0
        assert "1 anchor(s) found" in capsys.readouterr().out
        _cut_tail_and_move_head(engine)
        assert main([*args, "verify"]) == 0
        capsys.readouterr()
        assert main([*args, "verify", "--anchor", head["anchor"], "--json"]) == 1
        assert not json.loads(capsys.readouterr().out)["ok"]
        assert main([*args, "verify", "--anchor", "nonsense"]) == 1
        _delete_head(engine)
        assert main([*args, "verify"]) == 1
        assert "head row" in capsys.readouterr().err
        assert main([*args, "anchor"]) == 1


def test_anchor_and_verify_through_both_backends(reg, home, files):
    """The same calls and answers embedded and through a server (GET /audit/head, /verify)."""
    reg.register("fraud", files / "model.pkl", capture=False)
    reg.set_tags("fraud", {"a": "1"})
    reg.set_tags("fraud", {"a": "2"})
    head = reg.audit_anchor()
    assert head["seq"] == 4
    engine = make_engine(Settings.for_home(home).db_url)
    _cut_tail_and_move_head(engine)
    engine.dispose()
    assert reg.verify_audit()["ok"]
    result = reg.verify_audit(anchors=[head["anchor"]])
    assert (result["ok"], result["first_bad_seq"]) == (False, 3)
    assert reg.audit_anchor()["seq"] == 2
    with pytest.raises(errors.InvalidInput):
        reg.verify_audit(anchors=["2:nothex"])

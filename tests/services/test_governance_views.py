"""The web UI's governance reads, called as the UI calls them, on SQLite and PostgreSQL.

A version's audit events, the chain verified a step at a time (and where it breaks), what an
actor may decide on a request, the gates evaluated read-only, the inbox count, and the audit
log's keyset pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from modelreg import errors
from modelreg.db.session import transaction
from modelreg.db.tables import AuditEvent, Promotion, Role
from modelreg.names import validate_model_name
from modelreg.services import audit, models, policies, promotions, versions
from modelreg.services.actor import Actor
from modelreg.services.policies import RuleSpec
from modelreg.services.usecases import admin, governance
from service_db import ServiceRegistry, engine_for, migrated_template

OWNER = Actor("admin")


def _user(name: str, role: Role) -> Actor:
    return Actor(name, superuser=False, grants={None: role})


VIC = _user("vic", Role.VIEWER)
ANN = _user("ann", Role.CONTRIBUTOR)
BOB = _user("bob", Role.APPROVER)
CAROL = _user("carol", Role.APPROVER)
NOBODY = Actor("nobody", superuser=False)


class Reg(ServiceRegistry):
    """A service registry that is also the use-cases' ``Handles``."""

    def read(self) -> AbstractContextManager[Session]:
        return transaction(self.engine, write=False)

    def write(self) -> AbstractContextManager[Session]:
        return transaction(self.engine, write=True)

    def rule(self, target: str, **spec: object) -> None:
        self.run(policies.set_rule, "m", target, RuleSpec(**spec), actor=OWNER)  # type: ignore[arg-type]

    def request(self, number: int, target: str, actor: Actor) -> int:
        return governance.promote(self, actor, "m", number, target, "ship it", False, None)["id"]

    def sql(self, statement: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(statement))

    def seqs(self) -> list[int]:
        with self.read() as session:
            return list(session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory):
    return migrated_template(tmp_path_factory.mktemp("views-template"))


@pytest.fixture
def reg(db_url: str, sqlite_template) -> Iterator[Reg]:
    engine = engine_for(db_url, sqlite_template)
    yield Reg(engine)
    engine.dispose()


@pytest.fixture
def gated(reg: Reg) -> Reg:
    """Model ``m``, v1 (acc 0.7) and v2 (acc 0.9); production needs acc >= 0.8 and 1 approval."""
    reg.register("m", metrics={"acc": 0.7})
    reg.register("m", metrics={"acc": 0.9})
    reg.rule("production", requires=["metrics.acc >= 0.8"], approvals=1)
    return reg


# -- a version's events ------------------------------------------------------------------------


def test_a_versions_events_are_its_own_newest_first(reg: Reg) -> None:
    reg.register("m")
    reg.register("m")
    reg.run(versions.set_version_tags, "m:1", actor=OWNER, set_tags={"team": "a"})
    with reg.read() as session:
        model = models.get_model(session, "m", actor=None)
        events = audit.list_events(
            session, actor=OWNER, model=model, target="m:1", descending=True, limit=10
        )
        assert [e.target for e in events] == ["m:1", "m:1"]
        assert events[0].seq > events[1].seq
        assert "tag" in events[0].action
        one = audit.list_events(session, actor=OWNER, model=model, target="m:1", limit=1)
        assert len(one) == 1
        assert "register" in one[0].action
        with pytest.raises(errors.InvalidInput):
            audit.list_events(session, actor=OWNER, target="m:1")


# -- the chain a step at a time -----------------------------------------------------------------


def _walk(reg: Reg, limit: int) -> list[audit.VerifyStep]:
    steps, anchor = [], audit.Anchor(0, audit.GENESIS)
    while True:
        with reg.read() as session:
            step = audit.verify_after(session, actor=OWNER, anchor=anchor, limit=limit)
        steps.append(step)
        if step.complete or not step.ok:
            return steps
        anchor = step.anchor


def test_verify_after_extends_the_prefix_step_by_step_to_the_head(reg: Reg) -> None:
    for _ in range(3):
        reg.register("m")
    seqs = reg.seqs()
    assert seqs == [1, 2, 3, 4]
    steps = _walk(reg, 3)
    assert [s.anchor.seq for s in steps] == [3, 4]
    assert steps[-1].complete
    assert steps[-1].ok
    assert steps[-1].anchor.seq == seqs[-1]
    assert all(s.ok and s.head_seq == seqs[-1] for s in steps)
    with reg.read() as session:
        head = audit.head(session, actor=OWNER)
    assert steps[-1].anchor.hash == head.hash
    # Nothing new: the same anchor comes back complete.
    with reg.read() as session:
        again = audit.verify_after(session, actor=OWNER, anchor=steps[-1].anchor, limit=2)
    assert again.complete
    assert again.anchor == steps[-1].anchor
    with reg.read() as session, pytest.raises(errors.PermissionDenied):
        audit.verify_after(session, actor=NOBODY, anchor=again.anchor, limit=1)


@pytest.mark.parametrize(
    ("edit", "bad", "problem"),
    [
        ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3", 3, "altered"),
        ("DELETE FROM audit_events WHERE seq = 3", 3, "missing"),
        ("UPDATE audit_head SET last_hash = 'ff' || substr(last_hash, 3)", None, "head"),
    ],
)
def test_verify_after_names_where_the_chain_breaks(
    reg: Reg, edit: str, bad: int | None, problem: str
) -> None:
    for _ in range(3):
        reg.register("m")
    last = reg.seqs()[-1]
    reg.sql(edit)
    steps = _walk(reg, 2)
    broken = steps[-1]
    assert not broken.ok
    assert problem in (broken.problem or "")
    assert broken.first_bad_seq == (bad if bad is not None else last)
    assert broken.anchor.seq < (bad if bad is not None else last + 1)


def test_verify_after_sees_an_edit_of_the_anchored_event(reg: Reg) -> None:
    for _ in range(2):
        reg.register("m")
    with reg.read() as session:
        step = audit.verify_after(
            session, actor=OWNER, anchor=audit.Anchor(0, audit.GENESIS), limit=2
        )
    reg.sql("UPDATE audit_events SET reason = 'edited' WHERE seq = 2")
    with reg.read() as session:
        again = audit.verify_after(session, actor=OWNER, anchor=step.anchor, limit=2)
    assert not again.ok
    assert again.first_bad_seq == 2


def test_the_verifier_advances_a_step_per_call_and_keeps_a_break(reg: Reg) -> None:
    for _ in range(5):
        reg.register("m")
    assert reg.seqs() == [1, 2, 3, 4, 5, 6]  # the model, then each version
    verifier = admin.AuditVerifier(step=3)
    first = verifier.advance(reg, OWNER)
    assert first["ok"]
    assert not first["complete"]
    assert first["verified_seq"] == 3
    assert first["checked_at"] is not None
    assert first["verified_at"] is not None
    reg.sql("UPDATE audit_events SET actor = 'mallory' WHERE seq = 5")
    second = verifier.advance(reg, OWNER)
    assert not second["ok"]
    assert second["first_bad_seq"] == 5
    assert second["verified_seq"] == 4
    assert verifier.advance(reg, OWNER)["first_bad_seq"] == 5
    with pytest.raises(errors.PermissionDenied):
        verifier.advance(reg, NOBODY)


# -- decisions ----------------------------------------------------------------------------------


def _decisions(reg: Reg, request_id: int, actor: Actor) -> dict[str, bool]:
    with reg.read() as session:
        promotion = session.get(Promotion, request_id)
        assert promotion is not None
        return promotions.decisions_for(session, promotion, actor)


def test_decisions_follow_approve_and_reject(gated: Reg) -> None:
    rid = gated.request(2, "production", ANN)
    assert _decisions(gated, rid, ANN) == {"approve": False, "reject": True}
    assert _decisions(gated, rid, BOB) == {"approve": True, "reject": True}
    assert _decisions(gated, rid, VIC) == {"approve": False, "reject": False}
    assert _decisions(gated, rid, _user("erin", Role.CONTRIBUTOR)) == {
        "approve": False,
        "reject": False,
    }
    gated.rule("production", requires=["metrics.acc >= 0.8"], approvals=2, approver_role="admin")
    assert _decisions(gated, rid, BOB) == {"approve": False, "reject": False}
    gated.rule("production", requires=["metrics.acc >= 0.8"], approvals=2)
    governance.approve(gated, BOB, rid, "")
    assert _decisions(gated, rid, BOB) == {"approve": False, "reject": True}
    assert _decisions(gated, rid, CAROL)["approve"]
    governance.approve(gated, CAROL, rid, "")
    assert _decisions(gated, rid, OWNER) == {"approve": False, "reject": False}


# -- gates --------------------------------------------------------------------------------------


def _audit_rows(reg: Reg) -> int:
    with reg.read() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def test_gates_are_evaluated_read_only_with_the_values_seen(gated: Reg) -> None:
    before = _audit_rows(gated)
    low = governance.evaluate_gates(gated, ANN, "m", 1, "production")
    assert low["outcome"] == "refused"
    assert not low["passed"]
    (criterion,) = low["criteria"]
    assert criterion["criterion"] == "metrics.acc >= 0.8"
    assert criterion["actual"] == {"metrics.acc": 0.7}
    assert not criterion["passed"]
    assert low["rule"]["source"] == "model"
    assert low["approvals_required"] == 1
    high = governance.evaluate_gates(gated, VIC, "m", 2, "production")
    assert high["outcome"] == "pending"
    assert high["passed"]
    assert not high["may_promote"]
    assert governance.evaluate_gates(gated, ANN, "m", 2, "staging")["outcome"] == "applied"
    assert _audit_rows(gated) == before
    governance.promote(gated, OWNER, "m", 2, "staging", "", False, None)
    again = governance.evaluate_gates(gated, ANN, "m", 2, "staging")
    assert again["outcome"] == "already"
    assert again["holder"] == 2
    with pytest.raises(errors.VersionNotFound):
        governance.evaluate_gates(gated, ANN, "m", 9, "production")
    with pytest.raises(errors.InvalidReference):
        governance.evaluate_gates(gated, ANN, "m", 1, "heaven")


def test_a_promotion_view_has_its_gates_metrics_and_decisions(gated: Reg) -> None:
    governance.promote(gated, OWNER, "m", 1, "staging", "", False, None)
    rid = gated.request(2, "production", ANN)
    view = governance.promotion_view(gated, BOB, rid)
    assert view["request"]["state"] == "pending"
    assert view["may"]["approve"]
    assert view["gates"]["passed"]
    assert view["metrics"] == [{"key": "acc", "value": 0.9, "holder": None}]
    listed = governance.inbox(gated, BOB, "pending", 10, None)
    assert [v["request"]["id"] for v in listed["items"]] == [rid]
    governance.approve(gated, BOB, rid, "")
    decided = governance.promotion_view(gated, BOB, rid)
    assert decided["gates"] is None
    assert decided["may"] == {"approve": False, "reject": False}
    assert governance.inbox(gated, BOB, "pending", 10, None)["items"] == []


# -- the inbox count ----------------------------------------------------------------------------


def test_waiting_counts_what_the_actor_may_approve(gated: Reg) -> None:
    assert governance.waiting_count(gated, BOB) == 0
    gated.register("m", metrics={"acc": 0.95})
    first = gated.request(2, "production", ANN)
    gated.request(3, "@champion", BOB)  # no rule: applied at once, nothing waits
    assert governance.waiting_count(gated, BOB) == 1
    assert governance.waiting_count(gated, ANN) == 0  # their own
    assert governance.waiting_count(gated, VIC) == 0
    assert governance.waiting_count(gated, OWNER) == 1
    other = Actor("olga", superuser=False, grants={gated.model_id(): Role.APPROVER})
    assert governance.waiting_count(gated, other) == 1
    gated.rule("production", requires=["metrics.acc >= 0.8"], approvals=2, approver_role="admin")
    assert governance.waiting_count(gated, BOB) == 0
    gated.rule("production", requires=["metrics.acc >= 0.8"], approvals=2)
    governance.approve(gated, BOB, first, "")
    assert governance.waiting_count(gated, BOB) == 0
    assert governance.waiting_count(gated, CAROL) == 1


# -- the audit log's pages ----------------------------------------------------------------------


def test_audit_pages_are_keyset_newest_first(reg: Reg) -> None:
    for _ in range(3):
        reg.register("m")
    reg.register("n")
    seen: list[int] = []
    before = None
    while True:
        got = admin.audit_page(reg, OWNER, None, before, 2)
        seen += [e["seq"] for e in got["items"]]
        before = got["next_before"]
        if before is None:
            break
    assert seen == sorted(reg.seqs(), reverse=True)
    only_n = admin.audit_page(reg, OWNER, "n", None, 50)
    assert only_n["items"]
    assert {e["target"].split(":")[0] for e in only_n["items"]} == {"n"}
    assert only_n["next_before"] is None
    with pytest.raises(errors.ModelNotFound):
        admin.audit_page(reg, VIC, "nope", None, 10)


def test_describe_is_a_reserved_last_segment() -> None:
    # The UI posts a model's description to /models/NAME/describe: no model may end so.
    with pytest.raises(errors.InvalidName):
        validate_model_name("team/describe")
    assert validate_model_name("describe") == "describe"

"""Lifecycle governance called directly, as the doors do, on SQLite and PostgreSQL.

Promotions through gates and approvals (applied, pending, refused), rejection and withdrawal,
compare-and-set on every move, production replacement, rollback, protected aliases, the history
of holders, the audit trail, and SECURITY.md rule 9 under concurrent writers: never two
production versions of one model, whatever the service layer does.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from modelreg import errors
from modelreg.db.base import utcnow
from modelreg.db.session import make_engine, transaction
from modelreg.db.tables import (
    Alias,
    AuditEvent,
    HistoryEntry,
    Model,
    Promotion,
    PromotionVote,
    Role,
    Version,
)
from modelreg.services import (
    audit,
    auth,
    lifecycle,
    models,
    policies,
    serialize,
    versions,
)
from modelreg.services.actor import Actor
from modelreg.services.policies import RuleSpec
from service_db import ServiceRegistry, engine_for, migrated_template

ADMIN = Actor("admin")  # the registry owner acting locally (superuser)


def _user(name, role):
    return Actor(name, superuser=False, grants={None: role})


VIEWER = _user("vic", Role.VIEWER)
ALICE = _user("alice", Role.CONTRIBUTOR)
ERIN = _user("erin", Role.CONTRIBUTOR)
BOB = _user("bob", Role.APPROVER)
CAROL = _user("carol", Role.APPROVER)
DAVE = _user("dave", Role.ADMIN)

REQUEST = "registry:promotion:promote"
APPROVE = "registry:promotion:approve"
REJECT = "registry:promotion:reject"
STAGE = "registry:version:stage"
ROLLBACK = "registry:model:rollback"
ALIAS_SET = "registry:alias:set"
ALIAS_DELETE = "registry:alias:delete"


# --------------------------------------------------------------------------------------------
# Fixtures: a migrated SQLite file is copied rather than migrated again for every test.


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory):
    return migrated_template(tmp_path_factory.mktemp("lifecycle-template"))


@pytest.fixture
def reg(db_url, sqlite_template):
    eng = engine_for(db_url, sqlite_template)
    yield Reg(eng, db_url)
    eng.dispose()


def snapshot(promotion):
    """A promotion's fields, read inside its transaction."""
    return SimpleNamespace(
        id=promotion.id,
        number=promotion.number,
        target=promotion.target,
        state=promotion.state.value,
        requested_by=promotion.requested_by,
        approvals_required=promotion.approvals_required,
        approver_role=promotion.approver_role.value,
        failed=list(promotion.failed_criteria or []),
        votes=[(v.actor, v.approve) for v in promotion.votes],
        decided_by=promotion.decided_by,
        decision_reason=promotion.decision_reason,
        from_version=promotion.from_version,
        expect_current=promotion.expect_current,
    )


class Reg(ServiceRegistry):
    """The shared shortcuts, plus the lifecycle's own."""

    def __init__(self, engine, url):
        super().__init__(engine)
        self.url = url

    def rule(self, target, scope="*", **spec):
        self.run(policies.set_rule, scope, target, RuleSpec(**spec), actor=ADMIN)

    def promote(self, number, target, *, actor=ADMIN, name="m", **kwargs):
        def call(session):
            return snapshot(lifecycle.promote(session, name, number, target, actor=actor, **kwargs))

        return self.run(call)

    def approve(self, request_id, actor, **kwargs):
        return self.run(lambda s: snapshot(lifecycle.approve(s, request_id, actor=actor, **kwargs)))

    def reject(self, request_id, actor, reason="not now"):
        return self.run(
            lambda s: snapshot(lifecycle.reject(s, request_id, actor=actor, reason=reason))
        )

    def get(self, request_id, actor=ADMIN):
        return self.run(lambda s: snapshot(lifecycle.get_promotion(s, request_id, actor=actor)))

    def set_alias(self, alias, version, *, actor=ADMIN, name="m", **kwargs):
        def call(session):
            out = lifecycle.set_alias(session, name, alias, version, actor=actor, **kwargs)
            if isinstance(out, Promotion):
                return snapshot(out)
            return SimpleNamespace(alias=out.name, version=out.version.number)

        return self.run(call)

    def rollback(self, *, actor=ADMIN, name="m", reason="incident 42", **kwargs):
        return self.run(lifecycle.rollback, name, actor=actor, reason=reason, **kwargs)

    def stages(self, name="m"):
        with transaction(self.engine, write=False) as session:
            rows = session.execute(
                select(Version.number, Version.stage)
                .join(Model, Model.id == Version.model_id)
                .where(Model.name == name)
                .order_by(Version.number)
            )
            return {number: stage.value for number, stage in rows}

    def holder(self, target, name="m"):
        with transaction(self.engine, write=False) as session:
            model = models.get_model(session, name, actor=None)
            return lifecycle.current_holder(session, model, target)

    def history(self, name="m"):
        with transaction(self.engine, write=False) as session:
            return [
                SimpleNamespace(
                    kind=e.kind.value,
                    key=e.key,
                    from_stage=e.from_stage,
                    from_version=e.from_version,
                    to_version=e.to_version,
                    action=e.action.value,
                    request_id=e.request_id,
                    actor=e.actor,
                    reason=e.reason,
                    at=e.at,
                )
                for e in lifecycle.history(session, name, actor=ADMIN)
            ]

    def events(self):
        with transaction(self.engine, write=False) as session:
            return [
                SimpleNamespace(
                    action=e.action,
                    actor=e.actor,
                    target=e.target,
                    before=e.before,
                    after=e.after,
                    reason=e.reason,
                )
                for e in audit.list_events(session, actor=ADMIN, limit=10_000)
            ]

    def actions(self, since=0):
        return [e.action for e in self.events()[since:]]

    def counts(self):
        """Rows of every table a lifecycle action writes, and every version's stage."""
        with transaction(self.engine, write=False) as session:
            rows = tuple(
                session.scalar(select(func.count()).select_from(t))
                for t in (Promotion, PromotionVote, HistoryEntry, AuditEvent, Alias)
            )
        return rows, self.stages()

    def verify(self):
        with transaction(self.engine, write=False) as session:
            return audit.verify(session, actor=ADMIN).ok


def entries(history, **match):
    return [e for e in history if all(getattr(e, k) == v for k, v in match.items())]


def moves(history):
    """History as comparable tuples, ignoring time."""
    return [
        (e.kind, e.key, e.from_stage, e.from_version, e.to_version, e.action, e.request_id)
        for e in history
    ]


# --------------------------------------------------------------------------------------------
# Outcomes of a request: applied, refused, pending; dry runs and no-ops


def test_without_a_rule_a_promotion_applies_at_once(reg):
    reg.register()
    p = reg.promote(1, " Staging ", actor=ALICE, reason="ready for QA")
    assert (p.state, p.target, p.requested_by, p.decided_by) == (
        "applied",
        "staging",
        "alice",
        "alice",
    )
    assert isinstance(p.id, int)
    assert (p.approvals_required, p.from_version, p.failed) == (0, None, [])
    assert reg.stages() == {1: "staging"}
    [entry] = reg.history()
    assert moves([entry]) == [("stage", "staging", "none", None, 1, "promote", str(p.id))]
    assert (entry.actor, entry.reason) == ("alice", "ready for QA")
    request, stage = reg.events()[-2:]
    assert (request.action, request.target, request.actor, request.reason) == (
        REQUEST,
        "m/staging:1",
        "alice",
        "ready for QA",
    )
    assert request.after == {
        "request_id": p.id,
        "version": 1,
        "target": "staging",
        "state": "applied",
        "failed_criteria": [],
    }
    assert (stage.action, stage.target, stage.before, stage.after) == (
        STAGE,
        "m:1",
        {"stage": "none"},
        {"stage": "staging", "action": "promote", "request_id": str(p.id)},
    )
    assert reg.verify()


def test_a_refused_request_is_stored_and_audited_and_moves_nothing(reg):
    reg.register(metrics={"acc": 0.9})
    reg.rule("production", requires=["metrics.acc >= 0.95"], approvals=1)
    p = reg.promote(1, "production", actor=ALICE, reason="ship it")
    assert p.state == "refused"
    assert isinstance(p.id, int)
    assert p.failed == [
        {
            "criterion": "metrics.acc >= 0.95",
            "passed": False,
            "actual": {"metrics.acc": 0.9},
            "message": "not met: metrics.acc = 0.9",
        }
    ]
    assert p.decided_by == "alice"
    assert reg.stages() == {1: "none"}
    assert reg.history() == []
    with transaction(reg.engine, write=False) as session:
        stored = lifecycle.list_promotions(session, actor=VIEWER, name="m", state="refused")
        assert [(s.id, s.state.value, s.failed_criteria) for s in stored] == [
            (p.id, "refused", p.failed)
        ]
    event = reg.events()[-1]
    assert (event.action, event.after["state"], event.after["failed_criteria"]) == (
        REQUEST,
        "refused",
        p.failed,
    )
    assert reg.verify()


BAD_REQUESTS = [
    (lambda r: r.promote(0, "staging"), errors.InvalidInput),
    (lambda r: r.promote(True, "staging"), errors.InvalidInput),
    (lambda r: r.promote("1", "staging"), errors.InvalidInput),
    (lambda r: r.promote(1, "prod"), errors.InvalidInput),
    (lambda r: r.promote(1, "@latest"), errors.InvalidName),
    (lambda r: r.promote(1, ""), errors.InvalidInput),
    (lambda r: r.promote(99, "staging"), errors.VersionNotFound),
    (lambda r: r.promote(1, "staging", name="ghost"), errors.ModelNotFound),
    (lambda r: r.promote(1, "staging", reason="a\x00b"), errors.InvalidInput),
    (lambda r: r.promote(1, "staging", actor=VIEWER), errors.PermissionDenied),
    (lambda r: r.approve(0, BOB), errors.InvalidInput),
    (lambda r: r.approve(999, BOB), errors.PromotionNotFound),
    (lambda r: r.reject(999, BOB), errors.PromotionNotFound),
    (lambda r: r.get(999), errors.PromotionNotFound),
    (lambda r: r.set_alias("champion", 99), errors.VersionNotFound),
    (lambda r: r.set_alias("latest", 1), errors.InvalidName),
    (lambda r: r.set_alias("champion", 1, actor=VIEWER), errors.PermissionDenied),
]


def test_bad_requests_change_nothing(reg):
    reg.register()
    before = reg.counts()
    for i, (call, error) in enumerate(BAD_REQUESTS):
        with pytest.raises(error):
            call(reg)
        assert reg.counts() == before, i


def test_a_dry_run_says_what_would_happen_and_stores_nothing(reg):
    reg.register(metrics={"acc": 0.9})
    reg.register(metrics={"acc": 0.9})
    reg.promote(1, "production")
    for rule, state in [
        ({}, "applied"),
        ({"approvals": 1}, "pending"),
        ({"requires": ["metrics.acc > 0.99"]}, "refused"),
    ]:
        reg.rule("production", previous_to="staging", **rule)
        before = reg.counts()
        p = reg.promote(2, "production", actor=ALICE, dry_run=True, expect_current=1)
        assert (p.id, p.state, p.from_version) == (None, state, 1)
        assert bool(p.failed) == (state == "refused")
        assert reg.counts() == before


def test_a_pending_request_asked_again_is_the_same_request(reg):
    reg.register()
    reg.register()
    reg.rule("production", approvals=1)
    first = reg.promote(1, "production", actor=ALICE, reason="CI run 1")
    again = reg.promote(1, "production", actor=ALICE, reason="CI run 1 (retry)")
    other = reg.promote(1, "Production", actor=ERIN)
    assert first.state == again.state == other.state == "pending"
    assert first.id == again.id == other.id
    assert reg.counts()[0][0] == 1
    assert reg.actions().count(REQUEST) == 1
    # Another version is another request.
    assert reg.promote(2, "production", actor=ALICE).id != first.id


def test_a_version_already_in_the_target_is_a_no_op(reg):
    reg.register(metrics={"acc": 0.5})
    reg.promote(1, "staging")
    reg.set_alias("champion", 1)
    reg.rule("staging", requires=["metrics.acc > 0.99"], approvals=2)
    reg.rule("@champion", approvals=2)
    before = reg.counts()
    for target in ("staging", "@champion"):
        p = reg.promote(1, target, actor=ALICE)
        assert (p.state, p.id) == ("applied", None)
        assert "already holds" in p.decision_reason
    assert reg.counts() == before


def test_the_from_stage_gate(reg):
    reg.register()
    reg.rule("production", from_stages=["staging"])
    refused = reg.promote(1, "production", actor=ALICE)
    assert refused.failed == [
        {
            "criterion": "from stage staging",
            "passed": False,
            "actual": {"stage": "none"},
            "message": "it is in none, not staging",
        }
    ]
    reg.promote(1, "staging", actor=ALICE)
    assert reg.promote(1, "production", actor=ALICE).state == "applied"
    assert reg.history()[-1].from_stage == "staging"
    assert reg.stages() == {1: "production"}


def test_required_tags(reg):
    reg.register(tags={"team": "ops"})
    reg.rule("staging", required_tags={"validated": None, "team": "risk"})
    refused = reg.promote(1, "staging", actor=ALICE)
    assert refused.state == "refused"
    assert refused.failed == [
        {
            "criterion": "tag team = 'risk'",
            "passed": False,
            "actual": {"tags.team": "ops"},
            "message": "tags.team is 'ops'",
        },
        {
            "criterion": "tag validated",
            "passed": False,
            "actual": {"tags.validated": None},
            "message": "tags.validated missing",
        },
    ]
    reg.run(versions.set_version_tags, "m:1", actor=ALICE, set_tags={"team": "risk"})
    assert [c["criterion"] for c in reg.promote(1, "staging", actor=ALICE).failed] == [
        "tag validated"
    ]
    reg.run(versions.set_version_tags, "m:1", actor=ALICE, set_tags={"validated": "2026-11-20"})
    assert reg.promote(1, "staging", actor=ALICE).state == "applied"


# --------------------------------------------------------------------------------------------
# Approvals


def test_two_distinct_approvers_are_needed_and_each_counts_once(reg):
    reg.register()
    reg.rule("production", approvals=2)
    p = reg.promote(1, "production", actor=ALICE, reason="quarterly model")
    assert (p.state, p.approvals_required, p.approver_role, p.votes) == (
        "pending",
        2,
        "approver",
        [],
    )
    mark = len(reg.events())
    first = reg.approve(p.id, BOB, reason="metrics look fine")
    assert (first.state, first.votes) == ("pending", [("bob", True)])
    assert reg.stages() == {1: "none"}
    with pytest.raises(errors.Conflict, match="already approved"):
        reg.approve(p.id, BOB)
    done = reg.approve(p.id, CAROL)
    assert (done.state, done.decided_by) == ("applied", "carol")
    assert sorted(done.votes) == [("bob", True), ("carol", True)]
    assert reg.stages() == {1: "production"}
    assert moves(reg.history()) == [("stage", "production", "none", None, 1, "promote", str(p.id))]
    # The history entry keeps the requester's reason; the decision is in the audit log.
    assert reg.history()[-1].reason == "quarterly model"
    events = reg.events()[mark:]
    assert [e.action for e in events] == [APPROVE, APPROVE, STAGE]
    assert [(e.actor, e.after["approvals"], e.after["required"]) for e in events[:2]] == [
        ("bob", 1, 2),
        ("carol", 2, 2),
    ]
    assert events[0].reason == "metrics look fine"
    assert events[2].after["request_id"] == str(p.id)
    with pytest.raises(errors.Conflict, match="already applied"):
        reg.approve(p.id, DAVE)
    assert reg.verify()


def test_the_requester_never_approves_their_own_request(reg):
    reg.register()
    reg.register()
    reg.rule("production", approvals=1)
    for number, requester in ((1, ADMIN), (2, DAVE)):
        p = reg.promote(number, "production", actor=requester)
        with pytest.raises(errors.PermissionDenied, match="separation of duties"):
            reg.approve(p.id, requester)
        after = reg.get(p.id)
        assert (after.state, after.votes) == ("pending", [])
    assert reg.approve(reg.promote(1, "production", actor=ADMIN).id, BOB).state == "applied"


def test_the_approver_role_comes_from_the_policy(reg):
    reg.register()
    reg.rule("production", approvals=1, approver_role="admin")
    p = reg.promote(1, "production", actor=ALICE)
    assert p.approver_role == "admin"
    for actor in (BOB, ERIN, VIEWER):
        with pytest.raises(errors.PermissionDenied):
            reg.approve(p.id, actor)
    assert reg.get(p.id).votes == []
    assert reg.approve(p.id, DAVE).state == "applied"


def test_a_policy_may_let_contributors_approve(reg):
    reg.register()
    reg.rule("staging", approvals=1, approver_role="contributor")
    p = reg.promote(1, "staging", actor=ALICE)
    with pytest.raises(errors.PermissionDenied):
        reg.approve(p.id, VIEWER)
    assert reg.approve(p.id, ERIN).state == "applied"


def test_approver_roles_granted_on_one_model(reg):
    reg.register("m")
    reg.register("other")
    reg.rule("staging", approvals=1)
    on_m = Actor("sam", superuser=False, grants={reg.model_id("m"): Role.APPROVER})
    on_other = Actor(
        "olga",
        superuser=False,
        grants={None: Role.CONTRIBUTOR, reg.model_id("other"): Role.APPROVER},
    )
    p = reg.promote(1, "staging", actor=ALICE)
    with pytest.raises(errors.PermissionDenied):
        reg.approve(p.id, on_other)
    assert reg.approve(p.id, on_m).state == "applied"


def test_reject_needs_an_approver_and_a_reason(reg):
    reg.register()
    reg.rule("production", approvals=1)
    p = reg.promote(1, "production", actor=ALICE)
    for reason in ("", "   "):
        with pytest.raises(errors.InvalidInput, match="reason"):
            reg.reject(p.id, BOB, reason=reason)
    with pytest.raises(errors.PermissionDenied):
        reg.reject(p.id, ERIN)
    mark = len(reg.events())
    rejected = reg.reject(p.id, BOB, reason="drift on segment B")
    assert (rejected.state, rejected.decided_by, rejected.decision_reason) == (
        "rejected",
        "bob",
        "drift on segment B",
    )
    assert rejected.votes == [("bob", False)]
    [event] = reg.events()[mark:]
    assert (event.action, event.target, event.reason) == (
        REJECT,
        "m/production:1",
        "drift on segment B",
    )
    assert event.after == {"request_id": p.id, "state": "rejected"}
    with pytest.raises(errors.Conflict, match="already rejected"):
        reg.approve(p.id, CAROL)
    with pytest.raises(errors.Conflict):
        reg.reject(p.id, CAROL)
    assert reg.stages() == {1: "none"}
    # A rejected request is over: asking again opens a new one.
    assert reg.promote(1, "production", actor=ALICE).id != p.id
    assert reg.verify()


def test_the_requester_withdraws_their_request(reg):
    reg.register()
    reg.rule("production", approvals=1)
    p = reg.promote(1, "production", actor=ALICE)
    withdrawn = reg.reject(p.id, ALICE, reason="wrong version")
    assert (withdrawn.state, withdrawn.decided_by) == ("rejected", "alice")


def test_an_approver_who_changes_their_mind_rejects(reg):
    reg.register()
    reg.rule("production", approvals=2)
    p = reg.promote(1, "production", actor=ALICE)
    reg.approve(p.id, BOB)
    rejected = reg.reject(p.id, BOB, reason="found a leak")
    assert (rejected.state, rejected.votes) == ("rejected", [("bob", False)])


def test_gates_are_checked_again_when_the_last_approval_arrives(reg):
    reg.register(metrics={"acc": 0.85})
    reg.rule("production", approvals=1, requires=["metrics.acc >= 0.8"])
    p = reg.promote(1, "production", actor=ALICE)
    assert p.state == "pending"
    reg.rule("production", approvals=1, requires=["metrics.acc >= 0.9"])
    mark = len(reg.events())
    decided = reg.approve(p.id, BOB)
    assert (decided.state, decided.decided_by) == ("refused", "bob")
    assert decided.failed == [
        {
            "criterion": "metrics.acc >= 0.9",
            "passed": False,
            "actual": {"metrics.acc": 0.85},
            "message": "not met: metrics.acc = 0.85",
        }
    ]
    assert reg.stages() == {1: "none"}
    assert reg.history() == []
    assert reg.actions(mark) == [APPROVE, "registry:promotion:refuse"]
    assert reg.get(p.id).state == "refused"


def test_a_refusal_when_the_last_approval_arrives_is_audited(reg):
    reg.register(metrics={"acc": 0.85})
    reg.rule("production", approvals=1, requires=["metrics.acc >= 0.8"])
    p = reg.promote(1, "production", actor=ALICE)
    reg.rule("production", approvals=1, requires=["metrics.acc >= 0.9"])
    mark = len(reg.events())
    assert reg.approve(p.id, BOB).state == "refused"
    assert any((e.after or {}).get("state") == "refused" for e in reg.events()[mark:])


def test_a_rule_asking_for_more_approvals_holds_a_pending_request(reg):
    reg.register()
    reg.rule("production", approvals=1)
    p = reg.promote(1, "production", actor=ALICE)
    reg.rule("production", approvals=2)
    held = reg.approve(p.id, BOB)
    assert (held.state, held.approvals_required) == ("pending", 2)
    assert reg.approve(p.id, CAROL).state == "applied"


def test_security_an_approval_counts_only_while_its_approver_holds_the_role(reg):
    """Issue 18, finding 9: a demoted (or disabled) approver's approval stops counting."""
    reg.register()
    reg.rule("production", approvals=2)
    for name in ("bob", "carol", "dave"):
        reg.run(auth.create_principal, name, actor=ADMIN, role=Role.APPROVER)
    reg.run(auth.create_principal, "sam", actor=ADMIN, role=Role.APPROVER, model="m")
    sam = Actor("sam", superuser=False, grants={reg.model_id("m"): Role.APPROVER})
    p = reg.promote(1, "production", actor=ALICE)

    def view():
        return reg.run(
            lambda s: serialize.promotion_to_dict(lifecycle.get_promotion(s, p.id, actor=ADMIN))
        )

    assert reg.approve(p.id, BOB).state == "pending"
    assert [(a["actor"], a["counts"]) for a in view()["approvals"]] == [("bob", True)]
    reg.run(auth.grant_role, "bob", Role.VIEWER, actor=ADMIN)  # demoted after approving
    assert [(a["actor"], a["counts"]) for a in view()["approvals"]] == [("bob", False)]
    # The second approval arrives: one of two counts, so nothing moves.
    second = reg.approve(p.id, CAROL)
    assert (second.state, second.decided_by) == ("pending", None)
    assert reg.stages() == {1: "none"}
    event = reg.events()[-1]
    assert (event.actor, event.after["approvals"], event.after["not_counted"]) == (
        "carol",
        1,
        ["bob"],
    )
    shown = view()
    assert [(a["actor"], a["counts"]) for a in shown["approvals"]] == [
        ("bob", False),
        ("carol", True),
    ]
    assert "(1 of 2)" in errors.awaiting(shown).message
    # A model-scoped approver counts, until that grant is lowered; a disabled one never does.
    reg.run(auth.grant_role, "carol", Role.CONTRIBUTOR, actor=ADMIN)
    reg.run(lambda s: setattr(auth.get_principal(s, "dave"), "disabled", True))
    assert reg.approve(p.id, DAVE).state == "pending"
    assert reg.approve(p.id, sam).state == "pending"  # sam counts; carol, dave, bob do not
    assert [(a["actor"], a["counts"]) for a in view()["approvals"]] == [
        ("bob", False),
        ("carol", False),
        ("dave", False),
        ("sam", True),
    ]
    reg.run(auth.grant_role, "sam", Role.VIEWER, actor=ADMIN, model="m")
    assert [a["counts"] for a in view()["approvals"]] == [False, False, False, False]
    # Given back the role, an approver's approval counts again; the request completes with
    # two approvers who hold the role when it does (the approval that completes it is new).
    reg.run(auth.grant_role, "bob", Role.APPROVER, actor=ADMIN)
    reg.run(auth.create_principal, "erin2", actor=ADMIN, role=Role.ADMIN)
    done = reg.approve(p.id, _user("erin2", Role.ADMIN))
    assert (done.state, done.decided_by) == ("applied", "erin2")
    assert reg.stages() == {1: "production"}
    assert [a["counts"] for a in view()["approvals"]] == [None] * 5  # decided: the record


def test_a_version_deleted_while_pending_is_refused(reg):
    reg.register()
    reg.register()
    reg.rule("production", approvals=1)
    p = reg.promote(2, "production", actor=ALICE)
    reg.run(versions.delete_version, "m:2", actor=ADMIN, reason="bad labels")
    decided = reg.approve(p.id, BOB)
    assert decided.state == "refused"
    assert decided.failed == [
        {
            "criterion": "version exists",
            "passed": False,
            "actual": {"version": 2},
            "message": "version 2 was deleted",
        }
    ]
    assert reg.stages() == {1: "none"}


def test_a_pending_request_whose_expected_holder_moved_is_refused(reg):
    reg.rule("production", approvals=1)
    for name, expected in (("a", 0), ("b", 1)):
        for _ in range(3):
            reg.register(name)
        if expected:
            reg.run(policies.set_rule, name, "production", RuleSpec(), actor=ADMIN)
            reg.promote(1, "production", name=name)
            reg.run(policies.delete_rule, name, "production", actor=ADMIN)
        waiting = reg.promote(2, "production", actor=ALICE, name=name, expect_current=expected)
        faster = reg.promote(3, "production", actor=ERIN, name=name, expect_current=expected)
        assert waiting.expect_current == expected
        assert reg.approve(faster.id, BOB).state == "applied"
        decided = reg.approve(waiting.id, BOB)
        assert decided.state == "refused"
        assert decided.failed == [
            {
                "criterion": f"production held by {expected or 'nothing'}",
                "passed": False,
                "actual": {"current": 3},
                "message": "someone moved it while the request waited",
            }
        ]
        assert reg.holder("production", name=name) == 3
        assert reg.stages(name)[2] == "none"


def test_reading_and_listing_requests(reg):
    reg.register("m")
    reg.register("other")
    reg.rule("staging", approvals=1)
    a = reg.promote(1, "staging", actor=ALICE)
    b = reg.promote(1, "staging", actor=ALICE, name="other")
    reg.reject(b.id, BOB)
    on_m = Actor("rita", superuser=False, grants={reg.model_id("m"): Role.VIEWER})
    assert reg.get(a.id, actor=on_m).state == "pending"
    with pytest.raises(errors.PromotionNotFound):  # another model's request: absent to rita
        reg.get(b.id, actor=on_m)
    with transaction(reg.engine, write=False) as session:

        def ids(**kwargs):
            return [p.id for p in lifecycle.list_promotions(session, **kwargs)]

        assert ids(actor=VIEWER) == [b.id, a.id]
        assert ids(actor=VIEWER, state="rejected") == [b.id]
        assert ids(actor=VIEWER, name="m") == [a.id]
        assert ids(actor=on_m, name="m", state="pending") == [a.id]
        assert ids(actor=VIEWER, page_size=1) == [b.id]
        first = lifecycle.list_promotions(session, actor=VIEWER, page_size=1)
        rest = lifecycle.list_promotions(
            session, actor=VIEWER, page_size=1, page_token=first.next_page_token
        )
        assert [p.id for p in rest] == [a.id]
        assert rest.next_page_token is None
        with pytest.raises(errors.InvalidInput):
            lifecycle.list_promotions(
                session, actor=VIEWER, state="pending", page_token=first.next_page_token
            )
        with pytest.raises(errors.InvalidInput, match="unknown state"):
            ids(actor=VIEWER, state="approved")
        with pytest.raises(errors.ModelNotFound):
            ids(actor=on_m, name="other")


def test_a_model_scoped_reader_lists_the_requests_it_may_read(reg):
    reg.register("m")
    reg.register("other")
    reg.rule("staging", approvals=1)
    a = reg.promote(1, "staging", actor=ALICE)
    reg.promote(1, "staging", actor=ALICE, name="other")
    on_m = Actor("rita", superuser=False, grants={reg.model_id("m"): Role.VIEWER})
    with transaction(reg.engine, write=False) as session:
        assert [p.id for p in lifecycle.list_promotions(session, actor=on_m)] == [a.id]


# --------------------------------------------------------------------------------------------
# Compare-and-set: expect_current on every move (0 means "nothing holds it")


def test_expect_current_on_promote(reg):
    for _ in range(3):
        reg.register()
    before = reg.counts()
    with pytest.raises(errors.ConcurrentChange) as info:
        reg.promote(1, "production", expect_current=2)
    assert info.value.detail == {"expected": 2, "current": 0}
    assert reg.counts() == before
    assert reg.promote(1, "production", expect_current=0).state == "applied"
    before = reg.counts()
    for wrong in (0, 2, 3):
        with pytest.raises(errors.ConcurrentChange) as info:
            reg.promote(2, "production", expect_current=wrong)
        assert info.value.detail == {"expected": wrong, "current": 1}
    assert reg.counts() == before
    p = reg.promote(2, "production", expect_current=1)
    assert (p.state, p.from_version, p.expect_current) == ("applied", 1, 1)
    assert reg.stages() == {1: "archived", 2: "production", 3: "none"}


def test_expect_current_on_aliases(reg):
    reg.register()
    reg.register()
    assert reg.set_alias("champion", 1, expect_current=0).version == 1
    for wrong in (0, 2):
        with pytest.raises(errors.ConcurrentChange):
            reg.set_alias("champion", 2, expect_current=wrong)
    assert reg.holder("@champion") == 1
    assert reg.set_alias("champion", 2, expect_current=1).version == 2
    with pytest.raises(errors.ConcurrentChange):
        reg.run(lifecycle.delete_alias, "m", "champion", actor=ADMIN, expect_current=1)
    assert reg.run(lifecycle.delete_alias, "m", "champion", actor=ADMIN, expect_current=2) == 2
    with pytest.raises(errors.AliasNotFound):
        reg.run(lifecycle.delete_alias, "m", "champion", actor=ADMIN)
    assert reg.holder("@champion") is None


def test_expect_current_on_rollback(reg):
    reg.register()
    reg.register()
    reg.promote(1, "production")
    reg.promote(2, "production")
    before = reg.counts()
    for wrong in (0, 1):
        with pytest.raises(errors.ConcurrentChange):
            reg.rollback(actor=BOB, expect_current=wrong)
    assert reg.counts() == before
    assert reg.rollback(actor=BOB, expect_current=2)["to_version"] == 1


# --------------------------------------------------------------------------------------------
# Production replaces its holder


def test_production_replaces_and_archives_the_previous_version(reg):
    reg.register()
    reg.register()
    first = reg.promote(1, "production")
    mark = len(reg.events())
    second = reg.promote(2, "production", reason="better recall")
    assert second.from_version == 1
    assert reg.stages() == {1: "archived", 2: "production"}
    history = reg.history()
    assert moves(history[:1]) == [
        ("stage", "production", "none", None, 1, "promote", str(first.id))
    ]
    assert sorted(moves(history[1:])) == [
        ("stage", "archived", "production", None, 1, "replaced", str(second.id)),
        ("stage", "production", "none", None, 2, "promote", str(second.id)),
    ]
    [replaced] = entries(history, action="replaced")
    assert replaced.reason == "replaced by version 2"
    stage_events = [e for e in reg.events()[mark:] if e.action == STAGE]
    assert sorted((e.target, e.before["stage"], e.after["stage"]) for e in stage_events) == [
        ("m:1", "production", "archived"),
        ("m:2", "none", "production"),
    ]
    assert reg.verify()


def test_previous_to_decides_where_the_replaced_version_goes(reg):
    for name, previous_to in (("a", "staging"), ("b", "none")):
        reg.register(name)
        reg.register(name)
        reg.run(
            policies.set_rule,
            name,
            "production",
            RuleSpec(previous_to=previous_to),
            actor=ADMIN,
        )
        reg.promote(1, "production", name=name)
        reg.promote(2, "production", name=name)
        assert reg.stages(name) == {1: previous_to, 2: "production"}
        [replaced] = entries(reg.history(name), action="replaced")
        assert (replaced.key, replaced.from_stage, replaced.to_version) == (
            previous_to,
            "production",
            1,
        )


def test_the_database_refuses_a_second_production_row(reg):
    # SECURITY.md rule 9, below the service layer: even a raw UPDATE cannot make two.
    reg.register()
    reg.register()
    reg.register("other")
    reg.promote(1, "production")
    second = text(
        "UPDATE model_versions SET stage = 'production' WHERE number = :n "
        "AND model_id = (SELECT id FROM models WHERE normalized_name = :name)"
    )
    with pytest.raises(IntegrityError), transaction(reg.engine, write=True) as session:
        session.execute(second, {"n": 2, "name": "m"})
    assert reg.stages() == {1: "production", 2: "none"}
    # Per model: another model has its own production version; archived rows are unlimited.
    with transaction(reg.engine, write=True) as session:
        session.execute(second, {"n": 1, "name": "other"})
        session.execute(text("UPDATE model_versions SET stage = 'archived' WHERE number = 2"))
        session.execute(
            text(
                "UPDATE model_versions SET stage = 'archived' WHERE model_id = "
                "(SELECT id FROM models WHERE normalized_name = 'm') AND number = 1"
            )
        )
    assert reg.stages("other") == {1: "production"}
    assert reg.stages() == {1: "archived", 2: "archived"}
    with transaction(reg.engine, write=True) as session:
        session.execute(second, {"n": 2, "name": "m"})
    assert reg.stages() == {1: "archived", 2: "production"}


# --------------------------------------------------------------------------------------------
# Rollback


def test_rollback_puts_back_the_previous_holder(reg):
    reg.register()
    reg.register()
    reg.promote(1, "production")
    reg.promote(2, "production")
    mark = len(reg.events())
    result = reg.rollback(actor=BOB, reason="latency regression")
    assert result == {"name": "m", "target": "production", "from_version": 2, "to_version": 1}
    assert reg.stages() == {1: "production", 2: "archived"}
    rolled = entries(reg.history(), action="rollback")
    assert sorted(moves(rolled)) == [
        ("stage", "archived", "production", None, 2, "rollback", None),
        ("stage", "production", "archived", None, 1, "rollback", None),
    ]
    assert {(e.actor, e.reason) for e in rolled} == {("bob", "latency regression")}
    events = reg.events()[mark:]
    assert [e.action for e in events] == [STAGE, STAGE, ROLLBACK]
    assert (events[-1].target, events[-1].before, events[-1].after, events[-1].reason) == (
        "m/production",
        {"version": 2},
        {"version": 1},
        "latency regression",
    )
    # A second rollback never reinstates what the first removed; naming it with ``to`` does.
    before = reg.counts()
    with pytest.raises(errors.Conflict, match="nothing to roll back to") as info:
        reg.rollback(actor=BOB)
    assert info.value.detail == {"current": 1, "rolled_back": [2]}
    assert "--to" in info.value.message
    assert reg.counts() == before
    assert reg.rollback(actor=BOB, to=2)["to_version"] == 2
    assert reg.stages() == {1: "archived", 2: "production"}
    assert reg.verify()


def test_successive_rollbacks_step_further_back(reg):
    for _ in range(3):
        reg.register()
    for number in (1, 2, 3):
        reg.promote(number, "production")
    assert reg.rollback(actor=BOB)["to_version"] == 2
    assert reg.rollback(actor=BOB)["to_version"] == 1
    assert reg.stages() == {1: "production", 2: "archived", 3: "archived"}
    # Promoting a rolled-back version again makes it an ordinary earlier holder once more.
    reg.promote(3, "production")
    assert reg.rollback(actor=BOB)["to_version"] == 1
    # The same for an alias.
    for number in (1, 2, 3):
        reg.set_alias("champion", number)
    assert reg.rollback(actor=BOB, target="@champion")["to_version"] == 2
    assert reg.rollback(actor=BOB, target="@champion")["to_version"] == 1
    with pytest.raises(errors.Conflict) as info:
        reg.rollback(actor=BOB, target="@champion")
    assert info.value.detail["rolled_back"] == [2, 3]
    assert reg.holder("@champion") == 1


def test_rollback_to_an_earlier_holder(reg):
    for _ in range(4):
        reg.register()
    for number in (1, 2, 3):
        reg.promote(number, "production")
    before = reg.counts()
    with pytest.raises(errors.InvalidInput, match="never held") as info:
        reg.rollback(actor=BOB, to=4)
    assert info.value.detail == {"to": 4, "earlier": [2, 1]}
    for bad in (3, 0, True, 99):
        with pytest.raises(errors.InvalidInput):
            reg.rollback(actor=BOB, to=bad)
    assert reg.counts() == before
    result = reg.rollback(actor=BOB, to=1)
    assert (result["from_version"], result["to_version"]) == (3, 1)
    assert reg.stages() == {1: "production", 2: "archived", 3: "archived", 4: "none"}


def test_nothing_to_roll_back(reg):
    reg.register()
    reg.register()
    with pytest.raises(errors.Conflict, match="nothing holds"):
        reg.rollback(actor=BOB)
    reg.promote(1, "production")
    reg.promote(2, "staging")
    before = reg.counts()
    for target in ("production", "staging"):
        with pytest.raises(errors.Conflict, match="nothing to roll back to") as info:
            reg.rollback(actor=BOB, target=target)
        assert info.value.detail["rolled_back"] == []
    assert reg.counts() == before


def test_rollback_needs_an_approver_and_a_reason(reg):
    reg.register()
    reg.register()
    reg.promote(1, "production")
    reg.promote(2, "production")
    before = reg.counts()
    with pytest.raises(errors.PermissionDenied):
        reg.rollback(actor=ALICE)
    for reason in ("", "  \t"):
        with pytest.raises(errors.InvalidInput, match="reason"):
            reg.rollback(actor=BOB, reason=reason)
    with pytest.raises(errors.InvalidInput):
        reg.rollback(actor=BOB, target="prod")
    assert reg.counts() == before
    reg.rule("production", approver_role="admin")
    with pytest.raises(errors.PermissionDenied, match="admin"):
        reg.rollback(actor=BOB)
    assert reg.rollback(actor=DAVE)["to_version"] == 1


def test_rolling_back_staging_never_takes_the_production_version(reg):
    reg.register()
    reg.register()
    reg.rule("production", approvals=1, approver_role="admin")
    reg.promote(1, "staging", actor=ALICE)
    reg.approve(reg.promote(1, "production", actor=ALICE).id, DAVE)
    reg.promote(2, "staging", actor=ALICE)
    assert reg.stages() == {1: "production", 2: "staging"}
    with contextlib.suppress(errors.RegistryError):
        reg.rollback(actor=BOB, target="staging")  # refusing would be fine too
    assert reg.holder("production") == 1


def test_rollback_steps_past_a_deleted_version(reg):
    for _ in range(3):
        reg.register()
    for number in (1, 2, 3):
        reg.promote(number, "production")
    with pytest.raises(errors.Conflict, match="in production"):
        reg.run(versions.delete_version, "m:3", actor=ADMIN, reason="leak")
    reg.run(versions.delete_version, "m:2", actor=ADMIN, reason="leak")
    # A deleted earlier holder cannot come back: the rollback steps past it, and says where to.
    with pytest.raises(errors.InvalidInput, match="never held"):
        reg.rollback(actor=BOB, to=2)
    assert reg.rollback(actor=BOB)["to_version"] == 1


def test_rollback_of_a_protected_alias(reg):
    reg.register()
    reg.register()
    reg.rule("@champion", approver_role="admin")
    first = reg.set_alias("champion", 1, actor=ALICE)
    second = reg.set_alias("champion", 2, actor=ALICE)
    assert (first.state, second.state) == ("applied", "applied")
    assert reg.holder("@champion") == 2
    with pytest.raises(errors.PermissionDenied, match="admin"):
        reg.rollback(actor=BOB, target="@champion")
    mark = len(reg.events())
    result = reg.rollback(actor=DAVE, target="@champion", reason="bad A/B result")
    assert result == {"name": "m", "target": "@champion", "from_version": 2, "to_version": 1}
    assert reg.holder("@champion") == 1
    assert reg.stages() == {1: "none", 2: "none"}  # an alias rollback moves no stage
    assert moves(reg.history()) == [
        ("alias", "champion", None, None, 1, "promote", str(first.id)),
        ("alias", "champion", None, 1, 2, "promote", str(second.id)),
        ("alias", "champion", None, 2, 1, "rollback", None),
    ]
    events = reg.events()[mark:]
    assert [e.action for e in events] == [ALIAS_SET, ROLLBACK]
    assert (events[1].target, events[1].before, events[1].after) == (
        "m@champion",
        {"version": 2},
        {"version": 1},
    )
    assert reg.verify()


# --------------------------------------------------------------------------------------------
# Protected aliases


def test_a_protected_alias_moves_only_through_a_promotion(reg):
    reg.register(metrics={"acc": 0.9})
    reg.register(metrics={"acc": 0.5})
    reg.rule("@champion", approvals=1, requires=["metrics.acc >= 0.8"])
    pending = reg.set_alias("champion", 1, actor=ALICE, reason="A/B winner")
    assert (pending.state, pending.target) == ("pending", "@champion")
    assert reg.holder("@champion") is None
    refused = reg.set_alias("champion", 2, actor=ALICE)
    assert refused.state == "refused"
    assert refused.failed[0]["actual"] == {"metrics.acc": 0.5}
    assert reg.approve(pending.id, BOB).state == "applied"
    assert reg.holder("@champion") == 1
    assert moves(reg.history()) == [
        ("alias", "champion", None, None, 1, "promote", str(pending.id))
    ]
    set_event = reg.events()[-1]
    assert (set_event.action, set_event.after) == (
        ALIAS_SET,
        {"version": 1, "request_id": str(pending.id)},
    )
    # An alias without a rule moves directly.
    assert reg.set_alias("challenger", 2, actor=ALICE).version == 2
    assert entries(reg.history(), key="challenger")[0].action == "move"


def test_deleting_a_protected_alias_needs_the_approver_role(reg):
    reg.register()
    reg.set_alias("champion", 1)
    reg.rule("@champion", approvals=1)
    before = reg.counts()
    with pytest.raises(errors.PermissionDenied, match="protected"):
        reg.run(lifecycle.delete_alias, "m", "champion", actor=ALICE)
    with pytest.raises(errors.PermissionDenied):
        reg.run(lifecycle.delete_alias, "m", "champion", actor=VIEWER)
    assert reg.counts() == before
    assert reg.run(lifecycle.delete_alias, "m", "champion", actor=BOB, reason="retired") == 1
    assert reg.holder("@champion") is None
    assert reg.events()[-1].action == ALIAS_DELETE
    # An unprotected alias is a contributor's to remove.
    reg.set_alias("challenger", 1)
    assert reg.run(lifecycle.delete_alias, "m", "challenger", actor=ALICE) == 1


# --------------------------------------------------------------------------------------------
# Which version held a stage or alias at a given moment


def test_holder_at_and_version_at_replay_the_history(reg):
    for _ in range(3):
        reg.register()
    reg.promote(1, "production")
    reg.set_alias("champion", 1)
    reg.promote(2, "production")
    reg.set_alias("champion", 2)
    reg.rollback(actor=BOB)
    reg.run(lifecycle.delete_alias, "m", "champion", actor=ADMIN)
    history = reg.history()
    [p1] = entries(history, action="promote", to_version=1)
    # A move that replaces a holder writes two entries: the one moved out comes first.
    [out1] = entries(history, action="replaced")
    [p2] = entries(history, action="promote", to_version=2)
    out2, back = entries(history, action="rollback")
    assert (out2.to_version, back.to_version) == (2, 1)
    a1, a2, gone = entries(history, kind="alias")
    us = timedelta(microseconds=1)

    def holder(target, at):
        return reg.run(lifecycle.holder_at, "m", target, at, actor=VIEWER)

    assert holder("production", p1.at - us) is None
    assert holder("production", p1.at) == 1
    assert holder("production", out1.at - us) == 1
    assert holder("production", p2.at) == 2
    assert holder("production", out2.at - us) == 2
    assert holder("production", back.at) == 1
    assert holder("Production", utcnow()) == 1
    assert holder("archived", utcnow()) == 2
    assert holder("@champion", a1.at - us) is None
    assert holder("@champion", a1.at) == 1
    assert holder("@champion", a2.at) == 2
    assert holder("@champion", gone.at - us) == 2
    assert holder("@champion", gone.at) is None

    def version_at(ref, at):
        return reg.run(lambda s: lifecycle.version_at(s, ref, at, actor=VIEWER).number)

    assert version_at("m/production", p2.at) == 2
    assert version_at("models:/m/production", back.at) == 1
    assert version_at("m@champion", a1.at) == 1
    with pytest.raises(errors.NotFound, match="nothing held"):
        version_at("m/production", p1.at - us)
    with pytest.raises(errors.NotFound):
        version_at("m@champion", gone.at)
    for ref in ("m:1", "m/latest"):
        with pytest.raises(errors.InvalidInput, match="stage or alias"):
            version_at(ref, p2.at)
    with pytest.raises(errors.InvalidReference):
        version_at("m", p2.at)
    with pytest.raises(errors.InvalidInput):
        holder("latest", p2.at)
    with pytest.raises(errors.ModelNotFound):
        version_at("ghost/production", p2.at)

    # Version 2 held production then; once deleted, the answer says so.
    reg.run(versions.delete_version, "m:2", actor=ADMIN, reason="leak")
    assert holder("production", p2.at) == 2
    with pytest.raises(errors.VersionNotFound, match="since been deleted"):
        version_at("m/production", p2.at)


# --------------------------------------------------------------------------------------------
# The whole story in the audit log


def test_the_audit_trail_of_a_governed_release(reg):
    reg.register()
    reg.register()
    reg.rule("production", approvals=1, from_stages=["staging"])
    mark = len(reg.events())
    reg.promote(1, "staging", actor=ALICE)
    refused = reg.promote(2, "production", actor=ALICE)
    p1 = reg.promote(1, "production", actor=ALICE)
    reg.approve(p1.id, BOB)
    reg.promote(2, "staging", actor=ALICE)
    p2 = reg.promote(2, "production", actor=ALICE)
    reg.approve(p2.id, CAROL)
    reg.rollback(actor=BOB)
    assert reg.actions(mark) == [
        REQUEST,
        STAGE,  # 1 -> staging, no rule
        REQUEST,  # 2 -> production refused (from none)
        REQUEST,
        APPROVE,
        STAGE,  # 1 -> production
        REQUEST,
        STAGE,  # 2 -> staging
        REQUEST,
        APPROVE,
        STAGE,  # 1 -> archived (replaced)
        STAGE,  # 2 -> production
        STAGE,  # 2 -> archived (rollback)
        STAGE,  # 1 -> production (rollback)
        ROLLBACK,
    ]
    assert reg.get(refused.id).state == "refused"
    assert [e.action for e in reg.history()] == [
        "promote",
        "promote",
        "promote",
        "replaced",
        "promote",
        "rollback",
        "rollback",
    ]
    assert reg.stages() == {1: "production", 2: "archived"}
    assert reg.verify()


# --------------------------------------------------------------------------------------------
# Concurrency: SECURITY.md rule 9 with real concurrent transactions on both databases

WRITERS = 8


def run_concurrently(url, jobs):
    """Run each job(engine) in its own thread with its own engine, all released at once.

    Returns ``("ok", value)`` or ``("error", exception)`` per job, in order.
    """
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def worker(i, job):
        engine = make_engine(url)
        try:
            barrier.wait(timeout=60)
            results[i] = ("ok", job(engine))
        except Exception as exc:  # reported by the test, never lost in the thread
            results[i] = ("error", exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    return results


def promote_job(number, **kwargs):
    def job(engine):
        with transaction(engine, write=True) as session:
            return snapshot(
                lifecycle.promote(session, "m", number, "production", actor=ADMIN, **kwargs)
            )

    return job


def assert_one_production_and_a_consistent_history(reg, applied):
    """Exactly one production version, every replaced one archived, the chain unbroken."""
    stages = reg.stages()
    assert list(stages.values()).count("production") == 1
    applied = sorted(applied, key=lambda p: p.id)
    final = applied[-1].number
    assert stages[final] == "production"
    # Each applied request replaced exactly the holder left by the one committed before it.
    assert [p.from_version for p in applied] == [None] + [p.number for p in applied[:-1]]
    history = reg.history()
    replaced = entries(history, action="replaced")
    assert sorted((e.to_version, e.request_id) for e in replaced) == sorted(
        (prev.number, str(p.id)) for prev, p in itertools.pairwise(applied)
    )
    assert all((e.key, e.from_stage) == ("archived", "production") for e in replaced)
    for number, stage in stages.items():
        if number != final and any(p.number == number for p in applied):
            assert stage == "archived"
    assert len(entries(history, action="promote")) == len(applied)
    assert reg.verify()


def test_concurrent_promotions_leave_exactly_one_production_version(reg):
    for _ in range(WRITERS):
        reg.register()
    results = run_concurrently(reg.url, [promote_job(n) for n in range(1, WRITERS + 1)])
    assert [kind for kind, _ in results] == ["ok"] * WRITERS, results
    applied = [value for _, value in results]
    assert all(p.state == "applied" for p in applied)
    assert_one_production_and_a_consistent_history(reg, applied)
    assert sorted(reg.stages().values()) == ["archived"] * (WRITERS - 1) + ["production"]


def test_concurrent_compare_and_set_promotions(reg):
    # Each writer reads the holder, then promotes expecting it, retrying on ConcurrentChange:
    # every writer gets through once, and no move is ever based on a stale holder.
    for _ in range(WRITERS):
        reg.register()
    conflicts = []
    lock = threading.Lock()

    def cas_job(number):
        def job(engine):
            for _ in range(200):
                with transaction(engine, write=False) as session:
                    model = models.get_model(session, "m", actor=None)
                    holder = lifecycle.current_holder(session, model, "production") or 0
                try:
                    return promote_job(number, expect_current=holder)(engine)
                except errors.ConcurrentChange as exc:
                    with lock:
                        conflicts.append(exc)
            raise AssertionError("never got through")

        return job

    results = run_concurrently(reg.url, [cas_job(n) for n in range(1, WRITERS + 1)])
    assert [kind for kind, _ in results] == ["ok"] * WRITERS, results
    applied = [value for _, value in results]
    assert all(p.state == "applied" and p.expect_current == (p.from_version or 0) for p in applied)
    assert all(isinstance(c, errors.ConcurrentChange) for c in conflicts)
    assert_one_production_and_a_consistent_history(reg, applied)


def test_concurrent_single_shot_compare_and_set(reg):
    # Everyone expects "nothing": exactly one wins, every other writer gets ConcurrentChange.
    for _ in range(WRITERS):
        reg.register()
    results = run_concurrently(
        reg.url, [promote_job(n, expect_current=0) for n in range(1, WRITERS + 1)]
    )
    winners = [value for kind, value in results if kind == "ok"]
    losers = [value for kind, value in results if kind == "error"]
    assert len(winners) == 1, results
    assert all(isinstance(e, errors.ConcurrentChange) for e in losers), losers
    assert reg.stages()[winners[0].number] == "production"
    assert list(reg.stages().values()).count("production") == 1
    assert reg.counts()[0][0] == 1  # a compare-and-set refusal stores no request
    assert reg.verify()


def test_concurrent_approvals_apply_a_request_once(reg):
    reg.register()
    reg.register()
    reg.promote(1, "production")
    reg.rule("production", approvals=1)
    p = reg.promote(2, "production", actor=ALICE)
    approvers = [_user(f"approver{i}", Role.APPROVER) for i in range(6)]

    def approve_job(actor):
        def job(engine):
            with transaction(engine, write=True) as session:
                return snapshot(lifecycle.approve(session, p.id, actor=actor))

        return job

    results = run_concurrently(reg.url, [approve_job(a) for a in approvers])
    winners = [value for kind, value in results if kind == "ok"]
    losers = [value for kind, value in results if kind == "error"]
    assert [w.state for w in winners] == ["applied"], results
    assert all(isinstance(e, errors.Conflict) for e in losers), losers
    assert reg.stages() == {1: "archived", 2: "production"}
    assert len(reg.get(p.id).votes) == 1
    assert len(entries(reg.history(), action="promote", to_version=2)) == 1
    assert reg.verify()


def test_concurrent_identical_requests_make_one_pending_request(reg):
    reg.register()
    reg.rule("production", approvals=2)
    requesters = [_user(f"ci{i}", Role.CONTRIBUTOR) for i in range(6)]

    def request_job(actor):
        def job(engine):
            with transaction(engine, write=True) as session:
                return lifecycle.promote(session, "m", 1, "production", actor=actor).id

        return job

    results = run_concurrently(reg.url, [request_job(a) for a in requesters])
    assert [kind for kind, _ in results] == ["ok"] * len(requesters), results
    assert len({value for _, value in results}) == 1
    assert reg.counts()[0][0] == 1


# --------------------------------------------------------------------------------------------
# Regressions from the adversarial review


def test_an_approval_never_takes_a_version_out_of_production(reg):
    reg.register()
    reg.rule("staging", approvals=1, approver_role="contributor")
    request = reg.promote(1, "staging", actor=ALICE)
    reg.promote(1, "production")  # it reached production while the request waited
    decided = reg.approve(request.id, ERIN)
    assert decided.state == "refused"
    assert decided.failed[-1]["criterion"] == "not in production"
    assert reg.stages() == {1: "production"}


def test_a_contributor_may_point_an_alias_at_the_production_version(reg):
    reg.register()
    reg.promote(1, "production")
    assert reg.promote(1, "@champion", actor=ALICE).state == "applied"
    assert reg.holder("@champion") == 1
    with pytest.raises(errors.PermissionDenied, match="out of production"):
        reg.promote(1, "staging", actor=ALICE)


def test_deleting_a_version_closes_its_stage_history(reg):
    for _ in range(2):
        reg.register()
    reg.promote(1, "staging")
    reg.promote(2, "staging")
    reg.run(versions.delete_version, "m:2", actor=ADMIN, reason="bad data")
    now = utcnow()
    assert reg.run(lifecycle.holder_at, "m", "staging", now, actor=VIEWER) == 1
    deleted = reg.history()[-1]
    assert (deleted.to_version, deleted.from_stage, deleted.key) == (2, "staging", "none")


def test_a_protected_alias_cannot_be_removed_by_deleting_its_version(reg):
    reg.register()
    reg.register()
    reg.rule("@champion", approver_role="admin")
    reg.set_alias("champion", 2)
    with pytest.raises(errors.PermissionDenied, match="protected alias @champion"):
        reg.run(versions.delete_version, "m:2", actor=BOB, reason="cleanup")
    assert reg.holder("@champion") == 2
    reg.run(versions.delete_version, "m:2", actor=DAVE, reason="cleanup")
    assert reg.holder("@champion") is None


def test_the_moment_a_history_line_prints_answers_the_state_after_that_move(reg):
    reg.register()
    reg.register()
    reg.promote(1, "production")
    reg.promote(2, "production")
    reg.rollback(actor=BOB)
    for entry in reg.history():
        holder = reg.run(lifecycle.holder_at, "m", "production", entry.at, actor=VIEWER)
        assert holder is not None, entry
    replaced = next(e for e in reg.history() if e.action == "replaced")
    assert reg.run(lifecycle.holder_at, "m", "production", replaced.at, actor=VIEWER) == 2
    assert (
        reg.run(
            lifecycle.holder_at,
            "m",
            "production",
            replaced.at - timedelta(microseconds=1),
            actor=VIEWER,
        )
        == 1
    )


@pytest.mark.parametrize("bad", [0, -1, 2**31, 10**20, True])
def test_promotion_ids_out_of_range_are_invalid_input(reg, bad):
    with pytest.raises(errors.InvalidInput):
        reg.get(bad)


def test_gates_nested_too_deeply_are_refused_when_written(reg):
    deep = "NOT " * 40 + "version = 1"
    with pytest.raises(errors.InvalidQuery, match="levels"):
        reg.rule("staging", requires=[deep])
    assert reg.run(policies.get_rules, "*", actor=ADMIN) == {}


def test_a_rule_cannot_require_coming_from_its_own_stage(reg):
    with pytest.raises(errors.InvalidInput, match="nothing could pass"):
        reg.rule("production", from_stages=["production"])


@pytest.mark.parametrize("target", ["archived", "none"])
def test_rollback_applies_to_active_stages_and_aliases_only(reg, target):
    with pytest.raises(errors.InvalidInput, match="rollback applies"):
        reg.rollback(actor=BOB, target=target)


def test_history_keeps_the_newest_entries(reg):
    reg.register()
    reg.register()
    for number in (1, 2, 1, 2):
        reg.set_alias("champion", number)
    newest = reg.run(lifecycle.history, "m", actor=VIEWER, limit=2)
    assert [(h.from_version, h.to_version) for h in newest] == [(2, 1), (1, 2)]

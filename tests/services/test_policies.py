"""Policy rules called directly, as the doors do: validation, scopes, precedence, audit, evaluate.

A rule is checked when it is written (a bad gate never waits for a promotion to fail), a model's
rule for a target replaces the default's rule for that target as a whole, and every change of a
policy is an audited admin action. Behaviour runs on SQLite and PostgreSQL; validation, which
never reaches the rows, on SQLite only.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from modelreg import errors
from modelreg.db.session import transaction
from modelreg.db.tables import AuditEvent, PolicyRule, Role, Version, VersionStatus
from modelreg.services import audit, auth, lifecycle, models, policies, versions
from modelreg.services.actor import Actor
from modelreg.services.policies import RuleSpec
from service_db import ServiceRegistry, engine_for, migrated_template

ADMIN = Actor("admin")  # the registry owner acting locally (superuser)
DAVE = Actor("dave", superuser=False, grants={None: Role.ADMIN})
BOB = Actor("bob", superuser=False, grants={None: Role.APPROVER})
ALICE = Actor("alice", superuser=False, grants={None: Role.CONTRIBUTOR})

POLICY_EVENTS = ("registry:policy:set", "registry:policy:delete")


# --------------------------------------------------------------------------------------------
# Fixtures: a migrated SQLite file is copied rather than migrated again for every test.


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory):
    return migrated_template(tmp_path_factory.mktemp("policies-template"))


@pytest.fixture
def reg(db_url, sqlite_template):
    eng = engine_for(db_url, sqlite_template)
    yield Reg(eng)
    eng.dispose()


@pytest.fixture
def sqlite_reg(tmp_path, sqlite_template):
    eng = engine_for(f"sqlite:///{tmp_path / 'registry.db'}", sqlite_template)
    yield Reg(eng)
    eng.dispose()


class Reg(ServiceRegistry):
    """The shared shortcuts, plus the policies' own."""

    def set(self, scope, target, *, actor=ADMIN, **spec):
        def call(session):
            row = policies.set_rule(session, scope, target, RuleSpec(**spec), actor=actor)
            return SimpleNamespace(scope=row.scope, target=row.target, **policies.rule_to_dict(row))

        return self.run(call)

    def rules(self):
        with transaction(self.engine, write=False) as session:
            return policies.list_scopes(session, actor=ADMIN)

    def effective(self, name, target):
        def call(session):
            model = models.get_model(session, name, actor=None)
            rule = policies.effective_rule(session, model, target)
            return None if rule is None else (rule.scope, policies.rule_to_dict(rule))

        return self.run(call)

    def events(self):
        with transaction(self.engine, write=False) as session:
            return [
                SimpleNamespace(
                    action=e.action,
                    actor=e.actor,
                    target=e.target,
                    model_key=e.model_key,
                    before=e.before,
                    after=e.after,
                )
                for e in audit.list_events(session, actor=ADMIN, limit=10_000)
            ]

    def policy_events(self):
        return [e for e in self.events() if e.action in POLICY_EVENTS]

    def counts(self):
        with transaction(self.engine, write=False) as session:
            return tuple(
                session.scalar(select(func.count()).select_from(t))
                for t in (PolicyRule, AuditEvent)
            )

    def verify(self):
        with transaction(self.engine, write=False) as session:
            return audit.verify(session, actor=ADMIN).ok


def evaluate(reg, target, ref="m:1"):
    """The results of evaluating version ``ref`` against its effective rule for ``target``."""

    def call(session):
        version = versions.resolve(session, ref)
        found = policies.effective_rule(session, version.model, target)
        return policies.evaluate(session, version, found)

    return reg.run(call)


def rule(**overrides):
    """A rule's JSON shape with the defaults filled in."""
    base = {
        "requires": [],
        "from_stages": [],
        "required_tags": {},
        "approvals": 0,
        "approver_role": "approver",
        "previous_to": None,
    }
    return {**base, **overrides}


# --------------------------------------------------------------------------------------------
# Validation: a rule is compiled and checked when it is written.


BAD_RULES = [
    (
        "gate missing value",
        "production",
        {"requires": ["metrics.acc >="]},
        errors.InvalidQuery,
        14,
    ),
    (
        "gate dangling AND",
        "production",
        {"requires": ["metrics.acc >= 0.8 AND"]},
        errors.InvalidQuery,
        22,
    ),
    (
        "gate unclosed paren",
        "production",
        {"requires": ["metrics.acc >= 0.8 OR (tags.x = 'y'"]},
        errors.InvalidQuery,
        35,
    ),
    ("gate bad operator", "staging", {"requires": ["metrics.acc >> 1"]}, errors.InvalidQuery, 13),
    (
        "gate text for a metric",
        "staging",
        {"requires": ["metrics.acc >= 'high'"]},
        errors.InvalidQuery,
        12,
    ),
    ("gate unknown field", "production", {"requires": ["colour = 'red'"]}, errors.InvalidQuery, 0),
    (
        "gate unknown stage value",
        "production",
        {"requires": ["stage = 'everywhere'"]},
        errors.InvalidQuery,
        6,
    ),
    (
        "gate with ORDER BY",
        "production",
        {"requires": ["metrics.acc >= 0.8 ORDER BY metrics.acc"]},
        errors.InvalidQuery,
        0,
    ),
    (
        "gate only ORDER BY",
        "production",
        {"requires": ["ORDER BY metrics.acc"]},
        errors.InvalidQuery,
        0,
    ),
    ("empty gate", "production", {"requires": [""]}, errors.InvalidQuery, 0),
    ("blank gate", "production", {"requires": ["   "]}, errors.InvalidQuery, 0),
    ("gate NUL", "production", {"requires": ["name = 'a\x00'"]}, errors.InvalidInput, None),
    ("gate too long", "production", {"requires": ["x" * 1001]}, errors.InvalidInput, None),
    (
        "too many gates",
        "production",
        {"requires": ["metrics.acc > 0"] * 51},
        errors.InvalidInput,
        None,
    ),
    ("approvals negative", "production", {"approvals": -1}, errors.InvalidInput, None),
    ("approvals above 10", "production", {"approvals": 11}, errors.InvalidInput, None),
    ("approvals bool", "production", {"approvals": True}, errors.InvalidInput, None),
    ("approvals text", "production", {"approvals": "2"}, errors.InvalidInput, None),
    ("approvals float", "production", {"approvals": 1.5}, errors.InvalidInput, None),
    ("approvals None", "production", {"approvals": None}, errors.InvalidInput, None),
    ("viewer approves", "production", {"approver_role": "viewer"}, errors.InvalidInput, None),
    ("unknown role", "production", {"approver_role": "root"}, errors.InvalidInput, None),
    ("previous_to on staging", "staging", {"previous_to": "archived"}, errors.InvalidInput, None),
    ("previous_to on alias", "@champion", {"previous_to": "archived"}, errors.InvalidInput, None),
    (
        "previous_to production",
        "production",
        {"previous_to": "production"},
        errors.InvalidInput,
        None,
    ),
    ("previous_to unknown", "production", {"previous_to": "attic"}, errors.InvalidInput, None),
    ("from unknown stage", "production", {"from_stages": ["prod"]}, errors.InvalidInput, None),
    ("tag key", "production", {"required_tags": {"bad key": None}}, errors.InvalidName, None),
    ("tag value type", "production", {"required_tags": {"team": 5}}, errors.InvalidInput, None),
    (
        "tag value NUL",
        "production",
        {"required_tags": {"team": "a\x00"}},
        errors.InvalidInput,
        None,
    ),
    ("unknown target", "prod", {}, errors.InvalidInput, None),
    ("empty target", " ", {}, errors.InvalidInput, None),
    ("reserved alias", "@latest", {}, errors.InvalidName, None),
    ("bad alias", "@9lives", {}, errors.InvalidName, None),
]


@pytest.mark.parametrize(
    ("label", "target", "spec", "error", "position"), BAD_RULES, ids=[b[0] for b in BAD_RULES]
)
def test_bad_rules_are_refused_when_written(sqlite_reg, label, target, spec, error, position):
    with pytest.raises(error) as info:
        sqlite_reg.set("*", target, **spec)
    if position is not None:
        assert info.value.position == position
        assert info.value.detail["position"] == position
    assert sqlite_reg.counts() == (0, 0)


def test_bad_scopes_are_refused(sqlite_reg):
    for scope in ("", "bad name!", "../etc", "a/b/c", "x" * 129, "**"):
        with pytest.raises(errors.InvalidInput):
            sqlite_reg.set(scope, "production")
    assert sqlite_reg.counts() == (0, 0)


def test_a_rule_is_stored_in_its_canonical_form(sqlite_reg):
    row = sqlite_reg.set(
        "*",
        " Production ",
        requires=["  metrics.acc >= 0.85  ", "tags.team = 'risk'"],
        from_stages=["Staging", "development", "staging"],
        required_tags={"validated": None, "team": "risk"},
        approvals=10,
        approver_role="ADMIN",
        previous_to="Staging",
    )
    assert (row.scope, row.target) == ("*", "production")
    assert row.requires == ["metrics.acc >= 0.85", "tags.team = 'risk'"]
    assert row.from_stages == ["none", "staging"]
    assert row.required_tags == {"validated": None, "team": "risk"}
    assert (row.approvals, row.approver_role, row.previous_to) == (10, "admin", "staging")
    alias = sqlite_reg.set("*", "@Champion_2", approver_role="contributor")
    assert (alias.target, alias.approver_role) == ("@Champion_2", "contributor")
    assert sqlite_reg.set("*", "development").target == "none"


# --------------------------------------------------------------------------------------------
# RuleSpec.from_dict and policy documents: the shape a file or a JSON body gives.


def test_from_dict_reads_every_key():
    spec = RuleSpec.from_dict(
        {
            "requires": "metrics.acc >= 0.9",
            "from_stages": ["staging"],
            "required_tags": {"team": "risk", "validated": None},
            "approvals": 2,
            "approver_role": "admin",
            "previous_to": "staging",
        }
    )
    assert spec == RuleSpec(
        requires=["metrics.acc >= 0.9"],
        from_stages=["staging"],
        required_tags={"team": "risk", "validated": None},
        approvals=2,
        approver_role="admin",
        previous_to="staging",
    )
    assert RuleSpec.from_dict({}) == RuleSpec()
    assert RuleSpec.from_dict({"approver_role": None}).approver_role == "approver"


def test_from_dict_reads_required_tags_as_a_list():
    spec = RuleSpec.from_dict({"required_tags": ["validated", "team=risk", "note=a=b", "empty="]})
    assert spec.required_tags == {
        "validated": None,
        "team": "risk",
        "note": "a=b",
        "empty": "",
    }


@pytest.mark.parametrize(
    ("data", "unknown"),
    [
        ({"approval": 2}, ["approval"]),
        ({"require": ["metrics.acc > 0.9"], "approvals": 1}, ["require"]),
        ({"approvals": 1, "Approvals": 2, "gates": []}, ["Approvals", "gates"]),
    ],
)
def test_from_dict_refuses_unknown_keys(data, unknown):
    # A typo must not silently weaken a gate.
    with pytest.raises(errors.InvalidInput, match="unknown key") as info:
        RuleSpec.from_dict(data, where="fraud.production")
    assert info.value.detail == {"unknown": unknown}
    assert "fraud.production" in info.value.message


@pytest.mark.parametrize(
    "data",
    [
        ["approvals", 2],
        "approvals: 2",
        {"requires": [1]},
        {"requires": {"metrics.acc": 0.9}},
        {"from_stages": 3},
        {"from_stages": ["staging", None]},
    ],
)
def test_from_dict_refuses_wrong_shapes(data):
    with pytest.raises(errors.InvalidInput):
        RuleSpec.from_dict(data)


@pytest.mark.parametrize(
    "tags", ["team", 5, True, 2.5, {"team": 5}, {"team": True}, {"team": ["risk"]}]
)
def test_from_dict_refuses_required_tags_of_the_wrong_type(tags):
    with pytest.raises(errors.InvalidInput, match="required_tags"):
        RuleSpec.from_dict({"required_tags": tags}, where="fraud.production")


def test_policy_documents():
    doc = policies.parse_policy_document(
        {"*": {"production": {"approvals": 1}, "@champion": None}, "fraud": {}}
    )
    assert doc == {
        "*": {"production": RuleSpec(approvals=1), "@champion": RuleSpec()},
        "fraud": {},
    }
    with pytest.raises(errors.InvalidInput, match="scopes"):
        policies.parse_policy_document(["*"])
    with pytest.raises(errors.InvalidInput, match="fraud"):
        policies.parse_policy_document({"fraud": ["production"]})
    with pytest.raises(errors.InvalidInput, match=r"fraud\.staging") as info:
        policies.parse_policy_document({"fraud": {"staging": {"aproovals": 1}}})
    assert info.value.detail == {"unknown": ["aproovals"]}


# --------------------------------------------------------------------------------------------
# Scopes and precedence


def test_a_model_rule_replaces_the_default_for_its_target_only(reg):
    reg.register("fraud", metrics={"acc": 0.5})
    reg.register("churn", metrics={"acc": 0.5})
    reg.set("*", "production", requires=["metrics.acc >= 0.9"], approvals=2)
    reg.set("*", "staging", required_tags={"validated": None})
    reg.set("fraud", "production", from_stages=["none", "staging"])

    scope, fraud_prod = reg.effective("fraud", "production")
    # Not merged: the default's gate and approvals do not leak into the model's rule.
    assert (scope, fraud_prod) == ("fraud", rule(from_stages=["none", "staging"]))
    assert reg.effective("fraud", "staging") == ("*", rule(required_tags={"validated": None}))
    assert reg.effective("churn", "production")[0] == "*"
    assert reg.effective("fraud", "archived") is None

    fraud = reg.run(lifecycle.promote, "fraud", 1, "production", actor=ALICE)
    churn = reg.run(lifecycle.promote, "churn", 1, "production", actor=ALICE)
    assert fraud.state.value == "applied"
    assert churn.state.value == "refused"
    assert [c["criterion"] for c in churn.failed_criteria] == ["metrics.acc >= 0.9"]


def test_effective_policy_names_the_source_of_each_rule(reg):
    reg.register("fraud")
    reg.set("*", "production", approvals=1)
    reg.set("*", "staging", approvals=0)
    reg.set("fraud", "production", approvals=3, approver_role="admin")
    reg.set("fraud", "@champion", approvals=1)

    policy = reg.run(policies.effective_policy, "Fraud", actor=ALICE)
    assert policy == {
        "scope": "fraud",
        "rules": {
            "@champion": {**rule(approvals=1), "source": "model"},
            "production": {**rule(approvals=3, approver_role="admin"), "source": "model"},
            "staging": {**rule(), "source": "*"},
        },
    }
    default = reg.run(policies.effective_policy, "*", actor=ALICE)
    assert default == {
        "scope": "*",
        "rules": {
            "production": {**rule(approvals=1), "source": "*"},
            "staging": {**rule(), "source": "*"},
        },
    }
    # A model with no rules of its own (or no model yet) sees the default, marked as such.
    other = reg.run(policies.effective_policy, "not-yet", actor=ALICE)
    assert {t: r["source"] for t, r in other["rules"].items()} == {
        "production": "*",
        "staging": "*",
    }
    assert reg.run(policies.get_rules, "fraud", actor=ALICE) == {
        "@champion": rule(approvals=1),
        "production": rule(approvals=3, approver_role="admin"),
    }


def test_a_policy_written_before_its_model_governs_it_once_registered(reg):
    # Names normalise (case and separators), so "Fraud_Model" and "fraud.model" are one scope.
    reg.set("Fraud_Model", "production", approvals=1, requires=["metrics.acc >= 0.8"])
    assert reg.rules() == {
        "fraud-model": {"production": rule(approvals=1, requires=["metrics.acc >= 0.8"])}
    }
    [event] = reg.policy_events()
    assert (event.action, event.target, event.model_key) == (
        "registry:policy:set",
        "fraud-model:production",
        "fraud-model",
    )
    policy = reg.run(policies.effective_policy, "fraud.model", actor=ADMIN)
    assert policy["rules"]["production"]["source"] == "model"

    reg.register("fraud.model", metrics={"acc": 0.9})
    reg.register("fraud.model", metrics={"acc": 0.7})
    assert reg.effective("fraud.model", "production")[0] == "fraud-model"
    assert (
        reg.run(lifecycle.promote, "fraud.model", 1, "production", actor=ALICE).state == "pending"
    )
    refused = reg.run(lifecycle.promote, "fraud.model", 2, "production", actor=ALICE)
    assert refused.state == "refused"
    assert refused.failed_criteria[0]["actual"] == {"metrics.acc": 0.7}


def test_delete_rule_falls_back_to_the_default(reg):
    reg.register("fraud")
    reg.set("*", "production", approvals=1)
    reg.set("fraud", "production", approvals=0)
    reg.run(policies.delete_rule, "fraud", "Production", actor=ADMIN)
    assert reg.effective("fraud", "production") == ("*", rule(approvals=1))
    with pytest.raises(errors.NotFound):
        reg.run(policies.delete_rule, "fraud", "production", actor=ADMIN)
    with pytest.raises(errors.NotFound):
        reg.run(policies.delete_rule, "*", "staging", actor=ADMIN)


# --------------------------------------------------------------------------------------------
# Policy as code: apply_policies replaces exactly the scopes it lists.


def test_apply_policies_replaces_exactly_the_listed_scopes(reg):
    reg.register("a")
    reg.set("*", "production", approvals=1)
    reg.set("*", "staging", approvals=0)
    reg.set("a", "production", approvals=2)
    reg.set("b", "staging", required_tags={"x": None})
    before = len(reg.policy_events())

    changes = reg.run(
        policies.apply_policies,
        {
            "*": {"production": RuleSpec(approvals=1), "@champion": RuleSpec(approvals=1)},
            "A": {},
            "c": {"production": RuleSpec.from_dict({"required_tags": ["signed"]})},
        },
        actor=ADMIN,
    )
    assert changes == {
        "*": {
            "created": ["@champion"],
            "updated": [],
            "deleted": ["staging"],
            "unchanged": ["production"],
        },
        "a": {"created": [], "updated": [], "deleted": ["production"], "unchanged": []},
        "c": {"created": ["production"], "updated": [], "deleted": [], "unchanged": []},
    }
    assert reg.rules() == {
        "*": {"@champion": rule(approvals=1), "production": rule(approvals=1)},
        "b": {"staging": rule(required_tags={"x": None})},  # not listed: untouched
        "c": {"production": rule(required_tags={"signed": None})},
    }
    # One event per change; nothing for what stayed the same.
    new = reg.policy_events()[before:]
    assert sorted((e.action, e.target) for e in new) == [
        ("registry:policy:delete", "*:staging"),
        ("registry:policy:delete", "a:production"),
        ("registry:policy:set", "*:@champion"),
        ("registry:policy:set", "c:production"),
    ]

    again = reg.run(
        policies.apply_policies,
        {"*": {"production": RuleSpec(approvals=2), "@champion": RuleSpec(approvals=1)}},
        actor=ADMIN,
    )
    assert again == {
        "*": {"created": [], "updated": ["production"], "deleted": [], "unchanged": ["@champion"]}
    }
    [update_event] = reg.policy_events()[before + 4 :]
    assert update_event.before == rule(approvals=1)
    assert update_event.after == rule(approvals=2)
    assert reg.verify()


BAD_DOCUMENTS = [
    ({"fraud": {}, "Fraud": {}}, errors.InvalidInput),  # one model named twice
    ({"*": {"production": RuleSpec(), "Production": RuleSpec()}}, errors.InvalidInput),
    # The second scope is bad: the first one's changes must not survive either.
    ({"*": {}, "fraud": {"production": RuleSpec(approvals=99)}}, errors.InvalidInput),
    ({"*": {}, "fraud": {"production": RuleSpec(requires=["nope"])}}, errors.InvalidQuery),
    ({"*": {}, "bad name!": {}}, errors.InvalidInput),
    ({"*": {}, "fraud": {}}, errors.PermissionDenied),  # as an approver
]


def test_a_bad_policy_document_changes_nothing(reg):
    reg.set("*", "production", approvals=1)
    reg.set("*", "staging")
    before = (reg.rules(), reg.counts())
    for document, error in BAD_DOCUMENTS:
        actor = BOB if error is errors.PermissionDenied else ADMIN
        with pytest.raises(error):
            reg.run(policies.apply_policies, document, actor=actor)
        assert (reg.rules(), reg.counts()) == before, document


# --------------------------------------------------------------------------------------------
# Who may change a policy, and the audit trail of every change


def test_only_admins_set_policies(reg):
    reg.register("fraud")
    reg.register("churn")
    fraud_admin = Actor("fiona", superuser=False, grants={reg.model_id("fraud"): Role.ADMIN})
    spec = RuleSpec(approvals=1)
    for actor in (ALICE, BOB):
        with pytest.raises(errors.PermissionDenied, match="policy:set"):
            reg.run(policies.set_rule, "*", "production", spec, actor=actor)
        with pytest.raises(errors.PermissionDenied):
            reg.run(policies.set_rule, "fraud", "production", spec, actor=actor)
        with pytest.raises(errors.PermissionDenied):
            reg.run(policies.apply_policies, {"fraud": {}}, actor=actor)
    # A model's admin governs that model only: not the default, another model, or a future one.
    for scope in ("*", "churn", "not-yet"):
        with pytest.raises(errors.PermissionDenied):
            reg.run(policies.set_rule, scope, "production", spec, actor=fraud_admin)
    assert reg.counts()[0] == 0

    reg.set("fraud", "production", actor=fraud_admin, approvals=1)
    reg.set("*", "production", actor=DAVE, approvals=1)
    reg.set("not-yet", "production", actor=DAVE, approvals=1)
    for actor in (ALICE, BOB):
        with pytest.raises(errors.PermissionDenied):
            reg.run(policies.delete_rule, "fraud", "production", actor=actor)
    reg.run(policies.delete_rule, "fraud", "production", actor=fraud_admin)
    with pytest.raises(errors.PermissionDenied):
        reg.run(policies.delete_rule, "*", "production", actor=fraud_admin)
    assert [(e.actor, e.action) for e in reg.policy_events()] == [
        ("fiona", "registry:policy:set"),
        ("dave", "registry:policy:set"),
        ("dave", "registry:policy:set"),
        ("fiona", "registry:policy:delete"),
    ]


def test_a_token_holders_role_decides(reg):
    # The actor a real API token stands for, as the server builds it.
    reg.register("fraud")

    def issue(session, name, role):
        auth.create_principal(session, name, actor=ADMIN, role=role)
        return auth.create_token(session, name, actor=ADMIN)[1]

    approver_secret = reg.run(issue, "appr", Role.APPROVER)
    admin_secret = reg.run(issue, "boss", Role.ADMIN)
    approver = reg.run(auth.authenticate, approver_secret, source="test")
    boss = reg.run(auth.authenticate, admin_secret, source="test")
    assert not approver.superuser
    assert not boss.superuser
    with pytest.raises(errors.PermissionDenied):
        reg.set("fraud", "production", actor=approver, approvals=1)
    assert reg.set("fraud", "production", actor=boss, approvals=1).approvals == 1
    assert reg.policy_events()[-1].actor == "boss"


def test_every_change_is_audited_and_a_no_op_is_not(reg):
    reg.set("*", "production", approvals=1, requires=["metrics.acc >= 0.8"])
    reg.set("*", "production", approvals=1, requires=["metrics.acc >= 0.8"])
    reg.set("*", "Production", approvals=1, requires=["  metrics.acc >= 0.8 "])  # same, canonical
    reg.set("*", "production", approvals=2, requires=["metrics.acc >= 0.8"])
    reg.run(policies.delete_rule, "*", "production", actor=ADMIN)
    first, second, deleted = reg.policy_events()
    assert (first.action, first.target, first.model_key) == (
        "registry:policy:set",
        "*:production",
        None,
    )
    assert first.before is None
    assert first.after == rule(approvals=1, requires=["metrics.acc >= 0.8"])
    assert second.before == first.after
    assert second.after == rule(approvals=2, requires=["metrics.acc >= 0.8"])
    assert (deleted.action, deleted.before, deleted.after) == (
        "registry:policy:delete",
        second.after,
        None,
    )
    assert reg.verify()


def test_list_scopes_and_rules_for_readers(reg):
    reg.register("fraud")
    reg.register("churn")
    reg.set("*", "production", approvals=1)
    reg.set("fraud", "staging")
    reg.set("not-yet", "staging")
    reader = Actor("rita", superuser=False, grants={reg.model_id("fraud"): Role.VIEWER})
    with transaction(reg.engine, write=False) as session:
        assert policies.list_scopes(session, actor=ALICE) == {
            "*": {"production": rule(approvals=1)},
            "fraud": {"staging": rule()},
            "not-yet": {"staging": rule()},
        }
        assert policies.get_rules(session, "fraud", actor=reader) == {"staging": rule()}
        # A model the reader may not see and one not created yet read alike: absent.
        for call in (policies.get_rules, policies.effective_policy):
            for name in ("churn", "not-yet"):
                with pytest.raises(errors.ModelNotFound) as caught:
                    call(session, name, actor=reader)
                assert caught.value.message == f"no model named {name!r}"


def test_a_model_scoped_reader_lists_the_scopes_it_may_read(reg):
    reg.register("fraud")
    reg.register("churn")
    reg.set("*", "production", approvals=1)
    reg.set("fraud", "staging")
    reg.set("churn", "staging")
    reader = Actor("rita", superuser=False, grants={reg.model_id("fraud"): Role.VIEWER})
    with transaction(reg.engine, write=False) as session:
        assert policies.list_scopes(session, actor=reader) == {
            "*": {"production": rule(approvals=1)},
            "fraud": {"staging": rule()},
        }


# --------------------------------------------------------------------------------------------
# evaluate(): one result per criterion, each with the values the check saw


def test_evaluate_reports_what_the_version_has(reg):
    reg.register(metrics={"acc": 0.9, "loss": 0.2}, tags={"team": "ops"}, params={"depth": "7"})
    reg.set(
        "*",
        "production",
        from_stages=["staging"],
        required_tags={"team": "risk", "validated": None},
        requires=[
            "metrics.acc >= 0.85",
            "metrics.f1 >= 0.5",
            "metrics.loss < 0.1 OR params.depth = '7'",
            "tags.team = 'risk'",
        ],
    )

    results = evaluate(reg, "production")
    assert results == [
        {
            "criterion": "from stage staging",
            "passed": False,
            "actual": {"stage": "none"},
            "message": "it is in none, not staging",
        },
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
        {
            "criterion": "metrics.acc >= 0.85",
            "passed": True,
            "actual": {"metrics.acc": 0.9},
            "message": "",
        },
        {
            # A metric the version lacks is refused, and says so with ``None``.
            "criterion": "metrics.f1 >= 0.5",
            "passed": False,
            "actual": {"metrics.f1": None},
            "message": "not met: metrics.f1 = None",
        },
        {
            "criterion": "metrics.loss < 0.1 OR params.depth = '7'",
            "passed": True,
            "actual": {"metrics.loss": 0.2, "params.depth": "7"},
            "message": "",
        },
        {
            "criterion": "tags.team = 'risk'",
            "passed": False,
            "actual": {"tags.team": "ops"},
            "message": "not met: tags.team = 'ops'",
        },
    ]
    assert [r["criterion"] for r in policies.failed(results)] == [
        "from stage staging",
        "tag team = 'risk'",
        "tag validated",
        "metrics.f1 >= 0.5",
        "tags.team = 'risk'",
    ]


def test_evaluate_without_a_rule_still_needs_a_ready_version(reg):
    reg.register()

    def check(session):
        return policies.evaluate(session, versions.resolve(session, "m:1"), None)

    assert reg.run(check) == []
    with transaction(reg.engine, write=True) as session:
        session.execute(update(Version).values(status=VersionStatus.FAILED))

    def check_failed(session):
        version = session.scalars(select(Version)).one()
        return policies.evaluate(session, version, None)

    assert reg.run(check_failed) == [
        {
            "criterion": "status = 'ready'",
            "passed": False,
            "actual": {"status": "failed"},
            "message": "version 1 is failed",
        }
    ]


def test_gates_on_simple_fields_report_their_values(reg):
    reg.register(semver="1.2.0")
    reg.run(lifecycle.set_alias, "m", "champion", 1, actor=ADMIN)
    reg.set(
        "*",
        "staging",
        requires=[
            "semver >= '2.0.0'",
            "alias = 'champion'",
            "version = 1 AND created_by = 'admin'",
        ],
    )

    results = evaluate(reg, "staging")
    assert [(r["passed"], r["actual"]) for r in results] == [
        (False, {"semver": "1.2.0"}),
        (True, {"alias": ["champion"]}),
        (True, {"version": 1, "created_by": "admin"}),
    ]


def test_gates_on_model_tags_and_run_id_report_their_values(reg):
    reg.run(models.create_model, "m", actor=ADMIN, tags={"team": "ops"})
    reg.register(lineage=versions.Lineage(run_id="run-7"))
    reg.set("*", "staging", requires=["model.tags.team = 'risk'", "run_id = 'run-8'"])
    assert [(r["passed"], r["actual"]) for r in evaluate(reg, "staging")] == [
        (False, {"model.tags.team": "ops"}),
        (False, {"run_id": "run-7"}),
    ]

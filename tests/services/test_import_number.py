"""register_version with an explicit number and a first stage, as ``modelreg import`` uses it.

Issue 5 ("The MLflow door"): an import keeps the source registry's version numbers (gaps
included) and stages. Only admins may choose either; a chosen number must be above every
number the model ever used, and the numbers it skips are never handed out; a first stage is a
recorded move, so ``history``, ``--at`` and rollback stay consistent. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from modelreg import errors
from modelreg.db.base import utcnow
from modelreg.db.session import transaction
from modelreg.db.tables import AuditEvent, HistoryEntry, HistoryKind, Role
from modelreg.services import lifecycle, models, policies, registration, versions
from modelreg.services.actor import Actor
from modelreg.services.policies import RuleSpec
from service_db import ServiceRegistry, engine_for, migrated_template


def _user(name: str, grants: dict[uuid.UUID | None, Role]) -> Actor:
    return Actor(name, superuser=False, principal_id=uuid.uuid4(), grants=grants)


ADMIN = _user("dave", {None: Role.ADMIN})
APPROVER = _user("bob", {None: Role.APPROVER})
CONTRIBUTOR = _user("alice", {None: Role.CONTRIBUTOR})
IMPORTED = "http://mlflow.example:5000/#/models/m/versions/"
BYPASS = "; stage applied by an admin at registration, bypassing the promotion policy"


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory):
    return migrated_template(tmp_path_factory.mktemp("import-number-template"))


@pytest.fixture
def reg(db_url, sqlite_template):
    eng = engine_for(db_url, sqlite_template)
    registry = ServiceRegistry(eng)
    # They uploaded the file they register (SECURITY.md rule 13: a digest alone is not enough).
    registry.sent_by(ADMIN, APPROVER, CONTRIBUTOR)
    yield registry
    eng.dispose()


def register(reg, *, actor=ADMIN, name="m", **kwargs):
    with transaction(reg.engine, write=True) as session:
        spec = registration.RegistrationSpec(name=name, files=[reg.blob], **kwargs)
        version = registration.register_version(session, reg.store, spec, actor=actor)
        return version.number, version.stage.value


def last_event(reg):
    with transaction(reg.engine, write=False) as session:
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        return event.action, event.target, dict(event.after or {})


def stage_history(reg, name="m"):
    with transaction(reg.engine, write=False) as session:
        model = models.get_model(session, name, actor=None)
        rows = session.scalars(
            select(HistoryEntry).where(
                HistoryEntry.model_id == model.id, HistoryEntry.kind == HistoryKind.STAGE
            )
        )
        return [(h.to_version, h.from_stage, h.key, h.reason) for h in rows]


class TestExplicitNumber:
    def test_keeps_the_number_and_the_gap(self, reg):
        assert register(reg, number=1) == (1, "none")
        assert register(reg, number=4) == (4, "none")
        with transaction(reg.engine, write=False) as session:
            assert models.get_model(session, "m", actor=None).last_version == 4
            assert versions.find_version(session, "m:3") is None

    def test_skipped_numbers_are_never_handed_out(self, reg):
        register(reg, number=3)
        assert register(reg) == (4, "none")  # the counter continues after the chosen number

    @pytest.mark.parametrize("number", [1, 2])
    def test_a_number_at_or_below_the_last_is_a_conflict(self, reg, number):
        register(reg, number=2)
        with pytest.raises(errors.Conflict) as info:
            register(reg, number=number)
        assert info.value.detail == {"number": number, "last_version": 2}

    def test_a_deleted_number_is_never_reused(self, reg):
        register(reg, number=5)
        reg.run(versions.delete_version, "m:5", actor=ADMIN)
        with pytest.raises(errors.Conflict):
            register(reg, number=5)

    def test_a_deleted_models_numbers_are_never_reused(self, reg):
        register(reg, number=5)
        reg.run(versions.delete_version, "m:5", actor=ADMIN)
        reg.run(models.delete_model, "m", actor=ADMIN)
        with pytest.raises(errors.Conflict):
            register(reg, number=5)
        assert register(reg, number=6) == (6, "none")

    @pytest.mark.parametrize("number", [0, -1, 2**31, True, "3", 1.5])
    def test_not_a_version_number(self, reg, number):
        with pytest.raises(errors.InvalidInput):
            register(reg, number=number)

    @pytest.mark.parametrize("actor", [CONTRIBUTOR, APPROVER])
    def test_needs_the_admin_role(self, reg, actor):
        with pytest.raises(errors.PermissionDenied):
            register(reg, actor=actor, number=7)

    def test_an_admin_of_the_model_only_may(self, reg):
        register(reg, number=1)
        local_admin = Actor("ann", superuser=False, grants={reg.model_id(): Role.ADMIN})
        assert register(reg, actor=local_admin, number=2) == (2, "none")

    def test_is_audited(self, reg):
        register(reg, number=9)
        action, target, after = last_event(reg)
        assert (action, target) == ("registry:version:register", "m:9")
        assert after["version"] == 9
        assert after["number_given"] is True
        assert "stage" not in after

    def test_a_plain_registration_is_audited_as_before(self, reg):
        register(reg, actor=CONTRIBUTOR)
        _, _, after = last_event(reg)
        assert "number_given" not in after
        assert "stage" not in after


class TestFirstStage:
    @pytest.mark.parametrize("stage", ["staging", "production", "archived", "Production"])
    def test_sets_the_stage_and_records_the_move(self, reg, stage):
        lineage = versions.Lineage(imported_from=IMPORTED + "2")
        assert register(reg, number=2, stage=stage, lineage=lineage) == (2, stage.lower())
        assert stage_history(reg) == [
            (2, "none", stage.lower(), f"imported from {IMPORTED}2{BYPASS}")
        ]
        _, _, after = last_event(reg)
        assert after["stage"] == stage.lower()

    def test_without_an_import_the_reason_says_so(self, reg):
        register(reg, stage="staging")
        assert stage_history(reg) == [
            (1, "none", "staging", f"stage given at registration{BYPASS}")
        ]

    def test_a_first_stage_is_audited_as_an_import_bypassing_the_policy(self, reg):
        # Issue 18: an import that keeps MLflow's Production skips a 2-approval rule; the audit
        # log says so, with the rule it skipped, in an event of its own after the registration.
        with transaction(reg.engine, write=True) as session:
            policies.set_rule(session, "*", "production", RuleSpec(approvals=2), actor=ADMIN)
        lineage = versions.Lineage(imported_from=IMPORTED + "3")
        register(reg, number=3, stage="production", lineage=lineage)
        with transaction(reg.engine, write=False) as session:
            events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).all()
            stage, registered = events[0], events[1]
            assert (registered.action, stage.action) == (
                "registry:version:register",
                "registry:version:stage",
            )
            assert stage.target == "m:3"
            assert stage.before == {"stage": "none"}
            assert stage.after["action"] == "import"
            assert stage.after["stage"] == "production"
            assert stage.after["imported_from"] == IMPORTED + "3"
            assert stage.after["bypassed_rule"]["approvals"] == 2
            assert "bypassing the promotion policy" in stage.reason

    def test_a_first_stage_with_no_rule_says_none_was_bypassed(self, reg):
        register(reg, number=1, stage="staging")
        action, _, after = last_event(reg)
        assert (action, after["action"], after["bypassed_rule"]) == (
            "registry:version:stage",
            "import",
            None,
        )

    def test_none_is_no_move_and_needs_no_admin(self, reg):
        assert register(reg, actor=CONTRIBUTOR, stage="none") == (1, "none")
        assert stage_history(reg) == []

    @pytest.mark.parametrize("actor", [CONTRIBUTOR, APPROVER])
    def test_needs_the_admin_role(self, reg, actor):
        with pytest.raises(errors.PermissionDenied):
            register(reg, actor=actor, stage="production")

    def test_unknown_stage(self, reg):
        with pytest.raises(errors.InvalidInput):
            register(reg, stage="shipped")

    def test_one_production_version_per_model(self, reg):
        register(reg, number=1, stage="production")
        with pytest.raises(errors.Conflict) as info:
            register(reg, number=2, stage="production")
        assert info.value.detail == {"stage": "production", "version": 1}
        # Nothing of the refused registration remains: the number is still free.
        assert register(reg, number=2, stage="archived") == (2, "archived")

    def test_history_answers_at_and_rollback(self, reg):
        register(reg, number=1, stage="production")
        before_second = utcnow()
        register(reg, number=2)
        reg.run(lifecycle.promote, "m", 2, "production", actor=ADMIN, reason="go")
        with transaction(reg.engine, write=False) as session:
            at = lifecycle.version_at(session, "m/production", before_second, actor=ADMIN)
            assert at.number == 1
        result = reg.run(lifecycle.rollback, "m", actor=ADMIN, reason="back")
        assert (result["from_version"], result["to_version"]) == (2, 1)

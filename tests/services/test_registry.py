"""The registry's use-cases end to end through ``modelreg.Registry``, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

import modelreg
from modelreg import errors


def audit_actions(reg: modelreg.Registry, model: str | None = None) -> list[str]:
    return [e.action for e in reg.audit(model, limit=1000)]


class TestRegister:
    def test_one_file_creates_model_and_version_1(self, reg, files):
        v = reg.register(
            "fraud",
            files / "model.pkl",
            metrics={"accuracy": 0.82},
            params={"n_estimators": 100},
            tags={"team": "risk"},
            capture=False,
        )
        assert (v.name, v.version, v.status, v.stage) == ("fraud", 1, "ready", "none")
        assert [(f.path, f.size) for f in v.files] == [("model.pkl", 1200)]
        assert v.metrics == {"accuracy": 0.82}
        assert v.params == {"n_estimators": "100"}
        assert reg.get_model("fraud").latest_version == 1
        assert audit_actions(reg) == ["registry:model:create", "registry:version:register"]

    def test_folder_keeps_its_tree(self, reg, files):
        v = reg.register("fraud", files / "model_dir", capture=False)
        assert [f.path for f in v.files] == ["sub/config.json", "weights.bin"]

    def test_several_paths_keep_their_names(self, reg, files):
        v = reg.register("fraud", [files / "model.pkl", files / "model_dir"], capture=False)
        assert [f.path for f in v.files] == [
            "model.pkl",
            "model_dir/sub/config.json",
            "model_dir/weights.bin",
        ]

    def test_lineage_and_environment_are_recorded(self, reg, files):
        reg.register("base", files / "model.pkl", capture=False)
        v = reg.register(
            "fraud",
            files / "model.pkl",
            datasets=["transactions@2026-10"],
            parents=["base:1"],
            run_id="run-42",
        )
        assert v.lineage["datasets"] == [{"name": "transactions", "ref": "2026-10"}]
        assert v.lineage["parents"] == ["base:1"]
        assert v.lineage["run_id"] == "run-42"
        assert v.environment["python"].count(".") == 2
        assert any(p.lower().startswith("sqlalchemy==") for p in v.environment["packages"])
        graph = reg.lineage("base:1")
        assert graph["children"] == ["fraud:1"]
        assert reg.lineage("fraud:1")["parents"][0]["ref"] == "base:1"

    def test_unknown_parent_is_refused_and_nothing_is_created(self, reg, files):
        with pytest.raises(errors.ModelNotFound):
            reg.register("fraud", files / "model.pkl", parents=["ghost:1"], capture=False)
        with pytest.raises(errors.ModelNotFound):
            reg.get_model("fraud")

    def test_numbers_are_never_reused_after_deletion(self, reg, files):
        for _ in range(3):
            reg.register("fraud", files / "model.pkl", capture=False)
        reg.delete("fraud:3", reason="bad labels")
        assert reg.register("fraud", files / "model.pkl", capture=False).version == 4
        with pytest.raises(errors.VersionNotFound, match="deleted"):
            reg.get_version("fraud:3")
        reg.delete("fraud", reason="start over")
        assert reg.register("fraud", files / "model.pkl", capture=False).version == 5

    def test_idempotency_key_returns_the_same_version(self, reg, files):
        a = reg.register("fraud", files / "model.pkl", idempotency_key="ci-123", capture=False)
        b = reg.register("fraud", files / "model.pkl", idempotency_key="ci-123", capture=False)
        assert a.version == b.version == 1
        assert len(reg.list_versions("fraud")) == 1

    def test_idempotency_key_with_other_files_conflicts(self, reg, files):
        reg.register("fraud", files / "model.pkl", idempotency_key="k", capture=False)
        with pytest.raises(errors.Conflict):
            reg.register("fraud", files / "model_dir", idempotency_key="k", capture=False)

    def test_semver_explicit_bump_and_uniqueness(self, reg, files):
        assert (
            reg.register("m", files / "model.pkl", semver="1.4.0", capture=False).semver == "1.4.0"
        )
        assert reg.register("m", files / "model.pkl", bump="minor", capture=False).semver == "1.5.0"
        assert reg.register("m", files / "model.pkl", bump="major", capture=False).semver == "2.0.0"
        with pytest.raises(errors.AlreadyExists):
            reg.register("m", files / "model.pkl", semver="1.4.0", capture=False)
        assert [v.version for v in reg.list_versions("m")] == [3, 2, 1]

    @pytest.mark.parametrize(
        "name",
        [
            "",
            "x" * 129,
            "x" * 300,
            "..",
            "../etc",
            "a/b/c",
            "a\x00b",
            "-rf",
            ".hidden",
            "a;rm -rf",
            "a$(id)",
            "a'--",
            "a b",
            "a|b",
            "a`b`",
        ],
    )
    def test_bad_names_change_nothing(self, reg, files, name):
        with pytest.raises(errors.InvalidInput):
            reg.register(name, files / "model.pkl", capture=False)
        assert list(reg.list_models()) == []

    def test_missing_file_creates_no_version(self, reg, files):
        with pytest.raises(errors.InvalidInput, match="no such file"):
            reg.register("fraud", [files / "model.pkl", files / "missing.bin"], capture=False)
        with pytest.raises(errors.ModelNotFound):
            reg.get_model("fraud")

    def test_unreadable_file_creates_no_version(self, reg, files):
        import os

        if os.geteuid() == 0:
            pytest.skip("root reads every file")
        target = files / "model.pkl"
        target.chmod(0)
        with pytest.raises(errors.InvalidInput, match="cannot read"):
            reg.register("fraud", target, capture=False)

    def test_bad_metric_is_refused(self, reg, files):
        with pytest.raises(errors.InvalidInput):
            reg.register("fraud", files / "model.pkl", metrics={"auc": float("nan")}, capture=False)
        assert list(reg.list_models()) == []


class TestReferences:
    @pytest.fixture
    def three(self, reg, files):
        for _ in range(3):
            reg.register("fraud", files / "model.pkl", capture=False)
        reg.set_alias("fraud", "champion", 2)
        return reg

    @pytest.mark.parametrize(
        ("ref", "number"),
        [
            ("fraud:1", 1),
            ("fraud@champion", 2),
            ("fraud/latest", 3),
            ("models:/fraud/1", 1),
            ("models:/fraud@champion", 2),
            ("models:/fraud/latest", 3),
            ("Fraud:2", 2),
        ],
    )
    def test_every_form_resolves(self, three, ref, number):
        assert three.get_version(ref).version == number

    @pytest.mark.parametrize(
        ("ref", "error"),
        [
            ("fraud:9", errors.VersionNotFound),
            ("fraud@nobody", errors.AliasNotFound),
            ("ghost:1", errors.ModelNotFound),
            ("fraud/production", errors.VersionNotFound),
            ("fraud:x", errors.InvalidReference),
            ("models:/fraud", errors.InvalidReference),
        ],
    )
    def test_unresolvable_refs(self, three, ref, error):
        with pytest.raises(error):
            three.get_version(ref)


class TestAliasesTagsDescriptions:
    def test_alias_set_move_delete_with_history(self, reg, files):
        reg.register("m", files / "model.pkl", capture=False)
        reg.register("m", files / "model.pkl", capture=False)
        reg.set_alias("m", "champion", 1)
        reg.set_alias("m", "champion", 2, reason="better")
        assert reg.get_model("m").aliases == {"champion": 2}
        assert reg.get_version("m:2").aliases == ["champion"]
        assert reg.delete_alias("m", "champion") == 2
        moves = [(h["key"], h["from_version"], h["to_version"]) for h in reg.history("m")]
        assert moves == [("champion", None, 1), ("champion", 1, 2), ("champion", 2, None)]
        assert audit_actions(reg, "m")[-3:] == [
            "registry:alias:set",
            "registry:alias:set",
            "registry:alias:delete",
        ]

    def test_alias_to_missing_version_changes_nothing(self, reg, files):
        reg.register("m", files / "model.pkl", capture=False)
        with pytest.raises(errors.VersionNotFound):
            reg.set_alias("m", "champion", 7)
        assert reg.get_model("m").aliases == {}

    @pytest.mark.parametrize("alias", ["latest", "v2", "", "has space", "1abc", "a" * 65])
    def test_bad_alias_names(self, reg, files, alias):
        reg.register("m", files / "model.pkl", capture=False)
        with pytest.raises(errors.InvalidInput):
            reg.set_alias("m", alias, 1)

    def test_tags_on_models_and_versions(self, reg, files):
        reg.register("m", files / "model.pkl", tags={"draft": "yes"}, capture=False)
        assert reg.set_tags("m", {"team": "risk"}).tags == {"team": "risk"}
        v = reg.set_tags("m:1", {"validated": "true"}, delete=["draft"])
        assert v.tags == {"validated": "true"}
        assert "registry:version:tag" in audit_actions(reg)

    def test_descriptions(self, reg, files):
        reg.register("m", files / "model.pkl", capture=False)
        assert reg.set_description("m", "fraud model").description == "fraud model"
        assert reg.set_description("m:1", "first cut").description == "first cut"

    def test_create_model_twice_conflicts(self, reg):
        reg.create_model("m", description="d", tags={"a": "b"})
        with pytest.raises(errors.AlreadyExists):
            reg.create_model("M")


class TestSearch:
    @pytest.fixture
    def populated(self, reg, files):
        reg.register(
            "fraud",
            files / "model.pkl",
            metrics={"accuracy": 0.82},
            tags={"team": "risk"},
            params={"depth": "4"},
            capture=False,
        )
        reg.register(
            "fraud",
            files / "model.pkl",
            metrics={"accuracy": 0.88},
            tags={"team": "risk"},
            params={"depth": "8"},
            capture=False,
        )
        reg.register(
            "churn",
            files / "model.pkl",
            metrics={"accuracy": 0.91},
            tags={"team": "growth"},
            capture=False,
        )
        reg.set_alias("fraud", "champion", 2)
        reg.set_tags("churn", {"tier": "gold"})
        return reg

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("metrics.accuracy > 0.85 AND tags.team = 'risk'", ["fraud:2"]),
            (
                "metrics.accuracy >= 0.82 ORDER BY metrics.accuracy DESC",
                ["churn:1", "fraud:2", "fraud:1"],
            ),
            ("name LIKE 'fr%' ORDER BY version", ["fraud:1", "fraud:2"]),
            ("name = 'FRAUD' AND version = 1", ["fraud:1"]),
            ("tags.team IN ('growth', 'none')", ["churn:1"]),
            ("NOT tags.team = 'risk'", ["churn:1"]),
            ("alias = 'champion'", ["fraud:2"]),
            ("params.depth = '8' OR metrics.accuracy > 0.9 ORDER BY name", ["churn:1", "fraud:2"]),
            ("params.depth IS NULL", ["churn:1"]),
            ("model.tags.tier = 'gold'", ["churn:1"]),
            ("stage = 'none' AND name ILIKE 'CH%'", ["churn:1"]),
            ("created_at > '2000-01-01' AND metrics.accuracy < 0.85", ["fraud:1"]),
        ],
    )
    def test_queries(self, populated, query, expected):
        assert sorted(v.ref for v in populated.search(query)) == sorted(expected)
        if "ORDER BY" in query:
            assert [v.ref for v in populated.search(query)] == expected

    def test_versions_filter_and_models_filter(self, populated):
        assert [v.version for v in populated.list_versions("fraud", "metrics.accuracy > 0.85")] == [
            2
        ]
        assert [m.name for m in populated.list_models("tags.tier = 'gold'")] == ["churn"]
        assert [m.name for m in populated.list_models("alias = 'champion'")] == ["fraud"]

    def test_pagination_walks_every_item_once(self, populated):
        seen = []
        token = None
        while True:
            page = populated.search("ORDER BY name, version", page_size=1, page_token=token)
            seen.extend(v.ref for v in page)
            token = page.next_page_token
            if token is None:
                break
        assert seen == ["churn:1", "fraud:1", "fraud:2"]

    def test_token_from_another_query_is_refused(self, populated):
        token = populated.search("version >= 1", page_size=1).next_page_token
        with pytest.raises(errors.InvalidInput):
            populated.search("version >= 2", page_token=token)

    @pytest.mark.parametrize(
        ("query", "position"),
        [
            ("metrics.accuracy >", 18),
            ("colour = 'red'", 0),
            ("version = 'x'", 8),
            ("metrics.a > 'high'", 10),
            ("name = 'a' AND", 14),
            ("(name = 'a'", 11),
        ],
    )
    def test_errors_name_the_position(self, populated, query, position):
        with pytest.raises(errors.InvalidQuery) as info:
            populated.search(query)
        assert info.value.position == position

    def test_injection_is_just_a_value(self, populated):
        assert list(populated.search("name = 'x'' OR 1=1 --'")) == []
        assert len(populated.list_models()) == 2


class TestCompare:
    def test_metric_param_tag_and_file_differences(self, reg, files):
        reg.register(
            "m", files / "model.pkl", metrics={"acc": 0.8}, params={"lr": "0.1"}, capture=False
        )
        reg.register(
            "m",
            [files / "model.pkl", files / "model_dir"],
            metrics={"acc": 0.9},
            params={"lr": "0.1"},
            capture=False,
        )
        diff = reg.compare("m", 1, 2)
        assert diff["metrics"][0]["key"] == "acc"
        assert diff["metrics"][0]["delta"] == pytest.approx(0.1)
        assert diff["params"] == [{"key": "lr", "a": "0.1", "b": "0.1", "changed": False}]
        status = {f["path"]: f["status"] for f in diff["files"]}
        assert status["model.pkl"] == "same"
        assert status["model_dir/weights.bin"] == "added"


class TestArtifacts:
    def test_download_verifies_and_writes_the_tree(self, reg, files, tmp_path):
        reg.register("m", files / "model_dir", capture=False)
        out = tmp_path / "out"
        written = reg.download("m:1", out)
        assert sorted(p.relative_to(out).as_posix() for p in written) == [
            "sub/config.json",
            "weights.bin",
        ]
        assert (out / "sub" / "config.json").read_text() == '{"layers": 3}'

    def test_corrupted_blob_is_refused_and_output_untouched(self, reg, home, files, tmp_path):
        v = reg.register("m", files / "model.pkl", capture=False)
        blob = home / "blobs" / "sha256" / v.files[0].sha256[:2] / v.files[0].sha256[2:4]
        blob = blob / v.files[0].sha256
        blob.chmod(0o644)
        blob.write_bytes(b"tampered" * 150)
        out = tmp_path / "out"
        with pytest.raises(errors.IntegrityFailure, match="do not match"):
            reg.download("m:1", out)
        assert [p.name for p in out.iterdir()] == []

    def test_identical_files_are_stored_once(self, reg, home, tmp_path):
        big = tmp_path / "big.bin"
        big.write_bytes(bytes(range(256)) * (20 * 1024 * 1024 // 256))
        reg.register("a", big, capture=False)
        reg.register("b", big, capture=False)
        blobs = [p for p in (home / "blobs" / "sha256").rglob("*") if p.is_file()]
        assert len(blobs) == 1
        assert blobs[0].stat().st_size == 20 * 1024 * 1024

    def test_gc_removes_only_unreferenced_blobs(self, reg, home, files):
        reg.register("m", files / "model.pkl", capture=False)
        reg.register("m", files / "model_dir", capture=False)
        reg.delete("m:2", reason="cleanup")
        assert reg.gc(grace_seconds=0, dry_run=True)["unreferenced"] == 2
        result = reg.gc(grace_seconds=0)
        assert result["removed"] == 2
        assert reg.download("m:1", home.parent / "o")[0].read_bytes() == b"pickle-bytes" * 100
        assert "registry:blob:gc" in audit_actions(reg)


class TestAudit:
    def _tamper(self, home: Path, statement: str) -> None:
        from sqlalchemy import text

        from modelreg.config import Settings
        from modelreg.db.session import make_engine

        engine = make_engine(Settings.for_home(home).db_url)
        with engine.begin() as conn:
            conn.execute(text(statement))
        engine.dispose()

    @pytest.fixture
    def logged(self, reg, files):
        reg.register("m", files / "model.pkl", capture=False)
        reg.register("m", files / "model.pkl", capture=False)
        reg.set_alias("m", "champion", 1)
        reg.set_tags("m", {"a": "b"})
        assert reg.verify_audit()["ok"]
        assert reg.verify_audit()["events"] == 5
        return reg

    @pytest.mark.parametrize(
        ("statement", "first_bad"),
        [
            ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3", 3),
            ("DELETE FROM audit_events WHERE seq = 2", 2),
            ("DELETE FROM audit_events WHERE seq = 5", 5),
            ("UPDATE audit_events SET reason = 'x' WHERE seq = 4", 4),
        ],
    )
    def test_verify_names_the_first_bad_event(self, logged, home, statement, first_bad):
        self._tamper(home, statement)
        result = logged.verify_audit()
        assert result["ok"] is False
        assert result["first_bad_seq"] == first_bad

    def test_reordering_is_detected(self, logged, home):
        self._tamper(home, "UPDATE audit_events SET seq = seq + 100 WHERE seq IN (2, 3)")
        self._tamper(home, "UPDATE audit_events SET seq = 3 WHERE seq = 102")
        self._tamper(home, "UPDATE audit_events SET seq = 2 WHERE seq = 103")
        assert logged.verify_audit()["first_bad_seq"] == 2

    def test_failed_action_leaves_no_event(self, logged, files):
        with pytest.raises(errors.AlreadyExists):
            logged.create_model("m")
        assert len(logged.audit(limit=100)) == 5

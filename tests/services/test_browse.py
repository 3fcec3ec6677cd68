"""The web UI's page use-cases and the comparison services under them, on both databases.

Each page reads in one transaction through the same services as the API, answers an
unreadable model exactly like a missing one, and pages by keyset.
"""

from __future__ import annotations

import io
import math
from contextlib import AbstractContextManager
from typing import Any

import pytest
from sqlalchemy.orm import Session

from modelreg import errors
from modelreg.db.session import transaction
from modelreg.db.tables import Role
from modelreg.services import compare, lifecycle, models, policies, versions
from modelreg.services.actor import Actor
from modelreg.services.policies import RuleSpec
from modelreg.services.registration import RegistrationSpec, register_version
from modelreg.services.usecases import browse
from service_db import OWNER, ServiceRegistry, engine_for, migrated_template

ALICE = Actor("alice", superuser=False, grants={None: Role.CONTRIBUTOR})
BOB = Actor("bob", superuser=False, grants={None: Role.APPROVER})


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory):
    return migrated_template(tmp_path_factory.mktemp("browse-template"))


@pytest.fixture
def reg(db_url, sqlite_template):
    eng = engine_for(db_url, sqlite_template)
    yield Reg(eng)
    eng.dispose()


class Reg(ServiceRegistry):
    """The shared shortcuts, and the ``Handles`` a use-case takes."""

    def read(self) -> AbstractContextManager[Session]:
        return transaction(self.engine, write=False)

    def write(self) -> AbstractContextManager[Session]:
        return transaction(self.engine, write=True)

    def file(self, path: str, data: bytes) -> versions.FileSpec:
        info = self.store.put(io.BytesIO(data))
        return versions.FileSpec(path, info.sha256, info.size)

    def add(self, name: str = "m", files: list[versions.FileSpec] | None = None, **kw: Any) -> int:
        spec = RegistrationSpec(name=name, files=files or [self.blob], **kw)
        return self.run(lambda s: register_version(s, self.store, spec, actor=OWNER).number)

    def rule(self, target: str, scope: str = "*", **spec: Any) -> None:
        self.run(policies.set_rule, scope, target, RuleSpec(**spec), actor=OWNER)

    def viewer_of(self, name: str) -> Actor:
        return Actor("vic", superuser=False, grants={self.model_id(name): Role.VIEWER})


def env(*packages: str, python: str = "3.12.1") -> dict[str, Any]:
    return {"python": python, "packages": list(packages)}


# --------------------------------------------------------------------------------------------
# compare_many


def test_compare_many_marks_statuses_deltas_and_the_best_value(reg: Reg):
    reg.rule("production", requires=["metrics.score <= 5"])
    a, b, c = reg.file("a.bin", b"a"), reg.file("b.bin", b"b"), reg.file("b.bin", b"B")
    reg.add(
        files=[a, b],
        metrics={"acc": 0.8, "loss": 0.5, "score": 4.0},
        params={"lr": "0.1", "depth": "3"},
        tags={"team": "risk"},
        environment=env("numpy==1.26.4", "torch==2.1"),
    )
    reg.add(
        files=[a, c],
        metrics={"acc": 0.9, "loss": 0.4, "score": 3.0},
        params={"lr": "0.2", "depth": "3"},
        tags={"team": "risk", "new": "x"},
        environment=env("NumPy==2.0.0", "torch==2.1"),
    )
    reg.add(files=[c], metrics={"acc": 0.85, "loss": 0.6, "score": 3.0}, params={"lr": "0.1"})
    out = reg.run(compare.compare_many, "m", [1, 2, 3], actor=OWNER)
    assert [c["version"] for c in out["columns"]] == [1, 2, 3]
    metrics = {r["key"]: r for r in out["metrics"]}
    assert metrics["acc"]["direction"] == "higher"
    assert metrics["acc"]["best"] == [0, 1, 0]
    assert metrics["loss"]["direction"] == "lower"
    assert metrics["loss"]["best"] == [0, 1, 0]
    # The production gate says which way is better, whatever the name suggests.
    assert metrics["score"]["gated"]
    assert metrics["score"]["direction"] == "lower"
    assert metrics["score"]["best"] == [False, True, True]
    assert metrics["acc"]["deltas"][0] is None
    assert math.isclose(metrics["acc"]["deltas"][1], 0.1)
    assert math.isclose(metrics["loss"]["deltas"][2], 0.1)
    params = {r["key"]: r for r in out["params"]}
    assert params["lr"]["status"] == "changed"
    assert params["lr"]["cells"] == [
        None,
        "changed",
        "same",
    ]
    assert params["depth"]["status"] == "removed"
    assert params["depth"]["cells"] == [None, "same", "removed"]
    tags = {r["key"]: r for r in out["tags"]}
    assert tags["new"]["status"] == "added"
    assert tags["team"]["status"] == "removed"
    files = {r["key"]: r for r in out["files"]}
    assert files["a.bin"]["cells"] == [None, "same", "removed"]
    assert files["b.bin"]["cells"] == [None, "changed", "changed"]
    assert files["b.bin"]["values"][0] == {"sha256": b.sha256, "size": 1}
    environment = {r["key"]: r for r in out["environment"]}
    assert environment["package numpy"]["values"][:2] == ["numpy==1.26.4", "NumPy==2.0.0"]
    assert environment["package numpy"]["cells"][1] == "changed"
    assert environment["package torch"]["cells"] == [None, "same", "removed"]


def test_equal_values_mark_no_best_and_differences_are_against_the_first(reg: Reg):
    reg.add(metrics={"acc": 0.9})
    reg.add(metrics={"acc": 0.9})
    out = reg.run(compare.compare_many, "m", [2, 1], actor=OWNER)
    (row,) = out["metrics"]
    assert row["status"] == "same"
    assert row["best"] == [False, False]
    assert row["deltas"] == [None, 0.0]
    assert [c["version"] for c in out["columns"]] == [2, 1]


@pytest.mark.parametrize("numbers", [[1], [1, 1], list(range(1, 12))])
def test_compare_many_takes_two_to_ten_versions(reg: Reg, numbers: list[int]):
    for _ in range(11):
        reg.add()
    with pytest.raises(errors.InvalidInput, match="compare 2 to 10 different versions"):
        reg.run(compare.compare_many, "m", numbers, actor=OWNER)


def test_compare_many_names_a_missing_version_and_hides_unreadable_models(reg: Reg):
    reg.add()
    reg.add(name="other")
    with pytest.raises(errors.VersionNotFound, match="m:9"):
        reg.run(compare.compare_many, "m", [1, 9], actor=OWNER)
    viewer = reg.viewer_of("other")
    with pytest.raises(errors.ModelNotFound) as hidden:
        reg.run(compare.compare_many, "m", [1, 2], actor=viewer)
    with pytest.raises(errors.ModelNotFound) as missing:
        reg.run(compare.compare_many, "nope", [1, 2], actor=viewer)
    assert str(hidden.value).replace("'m'", "X") == str(missing.value).replace("'nope'", "X")


@pytest.mark.parametrize(
    ("gate", "direction"),
    [
        ("metrics.k >= 1", "higher"),
        ("metrics.k < 1", "lower"),
        ("NOT metrics.k > 1", "lower"),
        ("metrics.x = 1 AND metrics.k <= 2", "lower"),
    ],
)
def test_a_gate_gives_a_metric_its_direction(reg: Reg, gate: str, direction: str):
    reg.add()
    reg.rule("production", requires=[gate])
    gated = reg.run(lambda s: compare.gated_metrics(s, models.get_model(s, "m", actor=None)))
    assert gated == {"k": direction}


@pytest.mark.parametrize(
    ("key", "direction"),
    [
        ("val_loss", "lower"),
        ("logloss", "lower"),
        ("error_rate", "lower"),
        ("p99_latency_ms", "lower"),
        ("RMSE", "lower"),
        ("wer", "lower"),
        ("perplexity", "lower"),
        ("accuracy", "higher"),
        ("name_length", "higher"),
    ],
)
def test_a_metric_name_gives_a_direction_when_no_gate_does(key: str, direction: str):
    assert compare.direction_of(key, {}) == direction


# --------------------------------------------------------------------------------------------
# metric_series


def test_metric_series_is_the_latest_versions_with_stage_markers(reg: Reg):
    for i in range(1, 8):
        reg.add(metrics={"acc": i / 10} if i != 4 else {})
    reg.run(lifecycle.promote, "m", 2, "production", actor=OWNER)
    reg.run(lifecycle.promote, "m", 6, "production", actor=OWNER)

    def series(session: Session, limit: int) -> dict[str, Any]:
        return compare.metric_series(
            session, models.get_model(session, "m", actor=None), "acc", limit=limit
        )

    out = reg.run(series, 200)
    assert [p["version"] for p in out["points"]] == [1, 2, 3, 5, 6, 7]
    assert out["points"][0]["value"] == pytest.approx(0.1)
    assert [(m["version"], m["stage"]) for m in out["markers"]] == [
        (2, "production"),
        (6, "production"),
    ]
    short = reg.run(series, 3)
    assert [p["version"] for p in short["points"]] == [5, 6, 7]
    assert [m["version"] for m in short["markers"]] == [6]
    assert (
        reg.run(
            lambda s: compare.metric_series(s, models.get_model(s, "m", actor=None), "nothing")
        )["points"]
        == []
    )


# --------------------------------------------------------------------------------------------
# Page use-cases


def test_models_page_follows_tokens_without_repeats_and_hides_unreadable(reg: Reg):
    assert browse.models_page(reg, OWNER, None, None)["empty_registry"]
    for i in range(7):
        reg.add(name=f"m{i}")
    reg.run(lifecycle.promote, "m3", 1, "production", actor=OWNER)
    seen: list[str] = []
    token = None
    while True:
        page = browse.models_page(reg, OWNER, None, token, page_size=3)
        seen += [m["name"] for m in page["items"]]
        assert not page["empty_registry"]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == [f"m{i}" for i in range(7)]
    found = browse.models_page(reg, OWNER, "stage = 'production'", None)["items"]
    assert [m["name"] for m in found] == ["m3"]
    assert found[0]["stages"] == {"production": 1}
    assert found[0]["production_since"]
    viewer = reg.viewer_of("m5")
    assert [m["name"] for m in browse.models_page(reg, viewer, None, None)["items"]] == ["m5"]
    with pytest.raises(errors.InvalidQuery):
        browse.models_page(reg, OWNER, "name = ", None)


def test_search_page_lists_versions_across_models(reg: Reg):
    reg.add(name="a", metrics={"acc": 0.9})
    reg.add(name="b", metrics={"acc": 0.5})
    page = browse.search_page(reg, OWNER, "metrics.acc > 0.8", None)
    assert [(v["name"], v["version"]) for v in page["items"]] == [("a", 1)]
    assert page["next_page_token"] is None


def test_model_overview_shows_gated_columns_production_and_pending(reg: Reg):
    reg.rule("production", requires=["metrics.acc >= 0.5"], approvals=1)
    for i in range(3):
        reg.add(metrics={"acc": 0.6 + i / 10, "loss": 1.0, "f1": 0.1})
    pending = reg.run(lifecycle.promote, "m", 1, "production", actor=ALICE, reason="go")
    request_id = pending.id
    reg.run(lifecycle.approve, request_id, actor=BOB)
    reg.run(lifecycle.promote, "m", 3, "production", actor=ALICE, reason="next")
    out = browse.model_overview(reg, OWNER, "m", metric="f1")
    assert [c["key"] for c in out["metric_columns"]] == ["acc", "f1"]
    assert out["metric_columns"][0]["gated"]
    assert out["metric_columns"][0]["direction"] == "higher"
    assert out["series"]["key"] == "f1"
    assert len(out["series"]["points"]) == 3
    assert out["production"]["version"] == 1
    assert out["production"]["request"] == {
        "id": request_id,
        "requested_by": "alice",
        "approved_by": ["bob"],
    }
    assert [(p["version"], p["state"]) for p in out["pending"]] == [(3, "pending")]
    assert out["policy"]["rules"]["production"]["requires"] == ["metrics.acc >= 0.5"]
    assert [v["version"] for v in out["versions"]] == [3, 2, 1]
    assert out["events"]
    assert out["may"]["promote"]
    viewer = reg.viewer_of("m")
    assert browse.model_overview(reg, viewer, "m")["may"] == {
        "edit": False,
        "alias": False,
        "promote": False,
        "approve": False,
        "rollback": False,
        "audit": True,
    }


def test_model_overview_without_a_policy_shows_the_common_metrics(reg: Reg):
    reg.add(metrics={"b": 1.0, "a": 2.0})
    reg.add(metrics={"b": 1.0})
    out = browse.model_overview(reg, OWNER, "m")
    assert [c["key"] for c in out["metric_columns"]] == ["b", "a"]
    assert out["production"] is None
    assert out["pending"] == []
    page = browse.model_overview(reg, OWNER, "m", page_size=1)
    assert [v["version"] for v in page["versions"]] == [2]
    token = page["next_page_token"]
    nxt = browse.model_overview(reg, OWNER, "m", page_token=token, page_size=1)
    assert [v["version"] for v in nxt["versions"]] == [1]


@pytest.mark.parametrize("page", ["model_overview", "history_view"])
def test_an_unreadable_model_answers_like_a_missing_one(reg: Reg, page: str):
    reg.add(name="secret")
    reg.add(name="open")
    viewer = reg.viewer_of("open")
    call = getattr(browse, page)
    with pytest.raises(errors.ModelNotFound) as hidden:
        call(reg, viewer, "secret")
    with pytest.raises(errors.ModelNotFound) as missing:
        call(reg, viewer, "absent")
    assert hidden.value.code == missing.value.code
    assert str(hidden.value) == str(missing.value).replace("absent", "secret")
    with pytest.raises(errors.ModelNotFound):
        browse.version_overview(reg, viewer, "secret", 1)
    with pytest.raises(errors.ModelNotFound):
        browse.version_file(reg, viewer, "secret", 1, "model.bin")


def test_version_overview_compares_with_production_and_the_previous_environment(reg: Reg):
    reg.add(metrics={"acc": 0.8, "loss": 0.5}, environment=env("numpy==1.0"))
    reg.add(metrics={"acc": 0.9, "loss": 0.6}, environment=env("numpy==2.0", "scipy==1"))
    reg.run(lifecycle.promote, "m", 1, "production", actor=OWNER)
    reg.run(versions.set_version_tags, "m:2", actor=OWNER, set_tags={"k": "v"})
    out = browse.version_overview(reg, OWNER, "m", 2)
    assert out["production_version"] == 1
    assert out["previous_version"] == 1
    metrics = {m["key"]: m for m in out["metrics"]}
    assert metrics["acc"]["better"] is True
    assert metrics["loss"]["better"] is False
    assert metrics["acc"]["delta"] == pytest.approx(0.1)
    rows = {r["key"]: r["status"] for r in out["environment"]}
    assert rows == {"python": "same", "package numpy": "changed", "package scipy": "added"}
    assert next(e["action"] for e in out["events"]) == "registry:version:tag"
    assert all(e["target"] == "m:2" for e in out["events"])
    assert out["lineage"]["ref"] == "m:2"
    first = browse.version_overview(reg, OWNER, "m", 1)
    assert first["previous_version"] is None
    assert first["production_version"] == 1
    assert all(m["delta"] is None for m in first["metrics"])
    with pytest.raises(errors.VersionNotFound):
        browse.version_overview(reg, OWNER, "m", 7)


def test_compare_view_only_diff_drops_equal_rows(reg: Reg):
    reg.add(metrics={"acc": 0.8, "same": 1.0}, params={"p": "1"})
    reg.add(metrics={"acc": 0.9, "same": 1.0}, params={"p": "1"})
    full = browse.compare_view(reg, OWNER, "m", [1, 2])
    diff = browse.compare_view(reg, OWNER, "m", [1, 2], only_diff=True)
    assert [r["key"] for r in full["metrics"]] == ["acc", "same"]
    assert [r["key"] for r in diff["metrics"]] == ["acc"]
    assert diff["params"] == []
    assert diff["files"] == []
    assert diff["counts"]["metrics"] == 2
    assert diff["only_diff"]


def test_history_view_is_newest_first(reg: Reg):
    reg.add()
    reg.add()
    reg.run(lifecycle.promote, "m", 1, "production", actor=OWNER)
    reg.run(lifecycle.promote, "m", 2, "production", actor=OWNER)
    entries = browse.history_view(reg, OWNER, "m")["entries"]
    assert [(e["version"], e["to_stage"]) for e in entries] == [
        (2, "production"),
        (1, "archived"),
        (1, "production"),
    ]


def test_version_file_answers_digest_and_size(reg: Reg):
    reg.add(files=[reg.file("dir/w.bin", b"weights!")])
    digest, size = browse.version_file(reg, OWNER, "m", 1, "dir/w.bin")
    assert size == 8
    assert reg.store.exists(digest)
    with pytest.raises(errors.VersionNotFound, match="no file"):
        browse.version_file(reg, OWNER, "m", 1, "other.bin")
    with pytest.raises(errors.InvalidInput):
        browse.version_file(reg, OWNER, "m", 1, "../etc/passwd")

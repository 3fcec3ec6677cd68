"""A page of versions serialized in bulk reads exactly like each version serialized alone."""

from __future__ import annotations

from pathlib import Path

import modelreg


def test_a_listed_page_equals_the_versions_read_one_by_one(reg: modelreg.Registry, files: Path):
    reg.register(
        "fraud",
        files / "model_dir",
        metrics={"acc": 0.9, "auc": 0.8},
        params={"lr": "0.1", "depth": "3"},
        tags={"team": "risk", "b": "2"},
        datasets=["train@v3", "eval@sha256:" + "a" * 64],
        description="first",
    )
    reg.register("fraud", files / "model.pkl", parents=["fraud:1"], semver="1.1.0")
    reg.register("other", files / "model.pkl")
    reg.set_alias("fraud", "champion", 1)
    reg.set_alias("fraud", "backup", 1)
    reg.set_alias("fraud", "latest-good", 2)
    listed = {v.version: v.to_dict() for v in reg.list_versions("fraud")}
    for number, data in listed.items():
        assert data == reg.get_version(f"fraud:{number}").to_dict()
    found = {(v.name, v.version): v.to_dict() for v in reg.search()}
    assert found[("other", 1)] == reg.get_version("other:1").to_dict()
    assert found[("fraud", 1)] == listed[1]
    assert listed[1]["aliases"] == ["backup", "champion"]
    assert [f["path"] for f in listed[1]["files"]] == sorted(f["path"] for f in listed[1]["files"])

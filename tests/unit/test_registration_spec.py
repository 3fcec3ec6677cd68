"""``registration.RegistrationSpec``: a registration's input, checked once when it is made.

The same checks and messages as before the spec existed, in the same order, without a database.
"""

from __future__ import annotations

import dataclasses

import pytest

from modelreg.errors import InvalidInput, InvalidName, InvalidPath, InvalidReference
from modelreg.names import Stage
from modelreg.services.registration import RegistrationSpec
from modelreg.services.versions import FileSpec, Lineage

DIGEST = "ab" * 32
FILE = FileSpec("model.bin", DIGEST, 7)


def test_defaults_and_none_read_as_empty():
    spec = RegistrationSpec(
        name="m",
        files=[FILE],
        metrics=None,  # type: ignore[arg-type]
        params=None,  # type: ignore[arg-type]
        tags=None,  # type: ignore[arg-type]
        description=None,  # type: ignore[arg-type]
        lineage=None,  # type: ignore[arg-type]
        environment=None,  # type: ignore[arg-type]
    )
    assert (spec.metrics, spec.params, spec.tags, spec.description) == ({}, {}, {}, "")
    assert spec.lineage == Lineage()
    assert spec.environment == {"python": None, "packages": []}
    assert (spec.dataset_refs, spec.parent_refs) == ((), ())
    assert (spec.stage, spec.first_stage, spec.semver, spec.number) == (None, None, None, None)


def test_every_field_holds_its_checked_value():
    spec = RegistrationSpec(
        name="m",
        files=[FileSpec("z.json", "sha256:" + DIGEST, 2), FILE],
        metrics={"acc": 1},
        params={"depth": 3},  # type: ignore[dict-item]
        tags={"team": "fraud"},
        semver=" 1.4.0-rc.1 ",
        lineage=Lineage(datasets=["tx@v1"], parents=["base:2"]),
        environment={"python": "3.12", "packages": ["numpy==2.0"], "source": "venv"},
        stage="Production",
        number=7,
        idempotency_key="ci-41",
    )
    assert [f.path for f in spec.files] == ["model.bin", "z.json"]
    assert spec.files[1].sha256 == DIGEST
    assert spec.metrics == {"acc": 1.0}
    assert isinstance(spec.metrics["acc"], float)
    assert spec.params == {"depth": "3"}
    assert spec.semver == "1.4.0-rc.1"
    assert spec.stage is Stage.PRODUCTION
    assert spec.first_stage is Stage.PRODUCTION
    assert spec.dataset_refs == (("tx", "v1"),)
    assert spec.parent_refs == (("base", 2),)
    assert spec.environment == {"python": "3.12", "packages": ["numpy==2.0"], "source": "venv"}


def test_a_spec_cannot_change_after_its_checks():
    spec = RegistrationSpec(name="m", files=[FILE])
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.semver = "not checked"  # type: ignore[misc]


BAD = [
    ({"files": []}, InvalidInput, "a version needs at least one file"),
    ({"files": [FILE, FILE]}, InvalidPath, "file path 'model.bin' appears twice"),
    ({"files": [FileSpec("a", "x", 1)]}, InvalidInput, "invalid SHA-256 digest 'x'"),
    ({"files": [FileSpec("a", DIGEST, -1)]}, InvalidInput, "invalid size for 'a'"),
    ({"metrics": {"acc": "high"}}, InvalidName, "metric 'acc' must be a number"),
    ({"params": {"a": "x\x00"}}, InvalidName, "param 'a' contains a NUL character"),
    ({"tags": {"bad key": "x"}}, InvalidName, "invalid tag 'bad key'"),
    ({"description": "d" * 20_001}, InvalidName, "description is longer than 20000"),
    ({"lineage": Lineage(datasets=["nover"])}, InvalidName, "invalid dataset 'nover'"),
    ({"lineage": Lineage(parents=["p"])}, InvalidReference, "'p' names a model"),
    ({"environment": {"packages": "numpy"}}, InvalidInput, "environment.packages must be"),
    ({"semver": "1.0.0", "bump": "minor"}, InvalidInput, "give --semver or --bump, not both"),
    ({"number": 0}, InvalidInput, "a version number is a whole number from 1"),
    ({"number": True}, InvalidInput, "a version number is a whole number from 1"),
    ({"stage": "live"}, InvalidReference, "unknown stage 'live'"),
    ({"semver": "1.0"}, InvalidName, "invalid semantic version '1.0'"),
    ({"bump": "huge"}, InvalidName, "--bump takes major, minor or patch, not 'huge'"),
    ({"idempotency_key": ""}, InvalidInput, "an idempotency key has 1 to 256 printable"),
    ({"lineage": Lineage(run_id="x" * 257)}, InvalidInput, "run_id must be text of at most 256"),
    ({"framework": "f" * 65}, InvalidInput, "framework must be text of at most 64 characters"),
]


@pytest.mark.parametrize(("fields", "error", "message"), BAD, ids=[b[2][:40] for b in BAD])
def test_bad_input_is_refused_with_its_message(fields, error, message):
    with pytest.raises(error) as caught:
        RegistrationSpec(**{"name": "m", "files": [FILE], **fields})
    assert caught.value.message.startswith(message)


def test_the_first_failing_check_answers():
    # Files are checked first, then metrics ... lineage last: one error, always the same one.
    with pytest.raises(InvalidInput, match="at least one file"):
        RegistrationSpec(name="m", files=[], semver="1.0.0", bump="minor", number=0)
    with pytest.raises(InvalidInput, match="--semver or --bump"):
        RegistrationSpec(name="m", files=[FILE], semver="1.0.0", bump="minor", number=0)
    with pytest.raises(InvalidInput, match="whole number from 1"):
        RegistrationSpec(name="m", files=[FILE], number=0, idempotency_key="")

"""``names.Target``: a stage or an alias, read once from text, with one canonical spelling."""

from __future__ import annotations

import pytest

from modelreg import errors
from modelreg.errors import InvalidName, InvalidReference
from modelreg.names import Stage, Target, parse_target


@pytest.mark.parametrize(
    ("text", "stage"),
    [
        ("production", Stage.PRODUCTION),
        ("  Production ", Stage.PRODUCTION),
        ("STAGING", Stage.STAGING),
        ("archived", Stage.ARCHIVED),
        ("none", Stage.NONE),
        ("development", Stage.NONE),
    ],
)
def test_a_stage_reads_case_insensitively(text, stage):
    target = Target.parse(text)
    assert target == Target(stage)
    assert (target.stage, target.alias, target.is_alias) == (stage, None, False)
    assert target.label == str(target) == stage.value
    assert target.on("team/fraud") == f"team/fraud/{stage.value}"


def test_an_alias_keeps_its_spelling():
    target = Target.parse(" @Champion-2 ")
    assert target == Target(alias="Champion-2")
    assert (target.stage, target.alias, target.is_alias) == (None, "Champion-2", True)
    assert target.label == str(target) == "@Champion-2"
    assert target.on("fraud") == "fraud@Champion-2"


def test_a_target_parses_to_itself_and_hashes_by_value():
    target = Target.parse("@champion")
    assert Target.parse(target) is target
    assert {Target.parse("@champion"), target, Target.parse("production")} == {
        target,
        Target(Stage.PRODUCTION),
    }


@pytest.mark.parametrize("text", ["", "   ", None, 5])
def test_nothing_is_not_a_target(text):
    with pytest.raises(InvalidReference) as caught:
        Target.parse(text)
    assert caught.value.message == "a target is a stage or @alias"
    assert caught.value.detail == {"target": text}


def test_an_unknown_stage_lists_the_stages():
    with pytest.raises(InvalidReference) as caught:
        Target.parse("prod")
    assert caught.value.message == (
        "unknown stage 'prod'; expected one of none, staging, production, archived"
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("@", "invalid alias ''"),
        ("@1st", "invalid alias '1st'"),
        ("@two words", "invalid alias 'two words'"),
        ("@" + "a" * 65, "invalid alias"),
        ("@latest", "alias 'latest' is reserved"),
        ("@v2", "alias 'v2' is reserved"),
    ],
)
def test_an_invalid_alias_is_refused_as_validate_alias_does(text, why):
    with pytest.raises(InvalidName) as caught:
        Target.parse(text)
    assert caught.value.message.startswith(why)
    assert caught.value.detail == {"alias": text[1:]}


def test_a_target_made_directly_is_checked_too():
    with pytest.raises(InvalidName):
        Target(alias="no spaces")
    with pytest.raises(TypeError):
        Target()
    with pytest.raises(TypeError):
        Target(Stage.STAGING, "champion")
    with pytest.raises(TypeError):
        Target("production")  # text goes through Target.parse


def test_parse_target_is_the_canonical_text():
    assert parse_target(" Staging") == "staging"
    assert parse_target("@champion") == "@champion"
    with pytest.raises(InvalidReference):
        parse_target("latest")


@pytest.mark.parametrize(
    ("answer", "where"),
    [
        ({"target": "@champion", "to_alias": "champion", "to_stage": None}, "fraud@champion"),
        ({"target": "production", "to_alias": None, "to_stage": "production"}, "fraud/production"),
    ],
)
def test_a_refusal_names_the_target_as_target_on_does(answer, where):
    promotion = {"id": 3, "name": "fraud", "version": 2, **answer}
    promotion["failed_criteria"] = [{"criterion": "metrics.auc >= 0.9", "message": "0.8"}]
    refusal = errors.refused(promotion)
    assert where == Target.parse(answer["target"]).on("fraud")
    assert refusal.message == (
        f"version 2 may not enter {where} (request #3): metrics.auc >= 0.9 (0.8)"
    )

"""The grammar of names, aliases, keys, manifest paths, references and semantic versions."""

from __future__ import annotations

import math

import pytest

from modelreg.errors import InvalidInput, InvalidName, InvalidPath, InvalidReference
from modelreg.names import (
    Ref,
    Semver,
    Stage,
    normalize_name,
    parse_dataset,
    parse_parent,
    parse_ref,
    validate_alias,
    validate_key,
    validate_metric,
    validate_model_name,
    validate_text,
)
from modelreg.paths import validate_manifest_path


class TestModelName:
    @pytest.mark.parametrize(
        "name",
        [
            "m",
            "fraud-detector",
            "Fraud_Detector",
            "fraud.detector",
            "_private",
            "0model",
            "v2",
            "team/name",
            "team-a/model.v2",
            "a" * 128,
            "team/" + "a" * (128 - len("team/")),
        ],
    )
    def test_valid_names_are_returned_unchanged(self, name):
        assert validate_model_name(name) == name

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("", id="empty"),
            pytest.param("a" * 129, id="129-chars"),
            pytest.param("a" * 300, id="300-chars"),
            pytest.param("team/" + "a" * (128 - len("team/") + 1), id="129-with-namespace"),
            pytest.param("..", id="dotdot"),
            pytest.param("../etc", id="dotdot-prefix"),
            pytest.param("a/b/c", id="two-namespaces"),
            pytest.param("/name", id="leading-slash"),
            pytest.param("team/", id="trailing-slash"),
            pytest.param("team//name", id="empty-segment"),
            pytest.param("team/.name", id="segment-leading-dot"),
            pytest.param("team/-name", id="segment-leading-dash"),
            pytest.param("a\x00b", id="nul"),
            pytest.param("-name", id="leading-dash"),
            pytest.param(".name", id="leading-dot"),
            pytest.param("a;rm", id="semicolon"),
            pytest.param("a$b", id="dollar"),
            pytest.param("a`id`", id="backtick"),
            pytest.param("a|b", id="pipe"),
            pytest.param("a b", id="space"),
            pytest.param(" a", id="leading-space"),
            pytest.param("a'--", id="sql-comment"),
            pytest.param('a"b', id="double-quote"),
            pytest.param("a\\b", id="backslash"),
            pytest.param("a:b", id="colon"),
            pytest.param("a@b", id="at"),
            pytest.param("modèle", id="unicode-accent"),
            pytest.param("模型", id="unicode-cjk"),
            pytest.param("ｍodel", id="unicode-fullwidth"),
            pytest.param("a\tb", id="tab"),
        ],
    )
    def test_invalid_names_are_refused(self, name):
        with pytest.raises(InvalidName):
            validate_model_name(name)

    @pytest.mark.parametrize("value", [None, 3, b"model"])
    def test_non_strings_are_refused(self, value):
        with pytest.raises(InvalidName):
            validate_model_name(value)

    def test_too_long_name_is_truncated_in_detail(self):
        with pytest.raises(InvalidName) as info:
            validate_model_name("a" * 300)
        assert info.value.detail["name"] == "a" * 128 + "…"
        assert "300" in info.value.message

    def test_invalid_name_is_an_invalid_input(self):
        with pytest.raises(InvalidInput) as info:
            validate_model_name("a;rm")
        assert info.value.code == "invalid_name"
        assert info.value.detail == {"name": "a;rm"}


class TestNormalizeName:
    @pytest.mark.parametrize(
        ("name", "normalized"),
        [
            ("Fraud_Detector", "fraud-detector"),
            ("fraud-detector", "fraud-detector"),
            ("fraud.detector", "fraud-detector"),
            ("FRAUD__DETECTOR", "fraud-detector"),
            ("fraud-_.detector", "fraud-detector"),
            ("model", "model"),
            ("Team_A/Model.X", "team-a/model-x"),
            ("v1.2.3", "v1-2-3"),
        ],
    )
    def test_folds_case_and_separator_runs(self, name, normalized):
        assert normalize_name(name) == normalized

    @pytest.mark.parametrize(
        ("left", "right"),
        [
            ("Fraud_Detector", "fraud-detector"),
            ("Fraud_Detector", "fraud.detector"),
            ("fraud-detector", "fraud.detector"),
            ("team/Model_A", "TEAM/model.a"),
        ],
    )
    def test_confusable_names_share_a_key(self, left, right):
        assert normalize_name(left) == normalize_name(right)

    @pytest.mark.parametrize(
        ("left", "right"),
        [
            ("fraud-detector", "frauddetector"),
            ("team/model", "team-model"),
            ("a/b", "b/a"),
        ],
    )
    def test_distinct_names_keep_distinct_keys(self, left, right):
        assert normalize_name(left) != normalize_name(right)

    def test_namespace_separator_is_kept(self):
        assert normalize_name("Team.A/Model").split("/") == ["team-a", "model"]


class TestAlias:
    @pytest.mark.parametrize(
        "alias",
        ["champion", "Champion", "_shadow", "c", "blue-green", "a.b_c-d", "v3a", "va", "version2"],
    )
    def test_valid_aliases_are_returned_unchanged(self, alias):
        assert validate_alias(alias) == alias

    def test_64_characters_is_the_maximum(self):
        alias = "a" * 64
        assert validate_alias(alias) == alias
        with pytest.raises(InvalidName):
            validate_alias(alias + "a")

    @pytest.mark.parametrize("alias", ["latest", "LATEST", "Latest", "v3", "V3", "v0", "v123456"])
    def test_reserved_aliases_are_refused(self, alias):
        with pytest.raises(InvalidName, match="reserved"):
            validate_alias(alias)

    @pytest.mark.parametrize(
        "alias",
        ["", "3", "3x", "-x", ".x", "a b", "a/b", "a@b", "a:b", "a\x00", "été", None, 7],
    )
    def test_malformed_aliases_are_refused(self, alias):
        with pytest.raises(InvalidName) as info:
            validate_alias(alias)
        assert "reserved" not in info.value.message


class TestKey:
    @pytest.mark.parametrize(
        "key",
        ["auc", "f1-score", "team:ml/owner", "_x", "0abc", "a.b.c", "A_B", "k" * 250],
    )
    def test_valid_keys_are_returned_unchanged(self, key):
        assert validate_key(key) == key

    @pytest.mark.parametrize(
        "key",
        [
            "",
            ".x",
            "-x",
            ":x",
            "/x",
            "a b",
            "a=b",
            "a'b",
            "a\x00",
            "métrique",
            "k" * 251,
            None,
        ],
    )
    def test_invalid_keys_are_refused(self, key):
        with pytest.raises(InvalidName):
            validate_key(key)

    def test_kind_names_the_rejected_thing(self):
        with pytest.raises(InvalidName) as info:
            validate_key("a b", kind="tag")
        assert info.value.detail == {"tag": "a b"}
        assert info.value.message.startswith("invalid tag ")


class TestMetric:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [(1, 1.0), (0.5, 0.5), (-2, -2.0), ("0.25", 0.25), (0, 0.0)],
    )
    def test_finite_numbers_become_floats(self, value, expected):
        result = validate_metric("auc", value)
        assert isinstance(result, float)
        assert result == expected

    @pytest.mark.parametrize(
        "value", [True, False, None, "high", math.nan, math.inf, -math.inf, [1]]
    )
    def test_non_numbers_and_non_finite_are_refused(self, value):
        with pytest.raises(InvalidName):
            validate_metric("auc", value)

    def test_metric_key_is_validated(self):
        with pytest.raises(InvalidName) as info:
            validate_metric("bad key", 1.0)
        assert "metric" in info.value.detail


class TestText:
    def test_text_within_limit_is_returned(self):
        assert validate_text("x" * 10, kind="description", limit=10) == "x" * 10

    @pytest.mark.parametrize(
        "value", [pytest.param("x" * 11, id="too-long"), pytest.param("a\x00b", id="nul"), 5]
    )
    def test_bad_text_is_refused(self, value):
        with pytest.raises(InvalidName):
            validate_text(value, kind="description", limit=10)


class TestManifestPath:
    @pytest.mark.parametrize(
        "path",
        [
            "model.pkl",
            "a/b.txt",
            "model_dir/sub/config.json",
            "données/модель.bin",
            "数据/权重.bin",
            "a b/c d.txt",
            ".hidden",
            "模型v2.bin",
            "αβγ/λ.txt",
            "console.txt",
            "com10.txt",
            "lpt.txt",
            "nul-model.bin",
            "a+b=c@d,e~f (1)[2]{3}-4.txt",
            "x" * 255,
            "/".join(["a" * 200] * 5) + "/" + "b" * 19,  # exactly 1024
        ],
    )
    def test_safe_relative_paths_are_accepted(self, path):
        assert validate_manifest_path(path) == path

    @pytest.mark.parametrize(
        "path",
        [
            pytest.param("", id="empty"),
            pytest.param("/etc/passwd", id="absolute"),
            pytest.param("..", id="dotdot"),
            pytest.param("../x", id="dotdot-prefix"),
            pytest.param("a/../b", id="dotdot-middle"),
            pytest.param("a/..", id="dotdot-suffix"),
            pytest.param(".", id="dot"),
            pytest.param("./a", id="dot-prefix"),
            pytest.param("a/./b", id="dot-middle"),
            pytest.param("a//b", id="empty-part"),
            pytest.param("a/", id="trailing-slash"),
            pytest.param("a\\b", id="backslash"),
            pytest.param("..\\x", id="backslash-dotdot"),
            pytest.param("C:/x", id="drive-letter"),
            pytest.param("c:x", id="drive-relative"),
            pytest.param("a\x00b", id="nul"),
            pytest.param("a\x01b", id="control-char"),
            pytest.param("a\nb", id="newline"),
            pytest.param("a\n", id="trailing-newline"),
            pytest.param("a\x7f", id="del"),
            pytest.param("a ", id="trailing-space"),
            pytest.param(" a", id="leading-space"),
            pytest.param("dir /a", id="part-trailing-space"),
            pytest.param("a#b", id="hash"),
            pytest.param("a?b", id="question-mark"),
            pytest.param("a;b", id="semicolon"),
            pytest.param("a*b", id="star"),
            pytest.param("a:b", id="colon"),
            pytest.param("a$b", id="dollar"),
            pytest.param("a'b", id="quote"),
            pytest.param("%2e%2e/x", id="percent-encoded-dotdot"),
            pytest.param("a%20b", id="percent"),
            pytest.param("．．/x", id="fullwidth-dots"),
            pytest.param("x" * 256, id="part-256"),
            pytest.param("/".join(["a" * 200] * 5) + "/" + "b" * 20, id="1025-chars"),
        ],
    )
    def test_unsafe_paths_are_refused(self, path):
        with pytest.raises(InvalidPath):
            validate_manifest_path(path)

    @pytest.mark.parametrize(
        ("path", "rule"),
        [
            # Look-alikes (issue 18, finding 14): a word mixing confusable scripts ...
            pytest.param("mod\u0435l.bin", "lookalike", id="cyrillic-e-in-latin"),
            pytest.param("sub/\u0455mall.bin", "lookalike", id="cyrillic-dze-in-latin"),
            pytest.param("m\u03bfdel.bin", "lookalike", id="greek-omicron-in-latin"),
            pytest.param("\u0440\u0430y.bin", "lookalike", id="latin-in-cyrillic"),
            pytest.param("data.\u03a9hm", "lookalike", id="greek-in-latin-extension"),
            pytest.param("m\u0585del.bin", "lookalike", id="armenian-oh-in-latin"),
            # ... or compatibility characters that fold to ASCII.
            pytest.param("\uff4dodel.bin", "lookalike", id="fullwidth-m"),
            pytest.param("\ufb01le.bin", "lookalike", id="ligature-fi"),
            pytest.param("\U0001d426odel.bin", "lookalike", id="mathematical-bold-m"),
            pytest.param("\u2170.txt", "lookalike", id="roman-numeral-one"),
            # Not NFC: the OHM SIGN and ANGSTROM SIGN compose to Greek Omega and Latin A-ring.
            pytest.param("\u2126.bin", "nfc", id="ohm-sign"),
            pytest.param("\u212bngstrom.bin", "nfc", id="angstrom-sign"),
            # Windows device names, with any extension, in any case, in any folder.
            pytest.param("CON", "reserved", id="con"),
            pytest.param("sub/aux.txt", "reserved", id="aux-in-folder"),
            pytest.param("Nul.tar.gz", "reserved", id="nul-two-extensions"),
            pytest.param("prn", "reserved", id="prn-lower"),
            pytest.param("COM1.log", "reserved", id="com1"),
            pytest.param("lpt9", "reserved", id="lpt9"),
            pytest.param("con .txt", "reserved", id="con-space-before-extension"),
            pytest.param("aux/model.bin", "reserved", id="reserved-folder"),
            pytest.param("COM\u00b9", "lookalike", id="com-superscript-one"),
            # A trailing dot is dropped on Windows: "model.bin." would land on "model.bin".
            pytest.param("model.bin.", "dot", id="trailing-dot"),
            pytest.param("dir./model.bin", "dot", id="folder-trailing-dot"),
            pytest.param("...", "dot", id="three-dots"),
        ],
    )
    def test_ambiguous_names_are_refused_when_new(self, path, rule):
        with pytest.raises(InvalidPath) as info:
            validate_manifest_path(path)
        assert info.value.detail == {"path": path, "rule": rule}

    @pytest.mark.parametrize(
        "path", ["CON", "sub/aux.txt", "model.bin.", "mod\u0435l.bin", "\u2126.bin"]
    )
    def test_already_stored_ambiguous_names_stay_reachable(self, path):
        # Reads, deletes and downloads name what may have been stored before the rule.
        assert validate_manifest_path(path, existing=True) == path

    @pytest.mark.parametrize("path", ["../x", "a\\b", "/etc/passwd", "a//b"])
    def test_existing_paths_still_get_the_safety_rules(self, path):
        with pytest.raises(InvalidPath):
            validate_manifest_path(path, existing=True)

    @pytest.mark.parametrize("value", [None, b"a.txt", 1])
    def test_non_strings_are_refused(self, value):
        with pytest.raises(InvalidPath):
            validate_manifest_path(value)

    def test_table_path_is_exactly_1024_characters(self):
        assert len("/".join(["a" * 200] * 5) + "/" + "b" * 19) == 1024

    def test_error_detail_names_the_path(self):
        with pytest.raises(InvalidPath) as info:
            validate_manifest_path("a/../b")
        assert info.value.detail == {"path": "a/../b"}
        assert info.value.code == "invalid_path"


class TestStage:
    @pytest.mark.parametrize(
        ("text", "stage"),
        [
            ("production", Stage.PRODUCTION),
            ("Production", Stage.PRODUCTION),
            (" STAGING ", Stage.STAGING),
            ("archived", Stage.ARCHIVED),
            ("none", Stage.NONE),
            ("development", Stage.NONE),
            ("Development", Stage.NONE),
        ],
    )
    def test_parse(self, text, stage):
        assert Stage.parse(text) is stage

    @pytest.mark.parametrize("text", ["", "prod", "latest", "released"])
    def test_unknown_stage_is_refused(self, text):
        with pytest.raises(InvalidReference):
            Stage.parse(text)


class TestParseRef:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("m:3", Ref("m", version=3)),
            ("m:1", Ref("m", version=1)),
            ("m:01", Ref("m", version=1)),
            ("m:latest", Ref("m", latest=True)),
            ("m@champion", Ref("m", alias="champion")),
            ("m/production", Ref("m", stage=Stage.PRODUCTION)),
            ("m/Production", Ref("m", stage=Stage.PRODUCTION)),
            ("m/staging", Ref("m", stage=Stage.STAGING)),
            ("m/archived", Ref("m", stage=Stage.ARCHIVED)),
            ("m/none", Ref("m", stage=Stage.NONE)),
            ("m/development", Ref("m", stage=Stage.NONE)),
            ("m/latest", Ref("m", latest=True)),
            ("m/LATEST", Ref("m", latest=True)),
            ("m/7", Ref("m", version=7)),
            ("models:/m/3", Ref("m", version=3)),
            ("models:/m/production", Ref("m", stage=Stage.PRODUCTION)),
            ("models:/m/latest", Ref("m", latest=True)),
            ("models:/m@a", Ref("m", alias="a")),
            ("models:/team/m/2", Ref("team/m", version=2)),
            ("models:/team/m@champion", Ref("team/m", alias="champion")),
            ("team/m:2", Ref("team/m", version=2)),
            ("team/m@champion", Ref("team/m", alias="champion")),
            ("team/m/staging", Ref("team/m", stage=Stage.STAGING)),
            ("m", Ref("m")),
            ("team/m", Ref("team/m")),
            ("  m:3  ", Ref("m", version=3)),
            ("Fraud_Detector:4", Ref("Fraud_Detector", version=4)),
        ],
    )
    def test_forms(self, text, expected):
        assert parse_ref(text) == expected

    @pytest.mark.parametrize(
        ("text", "is_model"),
        [("m", True), ("team/m", True), ("m:3", False), ("m@a", False), ("m/latest", False)],
    )
    def test_is_model(self, text, is_model):
        assert parse_ref(text).is_model is is_model

    @pytest.mark.parametrize(
        ("text", "canonical"),
        [
            ("models:/m/3", "m:3"),
            ("m@champion", "m@champion"),
            ("models:/m@champion", "m@champion"),
            ("m/Production", "m/production"),
            ("m:latest", "m/latest"),
            ("m/development", "m/none"),
            ("team/m", "team/m"),
        ],
    )
    def test_str_is_the_canonical_short_form(self, text, canonical):
        ref = parse_ref(text)
        assert str(ref) == canonical
        assert parse_ref(canonical) == ref

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("", id="empty"),
            pytest.param("   ", id="blank"),
            pytest.param("models:/m", id="uri-without-version"),
            pytest.param("models:/team/m", id="uri-namespace-without-version"),
            pytest.param("models:/", id="uri-empty"),
            pytest.param("m:0", id="version-zero"),
            pytest.param("m:00", id="version-zero-padded"),
            pytest.param("m/0", id="stage-slot-zero"),
            pytest.param("m:-1", id="negative"),
            pytest.param("m:abc", id="word-after-colon"),
            pytest.param("m:production", id="stage-after-colon"),
            pytest.param("m:3.0", id="float-version"),
            pytest.param("m:", id="colon-nothing"),
            pytest.param(":3", id="no-name"),
            pytest.param("m:" + "9" * 19, id="version-19-digits"),
            pytest.param("m@latest", id="alias-latest"),
            pytest.param("m@v3", id="alias-v3"),
            pytest.param("m@", id="alias-empty"),
            pytest.param("@champion", id="alias-no-name"),
            pytest.param("m@bad alias", id="alias-space"),
            pytest.param("a/b/c", id="two-namespaces"),
            pytest.param("a;rm:1", id="bad-name-version"),
            pytest.param("-m/latest", id="bad-name-latest"),
            pytest.param("m\x00:1", id="nul"),
            pytest.param("m" * 513, id="too-long"),
            pytest.param("m:3@a", id="colon-then-at"),
        ],
    )
    def test_invalid_references_are_refused(self, text):
        with pytest.raises(InvalidReference):
            parse_ref(text)

    @pytest.mark.parametrize("value", [None, 3])
    def test_non_strings_are_refused(self, value):
        with pytest.raises(InvalidReference):
            parse_ref(value)

    def test_invalid_name_inside_a_reference_is_reported_as_a_reference_error(self):
        with pytest.raises(InvalidReference) as info:
            parse_ref("a;rm:1")
        assert info.value.code == "invalid_reference"
        assert info.value.detail == {"name": "a;rm"}

    @pytest.mark.parametrize("text", ["m", "team/m"])
    def test_bare_model_refused_when_a_version_is_required(self, text):
        with pytest.raises(InvalidReference, match="names a model"):
            parse_ref(text, allow_model=False)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("m:3", Ref("m", version=3)),
            ("m@a", Ref("m", alias="a")),
            ("m/latest", Ref("m", latest=True)),
        ],
    )
    def test_version_refs_allowed_when_a_version_is_required(self, text, expected):
        assert parse_ref(text, allow_model=False) == expected


class TestSemver:
    @pytest.mark.parametrize(
        ("text", "fields"),
        [
            ("1.2.3", (1, 2, 3, None, None)),
            ("0.0.0", (0, 0, 0, None, None)),
            ("1.0.0-rc1", (1, 0, 0, "rc1", None)),
            ("1.0.0-alpha.1", (1, 0, 0, "alpha.1", None)),
            ("1.0.0+build.5", (1, 0, 0, None, "build.5")),
            ("1.0.0-rc.1+sha.abc", (1, 0, 0, "rc.1", "sha.abc")),
            ("10.20.30", (10, 20, 30, None, None)),
            (" 1.2.3 ", (1, 2, 3, None, None)),
        ],
    )
    def test_parse(self, text, fields):
        version = Semver.parse(text)
        assert (version.major, version.minor, version.patch, version.pre, version.build) == fields

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "v1.2.3",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-01",
            "1.2.3-rc..1",
            "-1.2.3",
            "1.2.x",
            "a.b.c",
            None,
        ],
    )
    def test_invalid_versions_are_refused(self, text):
        with pytest.raises(InvalidName):
            Semver.parse(text)

    @pytest.mark.parametrize("text", ["1.2.3", "1.0.0-rc.1", "1.0.0+b5", "1.0.0-rc.1+b5"])
    def test_str_round_trips(self, text):
        assert str(Semver.parse(text)) == text

    @pytest.mark.parametrize(
        ("text", "part", "expected"),
        [
            ("1.2.3", "major", "2.0.0"),
            ("1.2.3", "minor", "1.3.0"),
            ("1.2.3", "patch", "1.2.4"),
            ("0.9.9", "minor", "0.10.0"),
            ("1.2.3-rc1+b7", "patch", "1.2.4"),
            ("1.2.3+b7", "major", "2.0.0"),
        ],
    )
    def test_bump(self, text, part, expected):
        assert str(Semver.parse(text).bump(part)) == expected

    @pytest.mark.parametrize("part", ["", "Major", "build", "pre"])
    def test_bump_refuses_unknown_parts(self, part):
        with pytest.raises(InvalidName):
            Semver(1, 2, 3).bump(part)

    def test_sort_key_orders_by_precedence(self):
        ordered = [
            "0.9.0",
            "1.0.0-alpha",
            "1.0.0-beta",
            "1.0.0-rc1",
            "1.0.0",
            "1.0.1",
            "1.2.0",
            "1.10.0",
            "2.0.0",
            "10.0.0",
        ]
        shuffled = sorted(ordered, reverse=True)
        assert sorted(shuffled, key=lambda t: Semver.parse(t).sort_key()) == ordered

    @pytest.mark.parametrize(
        ("lower", "higher"),
        [
            ("1.0.0-rc1", "1.0.0"),
            ("1.0.0", "1.0.1"),
            ("1.0.1", "1.10.0"),
            ("1.9.0", "1.10.0"),
            ("1.99.99", "2.0.0"),
            ("1.0.0-rc1", "1.0.1-alpha"),
        ],
    )
    def test_sort_key_pairs(self, lower, higher):
        assert Semver.parse(lower).sort_key() < Semver.parse(higher).sort_key()

    def test_build_metadata_does_not_change_precedence(self):
        assert Semver.parse("1.0.0+a").sort_key() == Semver.parse("1.0.0+b").sort_key()
        assert Semver.parse("1.0.0+a").sort_key() == Semver.parse("1.0.0").sort_key()


class TestParseDataset:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("transactions@2024-06", ("transactions", "2024-06")),
            ("features@sha256:" + "a" * 64, ("features", "sha256:" + "a" * 64)),
            ("s3:/bucket/data.v2@v1", ("s3:/bucket/data.v2", "v1")),
            ("d@v 1", ("d", "v 1")),
            ("d" * 256 + "@1", ("d" * 256, "1")),
            ("d@" + "r" * 256, ("d", "r" * 256)),
        ],
    )
    def test_valid(self, text, expected):
        assert parse_dataset(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("", id="empty"),
            pytest.param("transactions", id="no-at"),
            pytest.param("@v1", id="no-name"),
            pytest.param("d@", id="no-ref"),
            pytest.param(".d@v1", id="leading-dot"),
            pytest.param("d e@v1", id="space-in-name"),
            pytest.param("a@b@c", id="at-in-name"),
            pytest.param("d@v\x00", id="nul-in-ref"),
            pytest.param("d@v\n1", id="newline-in-ref"),
            pytest.param("d" * 257 + "@1", id="name-257"),
            pytest.param("d@" + "r" * 257, id="ref-257"),
            pytest.param(None, id="none"),
        ],
    )
    def test_invalid(self, text):
        with pytest.raises(InvalidName):
            parse_dataset(text)


class TestParseParent:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("m:3", ("m", 3)),
            ("team/m:12", ("team/m", 12)),
            ("models:/m/3", ("m", 3)),
            ("m/4", ("m", 4)),
        ],
    )
    def test_valid(self, text, expected):
        assert parse_parent(text) == expected

    @pytest.mark.parametrize(
        "text",
        ["", "m", "team/m", "m@champion", "m/latest", "m:latest", "m/production", "m:0", "m:x"],
    )
    def test_a_parent_needs_a_version_number(self, text):
        with pytest.raises(InvalidReference):
            parse_parent(text)

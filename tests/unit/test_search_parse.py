"""The search language front end: ``search.tokenize`` and ``search.parse`` (no SQL)."""

from __future__ import annotations

import pytest

from modelreg.errors import InvalidInput, InvalidQuery
from modelreg.services import search
from modelreg.services.search import BoolOp, Compare, Field, Not, Order, Query


def shape(node: object) -> str:
    """A compact s-expression of a syntax tree, positions left out."""
    if node is None:
        return "-"
    if isinstance(node, BoolOp):
        return "(" + node.op + " " + " ".join(shape(n) for n in node.operands) + ")"
    if isinstance(node, Not):
        return f"(not {shape(node.operand)})"
    assert isinstance(node, Compare)
    field = ".".join(node.field.parts)
    neg = "not " if node.negate else ""
    if node.op == "null":
        return f"[{field} is {neg}null]"
    return f"[{field} {neg}{node.op} {node.value!r}]"


def where(text: str) -> str:
    return shape(search.parse(text).where)


def order(text: str) -> list[tuple[tuple[str, ...], bool]]:
    return [(o.field.parts, o.descending) for o in search.parse(text).order_by]


def kinds(text: str) -> list[tuple[str, object]]:
    return [(t.kind, t.value) for t in search.tokenize(text)]


class TestTokenize:
    def test_tokens_carry_kind_text_value_and_position(self):
        tokens = search.tokenize("metrics.auc >= 0.9")
        assert [(t.kind, t.text, t.pos, t.value) for t in tokens] == [
            ("ident", "metrics", 0, "metrics"),
            ("dot", ".", 7, "."),
            ("ident", "auc", 8, "auc"),
            ("op", ">=", 12, ">="),
            ("number", "0.9", 15, 0.9),
            ("end", "", 18, None),
        ]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("", [("end", None)]),
            ("  \t\n ", [("end", None)]),
            (
                "(a,b)",
                [
                    ("lparen", "("),
                    ("ident", "a"),
                    ("comma", ","),
                    ("ident", "b"),
                    ("rparen", ")"),
                    ("end", None),
                ],
            ),
            (
                "tags.team:ml/x-y",
                [("ident", "tags"), ("dot", "."), ("ident", "team:ml/x-y"), ("end", None)],
            ),
            ("`f1-score`", [("ident", "f1-score"), ("end", None)]),
            ("'a b'", [("string", "a b"), ("end", None)]),
            ("version=-1", [("ident", "version"), ("op", "="), ("number", -1), ("end", None)]),
        ],
    )
    def test_kinds_and_values(self, text, expected):
        assert kinds(text) == expected

    @pytest.mark.parametrize("op", ["=", "==", "!=", "<>", "<", "<=", ">", ">="])
    def test_operators_are_single_tokens(self, op):
        tokens = search.tokenize(f"a{op}1")
        assert [(t.kind, t.text) for t in tokens] == [
            ("ident", "a"),
            ("op", op),
            ("number", "1"),
            ("end", ""),
        ]

    def test_backtick_keeps_raw_text_but_unquoted_value(self):
        (tok, _end) = search.tokenize("`order`")
        assert tok.kind == "ident"
        assert tok.text == "`order`"
        assert tok.value == "order"

    def test_end_token_is_at_the_length_of_the_text(self):
        assert search.tokenize("name = 'x'   ")[-1].pos == 13

    @pytest.mark.parametrize(
        ("text", "position"),
        [
            ("name ~ 'a'", 5),
            ("a ! b", 2),
            ("'open", 0),
            ('name = "open', 7),
            ("`open = 1", 0),
            ("a -1", 2),
            ("a = 1 +2", 6),
            ("a = 'x' -3", 8),
            ("a = ;", 4),
            ("a = é", 4),
        ],
    )
    def test_unreadable_input_names_its_position(self, text, position):
        with pytest.raises(InvalidQuery) as info:
            search.tokenize(text)
        assert info.value.position == position


class TestNumbers:
    @pytest.mark.parametrize(
        ("literal", "value", "kind"),
        [
            ("0", 0, int),
            ("3", 3, int),
            ("42", 42, int),
            ("-2", -2, int),
            ("+2", 2, int),
            ("3.0", 3.0, float),
            ("3.", 3.0, float),
            (".5", 0.5, float),
            ("-0.25", -0.25, float),
            ("1e3", 1000.0, float),
            ("1E3", 1000.0, float),
            ("1e-2", 0.01, float),
            ("2.5e+2", 250.0, float),
            ("-1.5e2", -150.0, float),
        ],
    )
    def test_number_literals(self, literal, value, kind):
        cmp = search.parse(f"metrics.x = {literal}").where
        assert isinstance(cmp, Compare)
        assert cmp.value == value
        assert type(cmp.value) is kind

    def test_negative_number_after_operator_is_a_value(self):
        assert where("version > -1") == "[version > -1]"


class TestStrings:
    @pytest.mark.parametrize(
        ("literal", "value"),
        [
            ("'plain'", "plain"),
            ("''", ""),
            ("'it''s'", "it's"),
            ("''''", "'"),
            ("'a\\'b'", "a'b"),
            ("'back\\\\slash'", "back\\slash"),
            ('"double"', "double"),
            ('"say ""hi"""', 'say "hi"'),
            ('"it\'s"', "it's"),
            ("'say \"hi\"'", 'say "hi"'),
            ("'%_'", "%_"),
            ("'a AND b'", "a AND b"),
            ("'日本語'", "日本語"),
            ("'x = 1 OR 1 = 1'", "x = 1 OR 1 = 1"),
        ],
    )
    def test_string_literals(self, literal, value):
        cmp = search.parse(f"tags.x = {literal}").where
        assert isinstance(cmp, Compare)
        assert cmp.value == value

    @pytest.mark.parametrize(("literal", "value"), [("TRUE", True), ("false", False)])
    def test_booleans(self, literal, value):
        cmp = search.parse(f"tags.x = {literal}").where
        assert isinstance(cmp, Compare)
        assert cmp.value is value

    def test_quoted_keyword_is_a_value_not_a_keyword(self):
        assert where("tags.x = 'and'") == "[tags.x = 'and']"


class TestFields:
    @pytest.mark.parametrize(
        ("text", "parts"),
        [
            ("name = 1", ("name",)),
            ("metrics.auc = 1", ("metrics", "auc")),
            ("metrics.`f1-score` = 1", ("metrics", "f1-score")),
            ("metrics.f1-score = 1", ("metrics", "f1-score")),
            ('metrics."f1 score" = 1', ("metrics", "f1 score")),
            ("metrics.'f1' = 1", ("metrics", "f1")),
            ("tags.`a b` = 1", ("tags", "a b")),
            ("tags.team:ml = 1", ("tags", "team:ml")),
            ("model.tags.team = 1", ("model", "tags", "team")),
            ("`order` = 1", ("order",)),
            ("`and`.x = 1", ("and", "x")),
            ("tags.and = 1", ("tags", "and")),
        ],
    )
    def test_field_parts(self, text, parts):
        cmp = search.parse(text).where
        assert isinstance(cmp, Compare)
        assert cmp.field.parts == parts

    def test_field_and_comparison_positions(self):
        cmp = search.parse("  metrics.`f1` >= 0.5").where
        assert cmp == Compare(Field(("metrics", "f1"), 2), ">=", 0.5, False, 15)

    def test_field_str_joins_parts(self):
        assert str(Field(("metrics", "auc"), 0)) == "metrics.auc"


class TestComparisons:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("name = 'a'", "[name = 'a']"),
            ("name == 'a'", "[name = 'a']"),
            ("name != 'a'", "[name != 'a']"),
            ("name <> 'a'", "[name != 'a']"),
            ("version < 3", "[version < 3]"),
            ("version <= 3", "[version <= 3]"),
            ("version > 3", "[version > 3]"),
            ("version >= 3", "[version >= 3]"),
            ("version>=3", "[version >= 3]"),
        ],
    )
    def test_operators(self, text, expected):
        assert where(text) == expected

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("version IN (1, 2, 3)", "[version in (1, 2, 3)]"),
            ("name IN ('a')", "[name in ('a',)]"),
            ("tags.x in ('a', 1, TRUE)", "[tags.x in ('a', 1, True)]"),
            ("name NOT IN ('a', 'b')", "[name not in ('a', 'b')]"),
            ("name not in ('a')", "[name not in ('a',)]"),
            ("version IN (-1,2.5)", "[version in (-1, 2.5)]"),
        ],
    )
    def test_in_lists(self, text, expected):
        assert where(text) == expected

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("name LIKE 'fraud%'", "[name like 'fraud%']"),
            ('name like "f_o"', "[name like 'f_o']"),
            ("name ILIKE '%Det%'", "[name ilike '%Det%']"),
            ("name NOT LIKE 'x%'", "[name not like 'x%']"),
            ("name NOT ILIKE 'X%'", "[name not ilike 'X%']"),
        ],
    )
    def test_like_and_ilike(self, text, expected):
        assert where(text) == expected

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("tags.x IS NULL", "[tags.x is null]"),
            ("tags.x is null", "[tags.x is null]"),
            ("tags.x IS NOT NULL", "[tags.x is not null]"),
            ("alias Is Not Null", "[alias is not null]"),
        ],
    )
    def test_is_null(self, text, expected):
        assert where(text) == expected

    def test_is_null_has_no_value(self):
        cmp = search.parse("tags.x IS NOT NULL").where
        assert cmp == Compare(Field(("tags", "x"), 0), "null", None, True, 7)


class TestPrecedence:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("a = 1 AND b = 2", "(and [a = 1] [b = 2])"),
            ("a = 1 OR b = 2", "(or [a = 1] [b = 2])"),
            ("a = 1 AND b = 2 AND c = 3", "(and [a = 1] [b = 2] [c = 3])"),
            ("a = 1 OR b = 2 OR c = 3", "(or [a = 1] [b = 2] [c = 3])"),
            ("a = 1 OR b = 2 AND c = 3", "(or [a = 1] (and [b = 2] [c = 3]))"),
            ("a = 1 AND b = 2 OR c = 3", "(or (and [a = 1] [b = 2]) [c = 3])"),
            (
                "a = 1 and b = 2 Or c = 3 AND d = 4",
                "(or (and [a = 1] [b = 2]) (and [c = 3] [d = 4]))",
            ),
            ("(a = 1 OR b = 2) AND c = 3", "(and (or [a = 1] [b = 2]) [c = 3])"),
            ("a = 1 AND (b = 2 OR c = 3)", "(and [a = 1] (or [b = 2] [c = 3]))"),
            ("((a = 1))", "[a = 1]"),
            ("NOT a = 1", "(not [a = 1])"),
            ("NOT a = 1 AND b = 2", "(and (not [a = 1]) [b = 2])"),
            ("NOT a = 1 OR b = 2", "(or (not [a = 1]) [b = 2])"),
            ("NOT (a = 1 OR b = 2)", "(not (or [a = 1] [b = 2]))"),
            ("NOT NOT a = 1", "(not (not [a = 1]))"),
            ("a = 1 AND NOT b = 2", "(and [a = 1] (not [b = 2]))"),
            ("NOT name IN ('a')", "(not [name in ('a',)])"),
            ("NOT tags.x IS NULL", "(not [tags.x is null])"),
        ],
    )
    def test_trees(self, text, expected):
        assert where(text) == expected


class TestOrderBy:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("ORDER BY name", [(("name",), False)]),
            ("order by name asc", [(("name",), False)]),
            ("ORDER BY name DESC", [(("name",), True)]),
            (
                "ORDER BY metrics.auc DESC, name ASC, version",
                [(("metrics", "auc"), True), (("name",), False), (("version",), False)],
            ),
            ("ORDER BY metrics.`f1-score` desc", [(("metrics", "f1-score"), True)]),
            ("ORDER BY a,b", [(("a",), False), (("b",), False)]),
        ],
    )
    def test_keys_and_directions(self, text, expected):
        assert order(text) == expected

    def test_order_without_filter_has_no_where(self):
        assert search.parse("ORDER BY name").where is None

    def test_filter_and_order_together(self):
        query = search.parse("stage = 'production' AND metrics.auc > 0.9 ORDER BY version DESC")
        assert shape(query.where) == "(and [stage = 'production'] [metrics.auc > 0.9])"
        assert query.order_by == (Order(Field(("version",), 52), True),)

    @pytest.mark.parametrize("text", ["", "   ", "\n"])
    def test_empty_query(self, text):
        assert search.parse(text) == Query(None, ())


class TestSyntaxErrors:
    @pytest.mark.parametrize(
        ("text", "position"),
        [
            pytest.param("name = ", 7, id="missing-value"),
            pytest.param("name == 'a' AND", 15, id="dangling-and"),
            pytest.param("name = 'a' OR", 13, id="dangling-or"),
            pytest.param("(name = 'a'", 11, id="missing-rparen"),
            pytest.param("name = 'a' AND (version = 1", 27, id="missing-inner-rparen"),
            pytest.param("name = 'a')", 10, id="extra-rparen"),
            pytest.param("name ~ 'a'", 5, id="tilde"),
            pytest.param("name ! 'a'", 5, id="bang"),
            pytest.param("ORDER name", 6, id="order-without-by"),
            pytest.param("ORDER BY", 8, id="order-by-nothing"),
            pytest.param("ORDER BY name,", 14, id="order-trailing-comma"),
            pytest.param("ORDER BY name DESC DESC", 19, id="order-double-direction"),
            pytest.param("version = 1 ORDER BY name, DESC", 27, id="order-keyword-as-field"),
            pytest.param("name = 'a' name", 11, id="two-expressions"),
            pytest.param("name 'a'", 5, id="missing-operator"),
            pytest.param("= 'a'", 0, id="missing-field"),
            pytest.param("AND name = 'a'", 0, id="keyword-as-field"),
            pytest.param("name = 'a' AND AND", 15, id="double-and"),
            pytest.param("NOT", 3, id="bare-not"),
            pytest.param("(", 1, id="bare-lparen"),
            pytest.param("()", 1, id="empty-parens"),
            pytest.param("name NOT = 'a'", 9, id="not-before-op"),
            pytest.param("name IN 'a'", 8, id="in-without-paren"),
            pytest.param("name IN ()", 9, id="in-empty"),
            pytest.param("name IN ('a' 'b')", 13, id="in-missing-comma"),
            pytest.param("name IN ('a',)", 13, id="in-trailing-comma"),
            pytest.param("name IN ('a'", 12, id="in-unclosed"),
            pytest.param("name LIKE 1", 10, id="like-number"),
            pytest.param("name ILIKE name", 11, id="ilike-ident"),
            pytest.param("tags.x IS 'a'", 10, id="is-value"),
            pytest.param("tags.x IS NOT", 13, id="is-not-nothing"),
            pytest.param("metrics.", 8, id="dot-nothing"),
            pytest.param("metrics.(", 8, id="dot-paren"),
            pytest.param("name = 'abc", 7, id="unterminated-string"),
            pytest.param("name = `x`", 7, id="backtick-as-value"),
            pytest.param("name = other", 7, id="ident-as-value"),
            pytest.param("name = NULL", 7, id="null-as-value"),
            pytest.param("version = 1 -1", 12, id="glued-sign"),
            pytest.param("name = 'a' ; DROP TABLE models", 11, id="semicolon"),
        ],
    )
    def test_position_of_the_offending_token(self, text, position):
        with pytest.raises(InvalidQuery) as info:
            search.parse(text)
        assert info.value.position == position
        assert info.value.detail["position"] == position
        assert f"position {position}" in info.value.message

    def test_error_at_the_end_says_so(self):
        with pytest.raises(InvalidQuery, match="the end of the query"):
            search.parse("name = ")

    def test_missing_rparen_names_the_expectation(self):
        with pytest.raises(InvalidQuery, match=r"expected '\)'"):
            search.parse("(name = 'a'")

    def test_query_errors_are_invalid_input(self):
        with pytest.raises(InvalidInput) as info:
            search.parse("name ~ 'a'")
        assert info.value.code == "invalid_query"

    def test_overlong_query_is_refused(self):
        with pytest.raises(InvalidQuery) as info:
            search.parse("a" * 10_001)
        assert info.value.position == 10_000

    def test_query_of_exactly_the_limit_is_parsed(self):
        text = "name = '" + "x" * (10_000 - 9) + "'"
        assert len(text) == 10_000
        assert search.parse(text).where == Compare(
            Field(("name",), 0), "=", "x" * (10_000 - 9), False, 5
        )

    @pytest.mark.parametrize("value", [None, 1, b"name = 'a'"])
    def test_non_text_is_refused(self, value):
        with pytest.raises(InvalidQuery) as info:
            search.parse(value)
        assert info.value.position == 0

"""The search language: a tokenizer and recursive-descent parser, compiled to SQLAlchemy.

Grammar (keywords are case-insensitive)::

    query      := [expr] [ORDER BY order ("," order)*]
    order      := field [ASC | DESC]
    expr       := term (OR term)*
    term       := factor (AND factor)*
    factor     := NOT factor | "(" expr ")" | comparison
    comparison := field op value
                | field [NOT] IN "(" value ("," value)* ")"
                | field [NOT] (LIKE | ILIKE) string
                | field IS [NOT] NULL
    op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    field      := ident ("." (ident | `quoted` | "quoted"))*
    value      := 'string' | "string" | number | TRUE | FALSE

Values always become bound parameters; no user text is ever pasted into SQL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    Select,
    and_,
    case,
    exists,
    func,
    not_,
    or_,
    select,
)
from sqlalchemy.sql.elements import KeyedColumnElement

from modelreg.db.tables import (
    Alias,
    Model,
    ModelTag,
    Version,
    VersionMetric,
    VersionParam,
    VersionStatus,
    VersionTag,
)
from modelreg.errors import InvalidName, InvalidQuery, InvalidReference
from modelreg.names import MAX_VERSION, Semver, Stage, normalize_name, validate_key

Scope = Literal["versions", "models"]
Value = str | float | int | bool

# --------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical unit and where it starts in the text."""

    kind: str  # ident, string, number, op, lparen, rparen, comma, dot, end
    text: str
    pos: int
    value: Any = None


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<backtick>`[^`]*`)
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<dot>\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_\-:/]*)
    """,
    re.VERBOSE,
)


def _unquote(text: str) -> str:
    quote = text[0]
    body = text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in ("\\", "'", '"'):
            # Only quotes and backslashes are unescaped, so LIKE patterns keep their escapes.
            out.append(body[i + 1])
            i += 2
            continue
        if ch == quote and i + 1 < len(body) and body[i + 1] == quote:
            out.append(quote)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, or raise ``InvalidQuery`` at the first unreadable character."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos] == "." and tokens and tokens[-1].kind == "ident":
            # After a field name a dot separates keys, so "tags.2024" is tags, ., 2024 and not
            # the number .2024.
            tokens.append(Token("dot", ".", pos, "."))
            pos += 1
            continue
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise InvalidQuery(
                f"unexpected character {text[pos]!r} at position {pos}", position=pos
            )
        kind = match.lastgroup or ""
        chunk = match.group()
        # A sign glued to a previous operand ("a -1") is not a value; only read signs where a
        # value may start.
        prev_is_operand = bool(tokens) and tokens[-1].kind in ("ident", "number", "string")
        if kind == "number" and prev_is_operand and chunk[0] in "+-":
            raise InvalidQuery(f"unexpected {chunk!r} at position {pos}", position=pos)
        if kind == "string":
            tokens.append(Token("string", chunk, pos, _unquote(chunk)))
        elif kind == "backtick":
            tokens.append(Token("ident", chunk, pos, chunk[1:-1]))
        elif kind == "number":
            value: int | float = int(chunk) if re.fullmatch(r"[+-]?\d+", chunk) else float(chunk)
            if isinstance(value, int) and abs(value) >= 2**63:
                raise InvalidQuery(
                    f"number {chunk} is out of range at position {pos}", position=pos
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidQuery(
                    f"number {chunk} is out of range at position {pos}", position=pos
                )
            tokens.append(Token("number", chunk, pos, value))
        elif kind != "ws":
            tokens.append(Token(kind, chunk, pos, chunk))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# --------------------------------------------------------------------------------------------
# Syntax tree


@dataclass(frozen=True, slots=True)
class Field:
    """A dotted field name (``metrics.auc`` → ``("metrics", "auc")``) and its position."""

    parts: tuple[str, ...]
    pos: int

    def __str__(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Compare:
    """``field op value``; ``op`` is one of = != < <= > >= in like ilike null."""

    field: Field
    op: str
    value: Value | tuple[Value, ...] | None
    negate: bool
    pos: int


@dataclass(frozen=True, slots=True)
class BoolOp:
    """``AND`` / ``OR`` over two or more operands."""

    op: str
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """``NOT operand``."""

    operand: Node


Node = Compare | BoolOp | Not


@dataclass(frozen=True, slots=True)
class Order:
    """One ``ORDER BY`` key."""

    field: Field
    descending: bool


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed search: an optional filter and the requested ordering."""

    where: Node | None
    order_by: tuple[Order, ...]


_KEYWORDS = {
    "and",
    "or",
    "not",
    "in",
    "like",
    "ilike",
    "is",
    "null",
    "order",
    "by",
    "asc",
    "desc",
    "true",
    "false",
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _kw(self, word: str) -> bool:
        tok = self.tok
        return tok.kind == "ident" and tok.text.lower() == word and tok.value == tok.text

    def _take_kw(self, word: str) -> bool:
        if self._kw(word):
            self.i += 1
            return True
        return False

    def _fail(self, expected: str) -> InvalidQuery:
        tok = self.tok
        found = "the end of the query" if tok.kind == "end" else repr(tok.text)
        return InvalidQuery(
            f"expected {expected} at position {tok.pos}, found {found}", position=tok.pos
        )

    def parse(self) -> Query:
        where: Node | None = None
        if self.tok.kind != "end" and not self._kw("order"):
            where = self.expr()
        order: list[Order] = []
        if self._take_kw("order"):
            if not self._take_kw("by"):
                raise self._fail("BY after ORDER")
            while True:
                field = self.field()
                descending = False
                if self._take_kw("desc"):
                    descending = True
                else:
                    self._take_kw("asc")
                order.append(Order(field, descending))
                if self.tok.kind != "comma":
                    break
                self.i += 1
        if self.tok.kind != "end":
            raise self._fail("AND, OR, ORDER BY or the end of the query")
        return Query(where, tuple(order))

    def expr(self) -> Node:
        operands = [self.term()]
        while self._take_kw("or"):
            operands.append(self.term())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def term(self) -> Node:
        operands = [self.factor()]
        while self._take_kw("and"):
            operands.append(self.factor())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def factor(self) -> Node:
        if self._take_kw("not"):
            return Not(self.factor())
        if self.tok.kind == "lparen":
            self.i += 1
            node = self.expr()
            if self.tok.kind != "rparen":
                raise self._fail("')'")
            self.i += 1
            return node
        return self.comparison()

    def field(self) -> Field:
        tok = self.tok
        if tok.kind != "ident" or (tok.value == tok.text and tok.text.lower() in _KEYWORDS):
            raise self._fail("a field name such as name, tags.team or metrics.auc")
        parts = [str(tok.value)]
        self.i += 1
        while self.tok.kind == "dot":
            self.i += 1
            part = self.tok
            if part.kind in {"ident", "string"}:
                parts.append(str(part.value))
            elif part.kind == "number" and re.fullmatch(r"\d+", part.text):
                parts.append(part.text)
            else:
                raise self._fail("a key after '.'")
            self.i += 1
        return Field(tuple(parts), tok.pos)

    def value(self) -> Value:
        tok = self.tok
        if tok.kind in ("string", "number"):
            self.i += 1
            return tok.value  # type: ignore[no-any-return]
        if self._take_kw("true"):
            return True
        if self._take_kw("false"):
            return False
        raise self._fail("a value (a quoted string or a number)")

    def comparison(self) -> Compare:
        field = self.field()
        pos = self.tok.pos
        if self._take_kw("is"):
            negate = self._take_kw("not")
            if not self._take_kw("null"):
                raise self._fail("NULL after IS")
            return Compare(field, "null", None, negate, pos)
        negate = self._take_kw("not")
        if self._take_kw("in"):
            if self.tok.kind != "lparen":
                raise self._fail("'(' after IN")
            self.i += 1
            values = [self.value()]
            while self.tok.kind == "comma":
                self.i += 1
                values.append(self.value())
            if self.tok.kind != "rparen":
                raise self._fail("',' or ')' in the IN list")
            self.i += 1
            return Compare(field, "in", tuple(values), negate, pos)
        for word in ("like", "ilike"):
            if self._take_kw(word):
                if self.tok.kind != "string":
                    raise self._fail(f"a quoted pattern after {word.upper()}")
                value = self.value()
                return Compare(field, word, value, negate, pos)
        if negate:
            raise self._fail("IN, LIKE or ILIKE after NOT")
        if self.tok.kind != "op":
            raise self._fail("a comparison (=, !=, <, <=, >, >=, IN, LIKE, ILIKE, IS NULL)")
        op = {"==": "=", "<>": "!="}.get(self.tok.text, self.tok.text)
        self.i += 1
        return Compare(field, op, self.value(), False, pos)


def parse(text: str) -> Query:
    """Parse a search expression; raise ``InvalidQuery`` naming the position of the error."""
    if not isinstance(text, str):
        raise InvalidQuery("a search expression must be text", position=0)
    if len(text) > 10_000:
        raise InvalidQuery("a search expression has at most 10000 characters", position=10_000)
    if "\x00" in text:
        raise InvalidQuery("a search expression must not contain NUL", position=text.index("\x00"))
    return _Parser(text).parse()


# --------------------------------------------------------------------------------------------
# Compilation to SQL

# SQLAlchemy types mapped attributes, columns and scalar subqueries apart although every
# comparison here accepts all three; one loose alias keeps the compiler readable.
Column = Any


def _bad(node: Compare | Field, message: str) -> InvalidQuery:
    return InvalidQuery(f"{message} (at position {node.pos})", position=node.pos)


def _apply(op: str, column: Column, value: Any) -> Column:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "like":
        return column.like(value, escape="\\")
    if op == "ilike":
        return func.lower(column).like(func.lower(value), escape="\\")
    raise AssertionError(op)  # pragma: no cover - the parser produces no other operators


def _compare(
    cmp: Compare, column: Column, convert: Callable[[Any], Any], *, text: bool = False
) -> Column:
    """A comparison on a plain column, with values converted (and checked) by ``convert``.

    A row without the field (NULL) never matches a comparison, and ``NOT`` / ``NOT IN`` invert
    the match, so ``NOT semver = '1.0.0'`` includes versions without a semver, on every field.
    """
    if cmp.op == "null":
        clause: Column = column.is_(None)
    elif cmp.op in ("like", "ilike"):
        if not text:
            raise _bad(cmp, f"LIKE and ILIKE compare text; {cmp.field} is not text")
        clause = and_(column.is_not(None), _apply(cmp.op, column, cmp.value))
    elif cmp.op == "in":
        assert isinstance(cmp.value, tuple)
        clause = and_(column.is_not(None), column.in_([convert(v) for v in cmp.value]))
    else:
        clause = and_(column.is_not(None), _apply(cmp.op, column, convert(cmp.value)))
    return not_(clause) if cmp.negate else clause


def _as_number(cmp: Compare) -> Callable[[Any], float]:
    def convert(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(cmp, f"{cmp.field} compares with a number, not {value!r}")
        return float(value)

    return convert


def _as_int(cmp: Compare) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(cmp, f"{cmp.field} compares with a whole number, not {value!r}")
        if not -MAX_VERSION <= value <= MAX_VERSION:
            raise _bad(cmp, f"{value} is out of range for {cmp.field}")
        return value

    return convert


def _as_text(cmp: Compare) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return convert


def _as_time(cmp: Compare) -> Callable[[Any], datetime]:
    def convert(value: Any) -> datetime:
        if not isinstance(value, str):
            raise _bad(cmp, f"{cmp.field} compares with a quoted ISO time such as '2026-11-01'")
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        except (ValueError, OverflowError):
            raise _bad(cmp, f"{value!r} is not an ISO date or time in range") from None

    return convert


def _as_status(cmp: Compare) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = str(value).lower()
        if text not in {s.value for s in VersionStatus}:
            choices = ", ".join(s.value for s in VersionStatus)
            raise _bad(cmp, f"status is one of {choices}, not {value!r}")
        return text

    return convert


def _as_stage(cmp: Compare) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        try:
            return Stage.parse(str(value)).value
        except InvalidReference as exc:
            raise _bad(cmp, exc.message) from None

    return convert


def _key(field: Field, index: int) -> str:
    if len(field.parts) != index + 1:
        raise _bad(field, f"{field.parts[0]} takes one key, as in {field.parts[0]}.accuracy")
    try:
        return validate_key(field.parts[index])
    except InvalidName as exc:
        raise _bad(field, exc.message) from None


def _kv_exists(
    cmp: Compare,
    table: type[VersionTag] | type[VersionParam] | type[VersionMetric] | type[ModelTag],
    owner: Column,
    key: str,
    convert: Callable[[Any], Any],
    *,
    text: bool = True,
) -> Column:
    owner_col = table.model_id if table is ModelTag else table.version_id  # type: ignore[union-attr]
    if cmp.op == "null":
        # "tags.x IS NULL" means "has no tag x"; negated, "has it".
        has = exists().where(owner_col == owner, table.key == key)
        return has if cmp.negate else not_(has)
    inner = Compare(cmp.field, cmp.op, cmp.value, False, cmp.pos)
    match = exists().where(
        owner_col == owner, table.key == key, _compare(inner, table.value, convert, text=text)
    )
    return not_(match) if cmp.negate else match


def _version_clause(cmp: Compare) -> Column:
    parts = cmp.field.parts
    head = parts[0].lower()
    if head in ("tags", "params", "metrics"):
        key = _key(cmp.field, 1)
        if head == "metrics":
            return _kv_exists(cmp, VersionMetric, Version.id, key, _as_number(cmp), text=False)
        table = VersionTag if head == "tags" else VersionParam
        return _kv_exists(cmp, table, Version.id, key, _as_text(cmp))
    if head == "model" and len(parts) == 3 and parts[1].lower() == "tags":
        key = _key(Field(parts[1:], cmp.field.pos), 1)
        return _kv_exists(cmp, ModelTag, Version.model_id, key, _as_text(cmp))
    if len(parts) != 1:
        raise _bad(cmp.field, f"unknown field {cmp.field}")
    if head == "name":
        return _name_clause(cmp)
    if head == "version":
        return _compare(cmp, Version.number, _as_int(cmp))
    if head == "semver":
        return _semver_clause(cmp)
    if head == "stage":
        return _compare(cmp, Version.stage, _as_stage(cmp))
    if head == "alias":
        return _alias_clause(cmp, Alias.version_id == Version.id)
    if head == "owner":
        return _compare(cmp, Model.owner, _as_text(cmp), text=True)
    if head in ("created_at", "updated_at"):
        return _compare(cmp, getattr(Version, head), _as_time(cmp))
    if head == "status":
        return _compare(cmp, Version.status, _as_status(cmp))
    if head in ("created_by", "run_id", "description"):
        return _compare(cmp, getattr(Version, head), _as_text(cmp), text=True)
    raise _bad(
        cmp.field,
        f"unknown field {cmp.field}; use name, version, semver, stage, alias, owner, created_at, "
        "created_by, status, run_id, tags.KEY, params.KEY, metrics.KEY or model.tags.KEY",
    )


def _name_clause(cmp: Compare) -> Column:
    if cmp.op in ("like", "ilike"):
        return _compare(cmp, Model.name, _as_text(cmp), text=True)
    # Equality follows lookups: "Fraud_Detector" finds "fraud-detector".
    return _compare(cmp, Model.normalized_name, lambda v: normalize_name(_as_text(cmp)(v)))


def _semver_clause(cmp: Compare) -> Column:
    if cmp.op in ("<", "<=", ">", ">="):

        def convert(value: Any) -> str:
            try:
                return Semver.parse(str(value)).sort_key()
            except InvalidName as exc:
                raise _bad(cmp, exc.message) from None

        return _compare(cmp, Version.semver_key, convert)
    return _compare(cmp, Version.semver, _as_text(cmp), text=True)


def _alias_clause(cmp: Compare, link: Column) -> Column:
    if cmp.op == "null":
        has = exists().where(link)
        return has if cmp.negate else not_(has)
    inner = Compare(cmp.field, cmp.op, cmp.value, False, cmp.pos)
    match = exists().where(link, _compare(inner, Alias.name, _as_text(cmp), text=True))
    return not_(match) if cmp.negate else match


def _model_clause(cmp: Compare) -> Column:
    parts = cmp.field.parts
    head = parts[0].lower()
    if head == "tags":
        return _kv_exists(cmp, ModelTag, Model.id, _key(cmp.field, 1), _as_text(cmp))
    if len(parts) != 1:
        raise _bad(cmp.field, f"unknown field {cmp.field}")
    if head == "name":
        return _name_clause(cmp)
    if head in ("owner", "description"):
        return _compare(cmp, getattr(Model, head), _as_text(cmp), text=True)
    if head in ("created_at", "updated_at"):
        return _compare(cmp, getattr(Model, head), _as_time(cmp))
    if head == "stage":
        inner = Compare(cmp.field, cmp.op, cmp.value, False, cmp.pos)
        has = exists().where(
            Version.model_id == Model.id, _compare(inner, Version.stage, _as_stage(cmp))
        )
        return not_(has) if cmp.negate else has
    if head == "alias":
        return _alias_clause(cmp, Alias.model_id == Model.id)
    raise _bad(
        cmp.field,
        f"unknown field {cmp.field} for models; use name, owner, description, created_at, "
        "updated_at, stage, alias or tags.KEY",
    )


def _compile(node: Node, leaf: Callable[[Compare], Column]) -> Column:
    if isinstance(node, Compare):
        return leaf(node)
    if isinstance(node, Not):
        return not_(_compile(node.operand, leaf))
    parts = [_compile(n, leaf) for n in node.operands]
    return and_(*parts) if node.op == "and" else or_(*parts)


def _order_column(order: Order, scope: Scope) -> KeyedColumnElement[Any] | Column:
    field = order.field
    head = field.parts[0].lower()
    if scope == "versions" and head in ("metrics", "params", "tags"):
        key = _key(field, 1)
        table: Any = {"metrics": VersionMetric, "params": VersionParam, "tags": VersionTag}[head]
        return (
            select(table.value)
            .where(table.version_id == Version.id, table.key == key)
            .scalar_subquery()
        )
    if len(field.parts) == 1:
        if scope == "versions":
            columns: dict[str, Column] = {
                "name": Model.normalized_name,
                "version": Version.number,
                "semver": Version.semver_key,
                "stage": Version.stage,
                "created_at": Version.created_at,
                "updated_at": Version.updated_at,
                "created_by": Version.created_by,
                "owner": Model.owner,
            }
        else:
            columns = {
                "name": Model.normalized_name,
                "owner": Model.owner,
                "created_at": Model.created_at,
                "updated_at": Model.updated_at,
            }
        if head in columns:
            return columns[head]
    raise _bad(field, f"cannot order {scope} by {field}")


OrderKey = tuple[Any, bool]
"""A sort expression and whether it sorts descending."""


def apply(
    query: Select[Any], text: str | None, *, scope: Scope, default_order: list[OrderKey]
) -> tuple[Select[Any], list[OrderKey]]:
    """Add the filter of ``text`` to ``query`` and return it with the full sort order.

    The order is the text's ``ORDER BY`` followed by ``default_order``, which must end in a
    unique key so that keyset pagination (``pages.paginate``) is exact.
    """
    parsed = parse(text or "")
    if parsed.where is not None:
        leaf = _version_clause if scope == "versions" else _model_clause
        query = query.where(_compile(parsed.where, leaf))
    order: list[OrderKey] = []
    for item in parsed.order_by:
        column = _order_column(item, scope)
        # NULLs (a version without that metric) sort last in both directions on both databases.
        # An integer (not a boolean) so the keyset comparison reads the same on both databases.
        order.append((case((column.is_(None), 1), else_=0), False))
        order.append((column, item.descending))
    return query, [*order, *default_order]


__all__ = ["OrderKey", "Query", "apply", "parse", "tokenize"]

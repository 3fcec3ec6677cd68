"""The search language: its tokenizer, syntax tree and recursive-descent parser.

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

Every syntax error is an ``InvalidQuery`` carrying the 0-based position of the offending token.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from modelreg.errors import InvalidQuery

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
            if len(chunk) > 400:
                raise InvalidQuery(f"number at position {pos} is too long", position=pos)
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


MAX_DEPTH = 32


class _Parser:
    def __init__(self, text: str) -> None:
        self.depth = 0
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

    def _nest(self) -> None:
        # A bound on nesting keeps hostile input from exhausting the stack here or in SQL.
        self.depth += 1
        if self.depth > MAX_DEPTH:
            pos = self.tok.pos
            raise InvalidQuery(
                f"more than {MAX_DEPTH} levels of NOT and parentheses at position {pos}",
                position=pos,
            )

    def factor(self) -> Node:
        if self._take_kw("not"):
            self._nest()
            negated = Not(self.factor())
            self.depth -= 1
            return negated
        if self.tok.kind == "lparen":
            self._nest()
            self.i += 1
            node = self.expr()
            self.depth -= 1
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

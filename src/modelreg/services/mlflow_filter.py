"""MLflow's registry search filters (``name LIKE 'fraud%' AND tags.team = 'risk'``) as SQL.

MLflow's grammar is not modelreg's search language (backtick-quoted keys, ``tag.`` and
``attributes.`` prefixes, double-quoted strings), so it gets its own small parser. Like the
search language it compiles to bound parameters, never to pasted SQL.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, not_, select
from sqlalchemy.sql.elements import ColumnElement

from modelreg.db.tables import Model, ModelTag, Version, VersionTag
from modelreg.errors import InvalidQuery

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>!=|<=|>=|=|<|>|\(|\)|,)
      | (?P<word>(?:`[^`]*`|[A-Za-z_][A-Za-z0-9_]*)(?:\.(?:`[^`]*`|"[^"]*"|[A-Za-z0-9_]+))*)
    )""",
    re.VERBOSE,
)
MAX_FILTER = 10_000
MAX_CLAUSES = 64


@dataclass(frozen=True, slots=True)
class Clause:
    """``field op value``: field is ``name``, ``run_id``, ``version_number`` … or ``tags.KEY``."""

    field: str
    tag: str | None
    op: str
    value: Any


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise InvalidQuery(
                f"cannot parse the filter at position {pos}: {text[pos : pos + 20]!r}",
                position=pos,
            )
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _field(word: str) -> tuple[str, str | None]:
    head, _, rest = word.partition(".")
    head = head.strip("`").lower()
    if head in ("tag", "tags") and rest:
        key = rest
        if key[:1] in '`"' and key[-1:] == key[:1]:
            key = key[1:-1]
        return "tags", key
    if head in ("attribute", "attributes") and rest:
        return rest.strip("`").lower(), None
    return word.strip("`").lower(), None


def _value(take: Callable[[], tuple[str, str]], *, list_: bool) -> Any:
    """A literal, or with ``list_`` a parenthesised list of them."""
    if not list_:
        kind, item = take()
        if kind not in ("string", "number"):
            raise InvalidQuery(f"expected a value, got {item!r}", position=0)
        return _unquote(item) if kind == "string" else item
    if take()[1] != "(":
        raise InvalidQuery("IN takes a parenthesised list", position=0)
    values: list[str] = []
    while True:
        kind, item = take()
        if kind not in ("string", "number"):
            raise InvalidQuery(f"unexpected {item!r} in a list", position=0)
        values.append(_unquote(item) if kind == "string" else item)
        sep = take()[1]
        if sep == ")":
            return values
        if sep != ",":
            raise InvalidQuery(f"expected ',' or ')', got {sep!r}", position=0)


def parse(text: str | None) -> list[Clause]:
    """The ``AND``-joined clauses of an MLflow filter (MLflow has no ``OR``)."""
    if not text or not text.strip():
        return []
    if len(text) > MAX_FILTER:
        raise InvalidQuery(f"a filter has at most {MAX_FILTER} characters", position=0)
    tokens = _tokens(text)
    clauses: list[Clause] = []
    i = 0

    def take() -> tuple[str, str]:
        nonlocal i
        if i >= len(tokens):
            raise InvalidQuery("the filter ends too early", position=len(text))
        token = tokens[i]
        i += 1
        return token

    while i < len(tokens):
        kind, word = take()
        if kind != "word":
            raise InvalidQuery(f"expected a field, got {word!r}", position=0)
        field, tag = _field(word)
        kind, op = take()
        if kind == "word" and op.upper() == "NOT":
            kind, op = take()
            op = "NOT " + op
        op = op.upper()
        if op not in ("=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN"):
            raise InvalidQuery(f"unsupported operator {op!r}", position=0)
        clauses.append(Clause(field, tag, op, _value(take, list_=op.endswith("IN"))))
        if len(clauses) > MAX_CLAUSES:
            raise InvalidQuery(f"a filter has at most {MAX_CLAUSES} clauses", position=0)
        if i < len(tokens):
            kind, word = take()
            if word.upper() != "AND":
                raise InvalidQuery(f"expected AND, got {word!r} (MLflow has no OR)", position=0)
            if i >= len(tokens):
                raise InvalidQuery("the filter ends after AND", position=len(text))
    return clauses


_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool]
    if op == "=":
        result = column == value
    elif op == "!=":
        result = column != value
    elif op == "LIKE":
        result = column.like(value)
    elif op == "ILIKE":
        result = func.lower(column).like(str(value).lower())
    elif op == "IN":
        result = column.in_(value)
    elif op == "NOT IN":
        result = column.not_in(value)
    else:
        result = _ORDER[op](column, value)
    return result


def _tag_condition(table: Any, link: Any, clause: Clause) -> ColumnElement[bool]:
    positive = "=" if clause.op == "!=" else "IN" if clause.op == "NOT IN" else clause.op
    found = exists(
        select(table.key).where(
            link, table.key == clause.tag, _compare(table.value, positive, clause.value)
        )
    )
    # `tags.k != 'v'` keeps rows without the tag, as MLflow's client expects when it hides
    # prompts with tags.`mlflow.prompt.is_prompt` != 'true'.
    return not_(found) if clause.op in ("!=", "NOT IN") else found


def models_condition(text: str | None) -> ColumnElement[bool] | None:
    """The condition on ``Model`` for a ``search_registered_models`` filter."""
    parts: list[ColumnElement[bool]] = []
    for clause in parse(text):
        if clause.field == "tags":
            parts.append(_tag_condition(ModelTag, ModelTag.model_id == Model.id, clause))
        elif clause.field == "name":
            parts.append(_compare(Model.name, clause.op, clause.value))
        else:
            raise InvalidQuery(
                f"registered models can be filtered by name and tags, not {clause.field!r}",
                position=0,
            )
    return and_(*parts) if parts else None


def versions_condition(text: str | None) -> ColumnElement[bool] | None:
    """The condition on ``Version`` joined to ``Model`` for a ``search_model_versions`` filter."""
    parts: list[ColumnElement[bool]] = []
    for clause in parse(text):
        if clause.field == "tags":
            parts.append(_tag_condition(VersionTag, VersionTag.version_id == Version.id, clause))
        elif clause.field == "name":
            parts.append(_compare(Model.name, clause.op, clause.value))
        elif clause.field == "run_id":
            parts.append(_compare(Version.run_id, clause.op, clause.value))
        elif clause.field in ("source_path", "source"):
            parts.append(_compare(Version.source_uri, clause.op, clause.value))
        elif clause.field in ("version_number", "version"):
            values = clause.value if isinstance(clause.value, list) else [clause.value]
            if not all(re.fullmatch(r"[0-9]{1,9}", str(v)) for v in values):
                raise InvalidQuery(
                    "version_number compares with whole numbers of up to 9 digits", position=0
                )
            numbers = [int(v) for v in values]
            value = numbers if isinstance(clause.value, list) else numbers[0]
            parts.append(_compare(Version.number, clause.op, value))
        else:
            raise InvalidQuery(
                "model versions can be filtered by name, version_number, run_id, source_path "
                f"and tags, not {clause.field!r}",
                position=0,
            )
    return and_(*parts) if parts else None

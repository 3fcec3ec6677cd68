"""MLflow's search filters (``name LIKE 'fraud%' AND tags.team = 'risk'``) as SQL.

MLflow's grammar is not modelreg's search language (backtick-quoted keys, ``tag.``,
``metrics.`` and ``attributes.`` prefixes, double-quoted strings), so it gets its own small
parser, for registered models, model versions and runs. Like the search language it compiles
to bound parameters, never to pasted SQL.

``LIKE`` keeps case, as in MLflow (only ``ILIKE`` ignores it). PostgreSQL's LIKE does; SQLite's
does not, and its connection-wide ``PRAGMA case_sensitive_like`` would change /api/v1's search
too, so on SQLite the door's LIKE also calls ``modelreg_like`` (``db/session.py``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Float, String, and_, exists, func, literal, not_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from modelreg.db.tables import Model, ModelTag, Version, VersionTag
from modelreg.db.tables.tracking import MlflowRun
from modelreg.errors import InvalidQuery

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)
      | (?P<op>!=|<=|>=|=|<|>|\(|\)|,)
      | (?P<word>(?:`[^`]*`|[A-Za-z_][A-Za-z0-9_]*)(?:\.(?:`[^`]*`|"[^"]*"|[A-Za-z0-9_]+))*)
    )""",
    re.VERBOSE,
)
MAX_FILTER = 10_000
MAX_CLAUSES = 64
MAX_ORDER_BY = 10


@dataclass(frozen=True, slots=True)
class Clause:
    """``field op value``: ``name``, ``run_id``, ``version_number`` … or ``tags.KEY``.

    For ``tags``, ``metrics`` and ``params`` the key is in ``tag``.
    """

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


_KINDS = {
    "tag": "tags",
    "tags": "tags",
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
}


def _field(word: str) -> tuple[str, str | None]:
    head, _, rest = word.partition(".")
    head = head.strip("`").lower()
    if head in _KINDS and rest:
        key = rest
        if key[:1] in '`"' and key[-1:] == key[:1]:
            key = key[1:-1]
        return _KINDS[head], key
    if head in ("attribute", "attributes", "attr", "run") and rest:
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
        if kind == "word" and op == "IS":
            # `params.x IS NULL`, `tags.y IS NOT NULL` (runs only): no value follows.
            kind, word = take()
            negated = word.upper() == "NOT"
            if negated:
                kind, word = take()
            if word.upper() != "NULL":
                raise InvalidQuery(f"expected NULL after IS, got {word!r}", position=0)
            clauses.append(Clause(field, tag, "IS NOT NULL" if negated else "IS NULL", None))
        elif op not in ("=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN"):
            raise InvalidQuery(f"unsupported operator {op!r}", position=0)
        else:
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


class case_like(FunctionElement[bool]):  # noqa: N801 - SQL function names are lower case
    """``column LIKE pattern``, case kept on every database (see the module docstring)."""

    type = Boolean()
    name = "case_like"
    inherit_cache = True


@compiles(case_like)
def _case_like(element: case_like, compiler: SQLCompiler, **kw: Any) -> str:
    column, pattern = (compiler.process(c, **kw) for c in element.clauses)
    return f"({column} LIKE {pattern})"


@compiles(case_like, "sqlite")
def _case_like_sqlite(element: case_like, compiler: SQLCompiler, **kw: Any) -> str:
    column, pattern = (compiler.process(c, **kw) for c in element.clauses)
    # SQLite's own LIKE first (fast, in C, ignores case), then the exact check.
    return f"({column} LIKE {pattern} AND modelreg_like({column}, {pattern}))"


class json_text(FunctionElement[str]):  # noqa: N801
    """The string a JSON object column holds under a key; NULL when absent or not a string."""

    type = String()
    name = "json_text"
    inherit_cache = True


class json_metric(FunctionElement[float]):  # noqa: N801
    """A run's latest value of a metric (``key -> [value, timestamp, step]``).

    NULL when absent, NaN or infinite (those are kept as strings, and compare with nothing).
    """

    type = Float()
    name = "json_metric"
    inherit_cache = True


# SQLite: json_each matches the key as a plain string (a JSON path would have to quote it).
@compiles(json_text, "sqlite")
def _json_text_sqlite(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    column, key = (compiler.process(c, **kw) for c in element.clauses)
    # Both parts are compiled SQL elements: the column's name and a bound parameter.
    return (
        f"(SELECT j.value FROM json_each({column}) AS j "  # noqa: S608
        f"WHERE j.key = {key} AND j.type = 'text')"
    )


@compiles(json_metric, "sqlite")
def _json_metric_sqlite(element: json_metric, compiler: SQLCompiler, **kw: Any) -> str:
    column, key = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"(SELECT json_extract(j.value, '$[0]') FROM json_each({column}) AS j WHERE j.key = "  # noqa: S608
        f"{key} AND json_type(j.value, '$[0]') IN ('integer', 'real'))"
    )


@compiles(json_text)  # PostgreSQL, and the default
def _json_text_pg(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    column, key = (compiler.process(c, **kw) for c in element.clauses)
    return f"(CASE WHEN json_typeof({column} -> {key}) = 'string' THEN {column} ->> {key} END)"


@compiles(json_metric)  # PostgreSQL, and the default
def _json_metric_pg(element: json_metric, compiler: SQLCompiler, **kw: Any) -> str:
    column, key = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"(CASE WHEN json_typeof({column} -> {key} -> 0) = 'number' "
        f"THEN CAST({column} -> {key} ->> 0 AS DOUBLE PRECISION) END)"
    )


_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool]
    if op == "=":
        result = column == value
    elif op == "!=":
        result = column != value
    elif op == "LIKE":
        result = case_like(column, literal(str(value), String))
    elif op == "ILIKE":
        result = func.lower(column).like(str(value).lower())
    elif op == "IN":
        result = column.in_(value)
    elif op == "NOT IN":
        result = column.not_in(value)
    elif op in _ORDER:
        result = _ORDER[op](column, value)
    else:  # IS NULL on a field that does not take it
        raise InvalidQuery(f"{op} is not supported here", position=0)
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


# -- runs ---------------------------------------------------------------------------------------

_RUN_STRINGS = {
    "run_id": MlflowRun.id,
    "run_uuid": MlflowRun.id,
    "run_name": MlflowRun.name,
    "status": MlflowRun.status,
    "user_id": MlflowRun.user_id,
}
_RUN_NUMBERS = {
    "start_time": MlflowRun.start_ms,
    "created": MlflowRun.start_ms,
    "end_time": MlflowRun.end_ms,
}
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_KEY_OPS = ("=", "!=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL")  # MLflow's, for params, tags


def _run_value(clause: Clause) -> tuple[Any, tuple[str, ...], bool]:
    """The SQL value a run clause compares, the operators it takes, and whether it is a number."""
    key = clause.tag or ""
    if clause.field == "metrics":
        return json_metric(MlflowRun.metrics, literal(key, String)), _NUMBER_OPS, True
    if clause.field in ("params", "tags"):
        column = MlflowRun.params if clause.field == "params" else MlflowRun.tags
        return json_text(column, literal(key, String)), _KEY_OPS, False
    if clause.field in _RUN_STRINGS:
        return _RUN_STRINGS[clause.field], _STRING_OPS, False
    if clause.field in _RUN_NUMBERS:
        return _RUN_NUMBERS[clause.field], _NUMBER_OPS, True
    raise InvalidQuery(
        "runs can be filtered by metrics.KEY, params.KEY, tags.KEY and the attributes "
        f"{', '.join(sorted({*_RUN_STRINGS, *_RUN_NUMBERS}))}, not {clause.field!r}",
        position=0,
    )


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise InvalidQuery(f"{text!r} is not a number", position=0) from None


def runs_condition(text: str | None) -> ColumnElement[bool] | None:
    """The condition on ``MlflowRun`` for a ``runs/search`` filter (MLflow's run grammar).

    A clause on a metric, param or tag holds only for runs that have that key (MLflow's rule:
    ``params.lr != '0.1'`` does not match runs without ``lr``).
    """
    parts: list[ColumnElement[bool]] = []
    for clause in parse(text):
        value, ops, numeric = _run_value(clause)
        if clause.op in ("IN", "NOT IN") and clause.field not in ("run_id", "run_uuid"):
            ops = tuple(o for o in ops if not o.endswith("IN"))  # MLflow: lists are for run_id
        if clause.op not in ops:
            raise InvalidQuery(
                f"{clause.field} takes {', '.join(ops)}, not {clause.op}", position=0
            )
        if clause.op in ("IS NULL", "IS NOT NULL"):
            parts.append(value.is_(None) if clause.op == "IS NULL" else value.is_not(None))
            continue
        compared: Any = clause.value
        if numeric:
            compared = _number(clause.value)
            if clause.field in _RUN_NUMBERS:
                compared = int(compared)
        elif not isinstance(compared, list):
            compared = str(compared)
        condition = _compare(value, clause.op, compared)
        parts.append(and_(value.is_not(None), condition))
    return and_(*parts) if parts else None


_DIRECTION = re.compile(r"^(?P<field>.+?)(?:\s+(?P<dir>ASC|DESC))?$", re.IGNORECASE | re.DOTALL)


def runs_order(items: list[Any]) -> list[Any]:
    """ORDER BY clauses for ``runs/search`` ``order_by`` entries (``metrics.acc DESC``).

    Fields are ``metrics.KEY``, ``params.KEY``, ``tags.KEY`` (keys with spaces in backquotes,
    as in filters) or an attribute; runs without the key (or with a NaN metric) come last
    either way, as in MLflow.
    """
    if len(items) > MAX_ORDER_BY:
        raise InvalidQuery(f"order_by takes at most {MAX_ORDER_BY} fields", position=0)
    order: list[Any] = []
    for item in items:
        match = _DIRECTION.match(item.strip()) if isinstance(item, str) else None
        if match is None or len(item) > 1000:
            raise InvalidQuery(f"invalid order_by entry {str(item)[:100]!r}", position=0)
        descending = (match["dir"] or "").upper() == "DESC"
        tokens = _tokens(match["field"])
        if len(tokens) != 1 or tokens[0][0] != "word":  # keys with spaces go in backquotes
            raise InvalidQuery(f"invalid order_by entry {item[:100]!r}", position=0)
        field, key = _field(tokens[0][1])
        clause = Clause(field, key, "=", None)
        value, _ops, _numeric = _run_value(clause)
        order.append(value.is_(None))
        order.append(value.desc() if descending else value.asc())
    return order

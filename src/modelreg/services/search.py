"""Compilation of the search language (``services.query``) to SQLAlchemy, for versions and models.

Values always become bound parameters; no user text is ever pasted into SQL.
"""

from __future__ import annotations

from collections.abc import Callable
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
from sqlalchemy.orm import aliased
from sqlalchemy.sql import visitors
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
from modelreg.services.query import (
    BoolOp,
    Compare,
    Field,
    Node,
    Not,
    Order,
    Query,
    Token,
    parse,
    tokenize,
)
from modelreg.services.signed import trusted_clause

Scope = Literal["versions", "models"]

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


SCAN_STATES = ("clean", "unsafe", "pending", "error", "not_applicable")


def _as_scan(cmp: Compare) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = str(value).lower()
        if text not in SCAN_STATES:
            raise _bad(cmp, f"scan is one of {', '.join(SCAN_STATES)}, not {value!r}")
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
    if head == "scan":
        return _compare(cmp, Version.scan["status"].as_string(), _as_scan(cmp), text=True)
    if head == "signed":
        return _signed_clause(cmp)
    raise _bad(
        cmp.field,
        f"unknown field {cmp.field}; use name, version, semver, stage, alias, owner, created_at, "
        "created_by, status, scan, signed, run_id, tags.KEY, params.KEY, metrics.KEY or "
        "model.tags.KEY",
    )


def _signed_clause(cmp: Compare) -> Column:
    """``signed = true|false``: a signature by a trusted, unrevoked key (``services.signed``)."""
    if cmp.op not in ("=", "!=") or not isinstance(cmp.value, bool):
        raise _bad(cmp, "signed is compared with = or != to true or false")
    has = trusted_clause(Version.id)
    return has if cmp.value == (cmp.op == "=") else not_(has)


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


def _reads(table: Any, clauses: list[Any]) -> bool:
    """Whether any of ``clauses`` (subqueries included) reads a column of ``table``."""
    return any(
        getattr(element, "table", None) is table
        for clause in clauses
        if clause is not None
        for element in visitors.iterate(clause)
    )


def join_models(query: Select[Any], order: list[OrderKey]) -> Select[Any]:
    """``query`` on versions, joined to their models when its filter or order reads a model.

    Most searches never look at the model (``metrics.acc > 0.9``), and without the join the
    database walks an index of versions alone instead of probing a model for every row.
    """
    if _reads(Model.__table__, [query.whereclause, *(expr for expr, _ in order)]):
        return query.join(Model, Model.id == Version.model_id)
    return query


# A metric comparison that can drive a search: every match has that metric's row.
_DRIVING_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "in"})


def _conjuncts(node: Node | None) -> list[Node]:
    if node is None:
        return []
    if isinstance(node, BoolOp) and node.op == "and":
        return list(node.operands)
    return [node]


def _is_metric_driver(node: Node) -> bool:
    return (
        isinstance(node, Compare)
        and not node.negate
        and node.op in _DRIVING_OPS
        and len(node.field.parts) == 2
        and node.field.parts[0].lower() == "metrics"
    )


def _pins_a_model(node: Node) -> bool:
    return (
        isinstance(node, Compare)
        and not node.negate
        and node.op in ("=", "in")
        and node.field.parts[0].lower() == "name"
    )


def _swap_version_id(clause: Any, replacement: Any) -> Any:
    versions = Version.__table__

    def swap(element: Any, **_kw: Any) -> Any:
        if getattr(element, "table", None) is versions and getattr(element, "key", "") == "id":
            return replacement
        return None

    return visitors.replacement_traverse(clause, {}, swap)


def versions_query(
    text: str | None, *, readable: set[Any] | None
) -> tuple[Select[Any], list[OrderKey]]:
    """A search across models: the query selecting the matching version ids, and its order.

    Newest first unless the text orders otherwise, and ``readable`` (model ids; ``None``: all)
    limits it to what the actor may read. A search of every model on a metric
    (``metrics.acc > 0.9 AND …``) in that default order walks the metric's index newest first
    (the metric row carries its version's ``created_at``) and probes only the versions whose
    metric matches, rather than walking every version and probing each for the metric. Both
    find the same versions in the same order, so page tokens read the same either way.
    """
    parsed = parse(text or "")
    conjuncts = _conjuncts(parsed.where)
    driver = next((n for n in conjuncts if _is_metric_driver(n)), None)
    if (
        driver is None
        or parsed.order_by
        or readable is not None
        or any(_pins_a_model(n) for n in conjuncts)
    ):
        # No metric to drive it, another order asked for, or the search is confined to some
        # models (named, or all the actor may read): their versions, walked newest first
        # through (model_id, created_at, id), may be far fewer than the metric's rows.
        query = select(Version.id)
        if readable is not None:
            query = query.where(Version.model_id.in_(readable))
        query, order = apply(
            query,
            text,
            scope="versions",
            # The version's id makes the order total, as keyset pages require.
            default_order=[(Version.created_at, True), (Version.id, True)],
        )
        return join_models(query, order), order
    assert isinstance(driver, Compare)
    metric = aliased(VersionMetric, name="driver")
    clauses: list[Any] = []
    for node in conjuncts:
        if node is driver:
            clauses.append(metric.key == _key(node.field, 1))
            clauses.append(_compare(node, metric.value, _as_number(node)))
        else:
            clauses.append(_compile(node, _version_clause))
    clauses = [_swap_version_id(clause, metric.version_id) for clause in clauses]
    query = select(metric.version_id).where(*clauses)
    needs_model = _reads(Model.__table__, clauses)
    if needs_model or _reads(Version.__table__, clauses):
        query = query.join(Version, Version.id == metric.version_id)
    if needs_model:
        query = query.join(Model, Model.id == Version.model_id)
    return query, [(metric.version_created_at, True), (metric.version_id, True)]


def _fields(node: Node) -> list[str]:
    if isinstance(node, Compare):
        return [str(node.field)]
    if isinstance(node, Not):
        return _fields(node.operand)
    return [name for n in node.operands for name in _fields(n)]


def version_condition(text: str) -> tuple[Column, list[str]]:
    """Compile one condition on a version (a policy gate) and name the fields it reads.

    Raises ``InvalidQuery`` for an empty condition, an ``ORDER BY`` or an unknown field, so a
    gate is checked when it is written rather than when a promotion runs.
    """
    parsed = parse(text)
    if parsed.where is None or parsed.order_by:
        raise InvalidQuery(
            f"a gate is one condition on a version, such as 'metrics.accuracy >= 0.85' "
            f"(got {text!r})",
            position=0,
        )
    fields = list(dict.fromkeys(_fields(parsed.where)))
    return _compile(parsed.where, _version_clause), fields


# The parser's names are re-exported: callers search with one module.
__all__ = [
    "BoolOp",
    "Compare",
    "Field",
    "Not",
    "Order",
    "OrderKey",
    "Query",
    "Token",
    "apply",
    "join_models",
    "parse",
    "tokenize",
    "version_condition",
    "versions_query",
]

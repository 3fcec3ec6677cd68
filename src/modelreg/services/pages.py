"""Cursor pagination: opaque page tokens over any ordered query."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    Integer,
    Select,
    String,
    Uuid,
    and_,
    false,
    or_,
    select,
    tuple_,
)
from sqlalchemy import Enum as Enum_
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.types import TypeDecorator, TypeEngine

from modelreg.errors import InvalidInput
from modelreg.types import Page

__all__ = ["OrderKey", "Page", "check_page_size", "decode_token", "encode_token", "paginate"]

OrderKey = tuple[Any, bool]

MAX_PAGE_SIZE = 1000


def _fingerprint(context: str | None) -> str:
    return hashlib.sha256((context or "").encode()).hexdigest()[:16]


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    if isinstance(value, Enum):
        return value.value
    return value


def _decode_value(value: Any, expected: TypeEngine[Any]) -> Any:
    """Rebuild one key value, checking it has the type of its sort expression.

    Tokens come from clients, so a forged value must fail here with a clear error rather than
    reach the database as a mistyped parameter.
    """
    if value is None:
        return None
    if isinstance(expected, TypeDecorator):
        expected = expected.impl_instance
    if isinstance(expected, DateTime) and isinstance(value, dict) and "t" in value:
        return datetime.fromisoformat(value["t"])
    if isinstance(expected, Uuid) and isinstance(value, dict) and "u" in value:
        return uuid.UUID(value["u"])
    if isinstance(expected, Boolean) and isinstance(value, bool | int):
        return value
    if (
        isinstance(expected, Integer)
        and isinstance(value, int)
        and not isinstance(value, bool)
        and abs(value) < 2**63
    ):
        return value
    if (
        isinstance(expected, Float)
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        return value
    if isinstance(expected, String | Enum_) and isinstance(value, str):
        return value
    raise ValueError(value)


def encode_token(values: Sequence[Any], context: str | None) -> str:
    """A page token: the sort-key values of the last row, bound to the query text."""
    raw = json.dumps({"k": [_encode_value(v) for v in values], "q": _fingerprint(context)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, context: str | None, order: Sequence[OrderKey]) -> list[Any]:
    """The key values in ``token``; raises ``InvalidInput`` if forged or for another query."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        keys = data["k"]
        same = data["q"] == _fingerprint(context)
        if not isinstance(keys, list) or len(keys) != len(order):
            raise ValueError(keys)
        values = [_decode_value(v, expr.type) for v, (expr, _) in zip(keys, order, strict=True)]
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise InvalidInput("invalid page_token", detail={"page_token": token[:100]}) from None
    if not same:
        raise InvalidInput("page_token belongs to a different query", detail={})
    return values


def check_page_size(page_size: int) -> int:
    """Return ``page_size`` if it is between 1 and 1000."""
    if (
        isinstance(page_size, bool)
        or not isinstance(page_size, int)
        or not (1 <= page_size <= MAX_PAGE_SIZE)
    ):
        raise InvalidInput(
            f"page_size must be between 1 and {MAX_PAGE_SIZE}", detail={"page_size": page_size}
        )
    return page_size


def _not_null(expr: Any) -> bool:
    column = getattr(expr, "expression", expr)
    return getattr(column, "nullable", True) is False


def _after(order: Sequence[OrderKey], values: Sequence[Any]) -> Any:
    """Rows strictly after ``values`` in ``order``.

    That is (k1 > v1) OR (k1 = v1 AND k2 > v2) OR …, with ``<`` for descending keys.
    """
    directions = {descending for _, descending in order}
    if (
        len(order) > 1
        and len(directions) == 1
        and all(v is not None for v in values)
        and all(_not_null(expr) for expr, _ in order)
    ):
        # The same rows as the disjunction below (no key can be NULL), written as one row-value
        # comparison: both databases turn it into a range on an index over the keys, where the
        # disjunction made PostgreSQL walk every row of the earlier pages again to skip them.
        keys, bound = tuple_(*(expr for expr, _ in order)), tuple_(*values)
        return keys < bound if directions == {True} else keys > bound
    disjuncts = []
    equal: list[Any] = []
    for (expr, descending), value in zip(order, values, strict=True):
        if value is not None:
            beyond = expr < value if descending else expr > value
            disjuncts.append(and_(*equal, beyond))
        # IS NOT DISTINCT FROM: a NULL key equals a NULL key.
        equal.append(expr.is_not_distinct_from(value))
    return or_(*disjuncts) if disjuncts else false()


def paginate(
    session: Session,
    query: Select[Any],
    *,
    order: Sequence[OrderKey],
    page_size: int,
    page_token: str | None,
    context: str | None,
    load: Any = None,
) -> Page[Any]:
    """One page of ``query`` in ``order`` (keyset pagination: stable while rows come and go).

    The token holds the last row's sort-key values, so the next page starts right after it:
    a version registered or deleted meanwhile never makes a row repeat or vanish.

    With ``load`` (an ORM class), ``query`` selects just that class's primary key (plus the
    joins and filters it needs): the page is found on keys alone, which an index can answer
    without reading the wide rows it skips, and only the page's own rows of ``load`` are
    read, by primary key, in the same statement.
    """
    size = check_page_size(page_size)
    keyed = query.add_columns(*(expr.label(f"_k{i}") for i, (expr, _) in enumerate(order)))
    if page_token:
        keyed = keyed.where(_after(order, decode_token(page_token, context, order)))
    keyed = keyed.order_by(*(e.desc() if d else e.asc() for e, d in order)).limit(size + 1)
    if load is not None:
        keyed = _rows_of(keyed, load, order)
    rows = session.execute(keyed).unique().all()
    items = [row[0] for row in rows[:size]]
    token = None
    if len(rows) > size:
        token = encode_token(list(rows[size - 1][1:]), context)
    return Page(items, token)


def _rows_of(keys: Select[Any], load: Any, order: Sequence[OrderKey]) -> Select[Any]:
    """The rows of ``load`` whose primary keys ``keys`` selects first, in the same order."""
    page = keys.subquery("page")
    columns = list(page.c)
    sort = [page.c[f"_k{i}"] for i in range(len(order))]
    (primary_key,) = load.__mapper__.primary_key
    return (
        # Relationships stay lazy: a serializer reads what it needs for the page in bulk.
        select(load, *sort)
        .options(lazyload("*"))
        .join(page, primary_key == columns[0])
        .order_by(*(c.desc() if d else c.asc() for c, (_, d) in zip(sort, order, strict=True)))
    )

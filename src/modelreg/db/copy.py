"""Copy every registry table's rows from one database to another (SQLite ⇄ PostgreSQL).

Used by ``backup`` (a PostgreSQL registry into the backup's SQLite file) and ``restore`` (a
backup into a PostgreSQL registry). Rows go through the tables' own column types
(``UTCDateTime``, JSON), so values, and the audit hashes computed from them, come out the same
on either database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Table, func, select, text

from modelreg.db import stamp
from modelreg.db.base import Base

_BATCH = 1000


def tables() -> list[Table]:
    """Every table of the schema, parents before children."""
    import modelreg.db.tables  # noqa: F401  (registers every table on Base.metadata)

    assert stamp.ChangeStamp.__table__ is not None
    return list(Base.metadata.sorted_tables)


def counts(conn: Connection) -> dict[str, int]:
    """Rows per table."""
    return {
        t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
        for t in tables()
    }


def _rows(conn: Connection, table: Table) -> Iterator[list[dict[str, Any]]]:
    result = conn.execution_options(yield_per=_BATCH).execute(select(table))
    for part in result.mappings().partitions(_BATCH):
        yield [dict(row) for row in part]


def copy_rows(source: Connection, target: Connection) -> dict[str, int]:
    """Replace every table's rows in ``target`` by ``source``'s; answers the rows copied.

    Both connections are inside the caller's transactions: the source's should be one
    snapshot (SQLite's read transaction, PostgreSQL's REPEATABLE READ), the target's commits
    all or nothing. The target's own rows (a fresh schema's seeded rows) go first.
    """
    ordered = tables()
    for table in reversed(ordered):
        target.execute(table.delete())
    copied: dict[str, int] = {}
    for table in ordered:
        copied[table.name] = 0
        for batch in _rows(source, table):
            target.execute(table.insert(), batch)
            copied[table.name] += len(batch)
    if target.dialect.name == "postgresql":
        _reset_sequences(target, ordered)
    return copied


def _reset_sequences(conn: Connection, ordered: list[Table]) -> None:
    # Rows came with their ids: move each serial column's sequence past them, or the next
    # insert would reuse an id.
    for table in ordered:
        for column in table.primary_key.columns:
            seq = conn.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
            ).scalar()
            if seq is None:
                continue
            top = conn.execute(select(func.max(column))).scalar()
            conn.execute(
                text("SELECT setval(:s, :v, :called)"),
                {"s": seq, "v": top if top is not None else 1, "called": top is not None},
            )


__all__ = ["copy_rows", "counts", "tables"]

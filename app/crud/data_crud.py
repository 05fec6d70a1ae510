"""Table-level SQL for moving a whole Parley database: read in primary-key batches, write, count.

Works on SQLAlchemy Core connections of any two engines (SQLite or PostgreSQL), through the same
``Table`` objects as the app, so column types (UTC timestamps, JSON, booleans) convert both ways.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

ALEMBIC_VERSION = "alembic_version"


def revision(conn: sa.Connection) -> str | None:
    """Return the Alembic revision of a database, or None when it was never migrated."""
    if not sa.inspect(conn).has_table(ALEMBIC_VERSION):
        return None
    return conn.execute(sa.text(f"SELECT version_num FROM {ALEMBIC_VERSION}")).scalar()


def missing_tables(conn: sa.Connection, tables: Sequence[sa.Table]) -> list[str]:
    """Return the names of the tables that do not exist in this database."""
    present = set(sa.inspect(conn).get_table_names())
    return [t.name for t in tables if t.name not in present]


def row_count(conn: sa.Connection, table: sa.Table) -> int:
    """Count a table's rows."""
    return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0


def batches(conn: sa.Connection, table: sa.Table, size: int) -> Iterator[list[dict[str, Any]]]:
    """Yield a table's rows in primary-key order, ``size`` at a time (keyset, no OFFSET)."""
    keys = list(table.primary_key.columns)
    after: tuple[Any, ...] | None = None
    while True:
        stmt = sa.select(table).order_by(*keys).limit(size)
        if after is not None:
            stmt = stmt.where(
                sa.tuple_(*keys)
                > sa.tuple_(*[sa.literal(v, k.type) for k, v in zip(keys, after, strict=True)])
            )
        rows = [dict(row._mapping) for row in conn.execute(stmt)]
        if not rows:
            return
        yield rows
        after = tuple(rows[-1][k.name] for k in keys)


def insert_rows(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows as they are, primary keys included."""
    if rows:
        conn.execute(sa.insert(table), rows)


def delete_all(conn: sa.Connection, tables: Sequence[sa.Table]) -> None:
    """Empty these tables, children first."""
    for table in reversed(tables):
        conn.execute(sa.delete(table))


def reset_sequences(conn: sa.Connection, tables: Sequence[sa.Table]) -> None:
    """Move PostgreSQL's id sequences past the copied rows, so new rows do not collide."""
    if conn.dialect.name != "postgresql":
        return  # SQLite picks max(rowid) + 1 by itself
    for table in tables:
        keys = list(table.primary_key.columns)
        if (
            len(keys) == 1
            and keys[0].autoincrement is not False
            and isinstance(keys[0].type, sa.Integer | sa.BigInteger)
        ):
            sequence = conn.execute(
                sa.text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": table.name, "column": keys[0].name},
            ).scalar()
            if sequence:
                highest = f"(SELECT MAX({keys[0].name}) FROM {table.name})"
                conn.execute(
                    sa.text(f"SELECT setval(:seq, COALESCE({highest}, 1), {highest} IS NOT NULL)"),
                    {"seq": sequence},
                )


def portable(value: Any) -> Any:
    """Turn a column value into plain JSON: timestamps as ISO 8601 in UTC, to the microsecond."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def row_digest(row: Sequence[Any]) -> bytes:
    """Return a canonical byte form of one row's portable values."""
    return json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"
    )


def table_checksum(conn: sa.Connection, table: sa.Table, size: int) -> tuple[int, str]:
    """Return a table's row count and a SHA-256 over its rows in primary-key order."""
    digest, count = hashlib.sha256(), 0
    columns = [c.name for c in table.columns]
    for rows in batches(conn, table, size):
        for row in rows:
            digest.update(row_digest([portable(row[c]) for c in columns]))
            count += 1
    return count, digest.hexdigest()

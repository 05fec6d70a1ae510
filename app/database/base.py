"""Declarative base with a constraint naming convention (Alembic batch mode on SQLite needs it)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Primary and foreign keys: 64-bit on PostgreSQL; SQLite's INTEGER is already 64-bit and only a
#: column declared exactly INTEGER becomes the rowid alias that autoincrements.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: ``__table_args__`` of a table whose ids clients hold (in tokens, say) and whose rows may be
#: deleted: SQLite then never hands out an id again (AUTOINCREMENT); without it, a new row takes
#: the largest id plus one, which reuses the ids of deleted rows at the top. PostgreSQL's
#: sequences never reuse an id.
IDS_NEVER_REUSED = {"sqlite_autoincrement": True}

#: Values per ``IN (...)`` list: each is a bound parameter, and SQLite allows 32,766 at most.
IN_LIST_SIZE = 1000

_T = TypeVar("_T")


def in_lists(values: Sequence[_T]) -> Iterator[Sequence[_T]]:
    """Split ``values`` into slices of at most :data:`IN_LIST_SIZE` (one statement each)."""
    for start in range(0, len(values), IN_LIST_SIZE):
        yield values[start : start + IN_LIST_SIZE]


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC (a callable, for column defaults)."""
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware, on SQLite too."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Store aware datetimes converted to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def result_processor(self, dialect: sa.Dialect, coltype: object) -> Any:
        """Nothing to do on PostgreSQL: its sessions run in UTC, so values arrive in UTC.

        A page of conversations reads over a hundred timestamps; converting each one again
        cost more than the statement's round trip. SQLite gets :meth:`process_result_value`.
        """
        if dialect.name == "postgresql":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Attach UTC to values SQLite returns naive."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base class of every Parley model."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def row_dicts(result: sa.Result[Any]) -> list[dict[str, Any]]:
    """Every row of ``result`` as a plain dict keyed by column name.

    Zipping each row with the keys, read once, costs a fraction of ``dict(row._mapping)``,
    which builds a mapping view per row: for a page of 50 messages, a tenth of the request.
    """
    keys = tuple(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]
